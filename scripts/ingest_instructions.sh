#!/usr/bin/env bash
# Instructions one drift-api executes per single-row ingest request, counted by callgrind
# (repeatable whatever else the machine does): (I(N requests) - I(0)) / N, so start-up
# (registration, the demo model's fit) cancels out. Give several binaries to compare
# builds in the same run:
#   scripts/ingest_instructions.sh [N] [drift-api ...]   # default: 2000 target/release/drift-api
# Needs: valgrind, redis-server, redis-cli, curl, python3; a release build of drift-api and
# of drift-sim's ingest_body example (cargo build --release -p drift-api -p drift-sim --examples).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
shift || true
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(target/release/drift-api)
for b in valgrind callgrind_annotate redis-server redis-cli curl python3; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install -y valgrind redis-server curl)" >&2; exit 1; }
done
body_bin="${CARGO_TARGET_DIR:-target}/release/examples/ingest_body"
[ -x "$body_bin" ] || { echo "missing $body_bin: cargo build --release -p drift-sim --examples" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$body_bin" 1 >"$W/body.json"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh # (the script runs from the checkout root)

# instructions BIN REQUESTS: total instructions of one API life serving REQUESTS rows.
instructions() {
  local redis_port api_port api
  redis_port=$(port)
  api_port=$(port)
  redis-server --port "$redis_port" --save "" --appendonly no --daemonize yes \
    --logfile "$W/redis.log" --dir "$W" >/dev/null
  sleep 0.3
  RUST_LOG=error valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" "$1" \
    --listen "127.0.0.1:$api_port" --redis-url "redis://127.0.0.1:$redis_port" \
    >/dev/null 2>"$W/valgrind.log" &
  api=$!
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$api_port/readyz" >/dev/null && break; sleep 0.1; done
  python3 - "$api_port" "$2" "$W/body.json" <<'PY'
import http.client, sys
port, n, body = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3], "rb").read()
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    c.request("POST", "/v1/monitors/breast_cancer/rows", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    assert r.status == 202, r.status
PY
  kill -TERM "$api"
  wait "$api" 2>/dev/null || true
  redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
  callgrind_annotate "$W/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

for bin in "${bins[@]}"; do
  i0=$(instructions "$bin" 0)
  iN=$(instructions "$bin" "$N")
  echo "$bin: $(( (iN - i0) / N )) instructions per single-row request ($N requests)"
done
