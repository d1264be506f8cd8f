#!/usr/bin/env bash
# Validates the deployment and observability configuration without Docker:
#   - promtool check config   prometheus/prometheus.yml (compose) and the rendered
#                             prometheus/local.yml.template
#   - promtool check rules    prometheus/alerts.yml
#   - promtool test rules     prometheus/alerts_test.yml
#   - nginx -t                nginx/nginx.conf (compose) and the rendered
#                             nginx/local.conf.template
#   - scripts/check_compose.py  docker-compose.yml structure and the Grafana dashboard
#                             structure; the dashboard's PromQL is parsed by promtool
# Exit status: 0 when all pass, 1 otherwise (one FAIL line per failed check).
#
# Needs: promtool and prometheus (Debian: prometheus), nginx (Debian: nginx-light),
# python3 with PyYAML (pip install pyyaml).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/drift-check-config.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

failures=0
pass() { printf 'ok   %s\n' "$1"; }
fail() { printf 'FAIL %s\n' "$1"; failures=$((failures + 1)); }

# Runs "$@"; prints its output only when it fails.
run_check() {
    local name="$1"; shift
    local out
    if out="$("$@" 2>&1)"; then
        pass "$name"
    else
        fail "$name"
        printf '%s\n' "$out" | sed 's/^/     | /'
    fi
}

# ---- tools -----------------------------------------------------------------------------
missing_pkgs=()
command -v promtool >/dev/null 2>&1 || missing_pkgs+=(prometheus)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing_pkgs+=(nginx-light)
command -v python3 >/dev/null 2>&1 || missing_pkgs+=(python3)
if [ "${#missing_pkgs[@]}" -gt 0 ]; then
    echo "FAIL missing tools; install them with:"
    echo "     apt-get update && apt-get install -y ${missing_pkgs[*]}"
    exit 1
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
    echo "FAIL python3 has no PyYAML; install it with:"
    echo "     python3 -m pip install pyyaml"
    exit 1
fi

# ---- Prometheus ------------------------------------------------------------------------
# The compose config names alerts.yml relative to itself: check it in place.
run_check "promtool check config prometheus/prometheus.yml" \
    promtool check config "$ROOT/prometheus/prometheus.yml"
run_check "promtool check rules prometheus/alerts.yml" \
    promtool check rules "$ROOT/prometheus/alerts.yml"
run_check "promtool test rules prometheus/alerts_test.yml" \
    promtool test rules "$ROOT/prometheus/alerts_test.yml"

sed -e 's#@EXPORTER@#["127.0.0.1:19102"]#g' \
    -e 's#@APIS@#["127.0.0.1:18001", "127.0.0.1:18002"]#g' \
    -e 's#@WORKERS@#["127.0.0.1:19111", "127.0.0.1:19112"]#g' \
    -e "s#@RULES@#$ROOT/prometheus/alerts.yml#g" \
    "$ROOT/prometheus/local.yml.template" > "$TMP/prometheus-local.yml"
if grep -q '@[A-Z_]*@' "$TMP/prometheus-local.yml"; then
    fail "prometheus/local.yml.template: unknown placeholder(s): $(grep -o '@[A-Z_]*@' "$TMP/prometheus-local.yml" | sort -u | tr '\n' ' ')"
else
    run_check "promtool check config prometheus/local.yml.template (rendered)" \
        promtool check config "$TMP/prometheus-local.yml"
fi

# ---- nginx -----------------------------------------------------------------------------
# nginx -t only parses: the compose resolver (127.0.0.11) and host `api` are used at
# request time (variable proxy_pass), never resolved by -t. The config includes
# gateway-locations.conf relative to its own directory, so it is tested in place; -p and
# -e keep pid/log/temp paths out of the system directories.
mkdir -p "$TMP/nginx-compose"
run_check "nginx -t nginx/nginx.conf" \
    "$NGINX" -t -q -p "$TMP/nginx-compose" -e "$TMP/nginx-compose/error.log" -c "$ROOT/nginx/nginx.conf"

mkdir -p "$TMP/nginx-local"
sed -e 's#@LISTEN@#127.0.0.1:18002#g' \
    -e 's#@UPSTREAMS@#server 127.0.0.1:18001 max_fails=1 fail_timeout=2s; server 127.0.0.1:18003;#g' \
    -e "s#@PREFIX@#$TMP/nginx-local#g" \
    -e "s#@LOCATIONS@#$ROOT/nginx/gateway-locations.conf#g" \
    "$ROOT/nginx/local.conf.template" > "$TMP/nginx-local/nginx.conf"
if grep -v '^[[:space:]]*#' "$TMP/nginx-local/nginx.conf" | grep -q '@[A-Z_]*@'; then
    fail "nginx/local.conf.template: unknown placeholder(s) left after rendering"
else
    run_check "nginx -t nginx/local.conf.template (rendered)" \
        "$NGINX" -t -q -p "$TMP/nginx-local" -e "$TMP/nginx-local/error.log" -c "$TMP/nginx-local/nginx.conf"
fi

# ---- compose and Grafana -----------------------------------------------------------------
run_check "docker-compose.yml structure (scripts/check_compose.py compose)" \
    python3 "$ROOT/scripts/check_compose.py" compose
run_check "grafana/dashboards/drift.json structure (scripts/check_compose.py dashboard)" \
    python3 "$ROOT/scripts/check_compose.py" dashboard --emit-rules "$TMP/dashboard-queries.yml"
if [ -s "$TMP/dashboard-queries.yml" ]; then
    run_check "dashboard PromQL parses (promtool check rules)" \
        promtool check rules "$TMP/dashboard-queries.yml"
fi
run_check "grafana provisioning YAML parses" \
    python3 - "$ROOT/grafana/provisioning/datasources/prometheus.yml" \
              "$ROOT/grafana/provisioning/dashboards/dashboards.yml" <<'EOF'
import sys, yaml
ds = yaml.safe_load(open(sys.argv[1]))
uids = [d.get("uid") for d in ds.get("datasources", [])]
assert "prometheus" in uids, f"datasource uid prometheus missing: {uids}"
url = [d for d in ds["datasources"] if d.get("uid") == "prometheus"][0].get("url")
assert url == "http://prometheus:9090", f"datasource url is {url}"
prov = yaml.safe_load(open(sys.argv[2]))
paths = [p.get("options", {}).get("path") for p in prov.get("providers", [])]
assert "/etc/grafana/dashboards" in paths, f"dashboard provider path: {paths}"
EOF

# ---- scripts -----------------------------------------------------------------------------
run_check "bash -n scripts/demo.sh" bash -n "$ROOT/scripts/demo.sh"
# `make demo` runs scripts/demo.sh directly.
run_check "scripts are executable" test -x "$ROOT/scripts/demo.sh" -a -x "$ROOT/scripts/stream.py" -a -x "$ROOT/scripts/check_compose.py"
run_check "python3 parses scripts/*.py and locustfile.py" \
    python3 -c 'import ast, sys
for f in sys.argv[1:]:
    ast.parse(open(f, encoding="utf-8").read(), f)' \
    "$ROOT/scripts/stream.py" "$ROOT/scripts/check_compose.py" "$ROOT/locustfile.py"

echo
if [ "$failures" -gt 0 ]; then
    echo "check_config: $failures check(s) FAILED"
    exit 1
fi
echo "check_config: all checks passed"
