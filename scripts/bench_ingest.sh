#!/usr/bin/env bash
# Ingest throughput of one drift-api on a local Redis, next to the ceilings of Redis itself
# for the same values, measured in the same run (store/examples/ingest_ceiling.rs, CONNS
# tasks issuing calls back to back, without HTTP and JSON):
#   raw    pipelined LPUSH + LTRIM per feature: the least Redis can do to store the values;
#   typed  the API's own typed call (Store::ingest: the ingest script) for one request.
# api/raw and api/typed are the API's rows/s over each; script_us is the Redis time of one
# ingest script call of BATCH rows in the typed run (INFO commandstats, evalsha
# usec_per_call). The request body is drift-sim's ingest_body example (BATCH rows of the
# embedded reference). Every point starts on a fresh, empty redis-server.
#   scripts/bench_ingest.sh [seconds-per-point]      (default 10)
# Settings (environment): CONNS [16] (wrk connections = ceiling tasks), BATCHES ["1 10 100"],
# SKIP_BUILD [0] (1: use the release binaries already in ${CARGO_TARGET_DIR:-target}/release).
# Needs: wrk, redis-server, curl, python3, cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
CONNS=${CONNS:-16}
read -r -a BATCHES <<<"${BATCHES:-1 10 100}"
for b in wrk redis-server curl python3 cargo; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install -y wrk redis-server curl)" >&2; exit 1; }
done
BIN_DIR=${CARGO_TARGET_DIR:-target}/release
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release -q -p drift-api
  cargo build --release -q -p drift-store --example ingest_ceiling
  cargo build --release -q -p drift-sim --example ingest_body
fi
for b in drift-api examples/ingest_ceiling examples/ingest_body; do
  [ -x "$BIN_DIR/$b" ] || { echo "$BIN_DIR/$b not found" >&2; exit 1; }
done
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=$(mktemp -d)
API_PID=""
REDIS_PID=""
cleanup() {
  stop_api
  stop_redis
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=scripts/lib.sh
. scripts/lib.sh # (the script runs from the checkout root)
# Each ends the process this script started (if any) and waits for it.
stop_api() { [ -z "$API_PID" ] || { kill "$API_PID" 2>/dev/null || true; wait "$API_PID" 2>/dev/null || true; }; API_PID=""; }
stop_redis() { [ -z "$REDIS_PID" ] || { kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; }; REDIS_PID=""; }
# start_api: one drift-api on the current Redis; /readyz answers once its monitors
# (the default one included) are registered.
start_api() {
  APORT=$(port)
  RUST_LOG=warn "$BIN_DIR/drift-api" --listen "127.0.0.1:$APORT" --redis-url "redis://127.0.0.1:$RPORT" &
  API_PID=$!
  for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$APORT/readyz" && return 0; sleep 0.05; done
  echo "drift-api did not become ready" >&2; exit 1
}

printf '%-6s %12s %10s %8s %8s %12s %12s %8s %9s %9s\n' \
  batch api_rows/s api_req/s p50_ms p99_ms raw_rows/s typed_rows/s api/raw api/typed script_us
for BATCH in "${BATCHES[@]}"; do
  "$BIN_DIR/examples/ingest_body" "$BATCH" >"$WORK/body.json"
  wrk_post_script "$WORK/body.json" "$WORK/post.lua"
  start_redis "$WORK/redis.log"
  start_api
  OUT=$(wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s "$WORK/post.lua" "http://127.0.0.1:$APORT/v1/monitors/breast_cancer/rows")
  stop_api
  stop_redis
  wrk_read "$OUT"
  [ -n "$NON2XX" ] && echo "warning: $NON2XX non-2xx responses at batch $BATCH" >&2
  # Ceilings: the same values, back to back, on a fresh Redis of their own.
  start_redis "$WORK/redis.log"
  CEIL=$("$BIN_DIR/examples/ingest_ceiling" --redis-url "redis://127.0.0.1:$RPORT" \
    --batch "$BATCH" --seconds "$DUR" --concurrency "$CONNS" --modes raw,typed)
  stop_redis
  field() { echo "$CEIL" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  RAW=$(field raw_rows_per_s)
  TYPED=$(field typed_rows_per_s)
  SCRIPT_US=$(field typed_evalsha_usec_per_call)
  [ -n "$RAW" ] && [ -n "$TYPED" ] || { echo "ingest_ceiling printed: $CEIL" >&2; exit 1; }
  python3 -c '
import sys
b, rps, p50, p99, raw, typed, us = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
print(f"{b:<6} {rps*b:12.0f} {rps:10.0f} {p50:>8} {p99:>8} {raw:12.0f} {typed:12.0f} {rps*b/raw:8.2f} {rps*b/typed:9.2f} {us:>9}")' \
    "$BATCH" "$RPS" "$P50" "$P99" "$RAW" "$TYPED" "$SCRIPT_US"
done
echo "(wrk -t1 -c$CONNS -d${DUR}s per point, ceilings with $CONNS tasks for ${DUR}s each; $(nproc) cores shared by wrk or ingest_ceiling, drift-api and redis-server; load average before the run: $LOAD)"
