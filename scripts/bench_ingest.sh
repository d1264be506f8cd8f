#!/usr/bin/env bash
# Ingest throughput of one drift-api on a local Redis, next to the ceiling of Redis itself
# for the same command pattern (the ingest script, EVALSHA, piped with redis-cli --pipe),
# measured in the same run. Needs: wrk, redis-server, redis-cli, python3.
#   scripts/bench_ingest.sh [seconds-per-point]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
CONNS=${CONNS:-16}
for b in wrk redis-server redis-cli python3; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install -y wrk redis-server)" >&2; exit 1; }
done
cargo build --release -q -p drift-api
WORK=$(mktemp -d)
RPORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
APORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
cleanup() { kill "${API_PID:-}" 2>/dev/null || true; redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
redis-server --port "$RPORT" --save "" --appendonly no --daemonize yes --logfile "$WORK/redis.log" >/dev/null
sleep 0.3
start_api() {
  redis-cli -p "$RPORT" flushall >/dev/null
  RUST_LOG=warn target/release/drift-api --listen "127.0.0.1:$APORT" --redis-url "redis://127.0.0.1:$RPORT" &
  API_PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$APORT/readyz" >/dev/null && break; sleep 0.05; done
  for _ in $(seq 100); do [ "$(redis-cli -p "$RPORT" exists 'drift:{breast_cancer}:config')" = 1 ] && break; sleep 0.05; done
}
printf '%-6s %14s %14s %10s %10s %16s %8s\n' batch api_rows/s api_req/s p50_ms p99_ms redis_rows/s ratio
for BATCH in 1 10 100; do
  python3 scripts/bench_ingest_body.py "$BATCH" > "$WORK/body.json"
  cat > "$WORK/post.lua" <<LUA
local f = io.open("$WORK/body.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA
  start_api
  OUT=$(wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s "$WORK/post.lua" "http://127.0.0.1:$APORT/v1/monitors/breast_cancer/rows")
  kill "$API_PID"; wait "$API_PID" 2>/dev/null || true
  RPS=$(echo "$OUT" | awk '/Requests\/sec/ {print $2}')
  P50=$(echo "$OUT" | awk '$1=="50%" {print $2}')
  P99=$(echo "$OUT" | awk '$1=="99%" {print $2}')
  NON2XX=$(echo "$OUT" | awk '/Non-2xx/ {print $5}')
  [ -n "$NON2XX" ] && echo "warning: $NON2XX non-2xx responses at batch $BATCH" >&2
  # Ceiling: the same script call, back to back, on the same Redis.
  start_api; kill "$API_PID"; wait "$API_PID" 2>/dev/null || true
  VERSION=$(redis-cli -p "$RPORT" hget 'drift:{breast_cancer}:config' version)
  SHA=$(redis-cli -p "$RPORT" script load "$(cat core/src/scripts/ingest.lua)")
  N=$(( 400000 / BATCH )); [ "$N" -gt 50000 ] && N=50000
  python3 scripts/bench_ingest_body.py "$BATCH" --resp "$SHA" "$VERSION" "$N" > "$WORK/cmds.resp"
  T0=$(date +%s.%N)
  redis-cli -p "$RPORT" --pipe < "$WORK/cmds.resp" > "$WORK/pipe.out"
  T1=$(date +%s.%N)
  grep -q "errors: 0" "$WORK/pipe.out" || { cat "$WORK/pipe.out" >&2; exit 1; }
  python3 - "$BATCH" "$RPS" "$P50" "$P99" "$N" "$T0" "$T1" <<'PY'
import sys
b, rps, p50, p99, n, t0, t1 = sys.argv[1:]
def ms(s):
    for suf, k in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if s.endswith(suf):
            return float(s[: -len(suf)]) * k
    return float(s)
b = int(b); rps = float(rps)
ceiling = int(n) * b / (float(t1) - float(t0))
print(f"{b:<6} {rps*b:14.0f} {rps:14.0f} {ms(p50):10.2f} {ms(p99):10.2f} {ceiling:16.0f} {rps*b/ceiling:8.2f}")
PY
done
echo "(wrk -t1 -c$CONNS -d${DUR}s per point; $(nproc) cores shared by wrk, drift-api and redis-server)"
