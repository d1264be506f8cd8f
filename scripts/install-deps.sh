#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need, if missing.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# Python modules used by the config checks and load tests.
pymods=()
python3 -c 'import yaml' >/dev/null 2>&1 || pymods+=(pyyaml)
python3 -c 'import pytest' >/dev/null 2>&1 || pymods+=(pytest)
python3 -c 'import locust' >/dev/null 2>&1 || pymods+=(locust)
python3 -c 'import schemathesis' >/dev/null 2>&1 || pymods+=(schemathesis==4.32.5)
python3 -c 'import openapi_spec_validator' >/dev/null 2>&1 || pymods+=(openapi-spec-validator)
if [ ${#pymods[@]} -gt 0 ]; then
  echo "installing Python packages: ${pymods[*]}" >&2
  python3 -m pip install -q "${pymods[@]}" || {
    echo "could not install ${pymods[*]}: run python3 -m pip install ${pymods[*]}" >&2
    exit 1
  }
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: ${need[*]}. Install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing ${need[*]} (Debian packages)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The packages start system services we do not use; tests run their own on free ports.
for svc in redis-server nginx prometheus; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
  if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
