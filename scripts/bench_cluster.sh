#!/usr/bin/env bash
# What Redis Cluster and durable acknowledgement cost, and what one shard carries, measured
# in one run on this machine (release binaries, wrk through one drift-api, the default
# monitor: 30 features, window 500, stride 100):
#   1. ingest rows/s, p50 and p99 at each batch size against
#        single   one redis-server (the baseline: every ratio is against it)
#        ack1     one redis-server with one replica, --redis-ack-replicas 1 (WAIT per call)
#        cluster  3 masters + 3 replicas (redis-cli --cluster create), --redis-cluster
#        cl-ack1  the same cluster with --redis-ack-replicas 1
#      On one machine the cluster's six servers share the cores with wrk and the API, so
#      this shows what the cluster costs, not what it gains (a cluster gains by running
#      its masters on their own hosts).
#   2. the Redis time of one ingested row and of one evaluation (the main thread's CPU
#      time, INFO cpu): ingest alone, then ingest with CAPACITY_WORKERS workers evaluating
#      every boundary; and from them the capacity of one shard.
#   scripts/bench_cluster.sh [seconds-per-point]      (default 10)
# Settings (environment): CONNS [16], BATCHES ["1 100"], CAPACITY_BATCH [100],
# CAPACITY_RATE [20000] rows/s offered in the capacity run (drift-sim), CAPACITY_WORKERS [2],
# TARGET_UTIL [0.5] (share of one Redis core a shard is planned at), SKIP_BUILD [0].
# Needs: wrk, redis-server, redis-cli, curl, python3, cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
CONNS=${CONNS:-16}
read -r -a BATCHES <<<"${BATCHES:-1 100}"
CAPACITY_BATCH=${CAPACITY_BATCH:-100}
CAPACITY_RATE=${CAPACITY_RATE:-20000}
CAPACITY_WORKERS=${CAPACITY_WORKERS:-2}
TARGET_UTIL=${TARGET_UTIL:-0.5}
for b in wrk redis-server redis-cli curl python3 cargo; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install -y wrk redis-server curl)" >&2; exit 1; }
done
BIN_DIR=${CARGO_TARGET_DIR:-target}/release
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release -q -p drift-api -p drift-worker -p drift-sim
  cargo build --release -q -p drift-sim --example ingest_body
fi
for b in drift-api drift-worker drift-sim examples/ingest_body; do
  [ -x "$BIN_DIR/$b" ] || { echo "$BIN_DIR/$b not found" >&2; exit 1; }
done
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  stop_all
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}

# A free port below 55536 whose cluster bus port (+10000) is free too.
cluster_port() {
  python3 -c '
import random, socket
while True:
    p = random.randrange(20000, 45000)
    try:
        for q in (p, p + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p); break
    except OSError:
        pass'
}

# node DIR PORT [extra redis-server flags]: one redis-server without persistence.
node() {
  local dir=$1 port=$2
  shift 2
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" --daemonize no "$@" >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  echo "redis-server did not start on $port" >&2; cat "$dir/redis.log" >&2; exit 1
}

# topology NAME: starts Redis for one configuration; sets REDIS_URL, REDIS_FLAGS and
# MASTERS (the ports whose INFO commandstats count).
topology() {
  local name=$1
  rm -rf "$WORK/redis"
  case $name in
    single)
      local p; p=$(port); node "$WORK/redis/0" "$p"
      REDIS_URL="redis://127.0.0.1:$p"; REDIS_FLAGS=(); MASTERS=("$p") ;;
    ack1)
      local p r; p=$(port); r=$(port)
      node "$WORK/redis/0" "$p"; node "$WORK/redis/1" "$r" --replicaof 127.0.0.1 "$p"
      for _ in $(seq 200); do
        redis-cli -p "$r" info replication | grep -q 'master_link_status:up' && break; sleep 0.05
      done
      REDIS_URL="redis://127.0.0.1:$p"; REDIS_FLAGS=(--redis-ack-replicas 1); MASTERS=("$p") ;;
    cluster|cl-ack1)
      local ports=() p
      for i in 0 1 2 3 4 5; do
        p=$(cluster_port); ports+=("$p")
        node "$WORK/redis/$i" "$p" --cluster-enabled yes --cluster-config-file "$WORK/redis/$i/nodes.conf" \
          --cluster-node-timeout 1000 --cluster-require-full-coverage no
      done
      redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-replicas 1 --cluster-yes >/dev/null
      for _ in $(seq 300); do
        ok=1
        for p in "${ports[@]}"; do
          redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok' || ok=0
        done
        synced=$(for p in "${ports[@]}"; do redis-cli -p "$p" info replication; done | grep -c 'master_link_status:up' || true)
        [ "$ok" = 1 ] && [ "$synced" = 3 ] && break
        sleep 0.1
      done
      REDIS_URL=$(printf 'redis://127.0.0.1:%s,' "${ports[@]}"); REDIS_URL=${REDIS_URL%,}
      REDIS_FLAGS=(--redis-cluster)
      [ "$name" = cl-ack1 ] && REDIS_FLAGS+=(--redis-ack-replicas 1)
      MASTERS=()
      for p in "${ports[@]}"; do
        if redis-cli -p "$p" info replication | grep -q 'role:master'; then MASTERS+=("$p"); fi
      done ;;
  esac
}

start_api() {
  APORT=$(port)
  RUST_LOG=warn "$BIN_DIR/drift-api" --listen "127.0.0.1:$APORT" --redis-url "$REDIS_URL" "${REDIS_FLAGS[@]}" &
  PIDS+=($!)
  for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$APORT/readyz" && return 0; sleep 0.05; done
  echo "drift-api did not become ready ($REDIS_URL ${REDIS_FLAGS[*]})" >&2; exit 1
}

# Redis main-thread CPU time so far (user + system, microseconds), summed over the masters:
# what saturates a shard, command execution, parsing and socket I/O included (INFO
# commandstats would count a script's inner commands twice and leave out the I/O).
redis_usec() {
  for p in "${MASTERS[@]}"; do redis-cli -p "$p" info cpu; done |
    python3 -c '
import re, sys
print(round(1e6 * sum(float(m.group(1)) for m in (re.match(r"used_cpu_(?:user|sys)_main_thread:([0-9.]+)", l) for l in sys.stdin) if m)))'
}

echo "# 1. ingest through one drift-api (wrk -t1 -c$CONNS -d${DUR}s per point)"
printf '%-8s %-6s %12s %10s %8s %8s %9s\n' redis batch rows/s req/s p50_ms p99_ms vs_single
declare -A BASE
for BATCH in "${BATCHES[@]}"; do
  "$BIN_DIR/examples/ingest_body" "$BATCH" >"$WORK/body.json"
  wrk_post_script "$WORK/body.json" "$WORK/post.lua"
  for TOPO in single ack1 cluster cl-ack1; do
    topology "$TOPO"
    start_api
    OUT=$(wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s "$WORK/post.lua" "http://127.0.0.1:$APORT/v1/monitors/breast_cancer/rows")
    stop_all
    wrk_read "$OUT"
    [ -n "$NON2XX" ] && echo "warning: $NON2XX non-2xx responses ($TOPO, batch $BATCH)" >&2
    ROWS=$(python3 -c "print(round(float('$RPS') * $BATCH))")
    [ "$TOPO" = single ] && BASE[$BATCH]=$ROWS
    printf '%-8s %-6s %12s %10.0f %8s %8s %9s\n' "$TOPO" "$BATCH" "$ROWS" "$RPS" "$P50" "$P99" \
      "$(python3 -c "print(f'{$ROWS / ${BASE[$BATCH]}:.2f}')")"
  done
done

echo
echo "# 2. Redis CPU per row and per evaluation (one redis-server, drift-sim at $CAPACITY_RATE rows/s in batches of $CAPACITY_BATCH, ${DUR}s each)"
monitor_json() { curl -sf "http://127.0.0.1:$APORT/v1/monitors/breast_cancer"; }
counter() { python3 -c "import json,sys; v=json.load(sys.stdin); print(v$1)"; }
sim() {
  "$BIN_DIR/drift-sim" --target "http://127.0.0.1:$APORT" --rate "$CAPACITY_RATE" \
    --batch "$CAPACITY_BATCH" --duration "$DUR" --concurrency 8 >"$WORK/sim.txt" 2>&1 ||
    { cat "$WORK/sim.txt" >&2; exit 1; }
}
# a) ingest alone: every command's usec over the rows stored.
topology single
start_api
U0=$(redis_usec)
sim
ROWS_A=$(monitor_json | counter '["rows"]')
USEC_A=$(( $(redis_usec) - U0 ))
stop_all
# b) the same with workers evaluating every boundary: what is added per evaluation.
topology single
start_api
for _ in $(seq "$CAPACITY_WORKERS"); do
  RUST_LOG=warn "$BIN_DIR/drift-worker" run --listen "127.0.0.1:$(port)" --redis-url "$REDIS_URL" &
  PIDS+=($!)
done
sleep 1
U0=$(redis_usec)
sim
sleep 2
USEC_B=$(( $(redis_usec) - U0 ))
ROWS_B=$(monitor_json | counter '["rows"]')
EVALS_B=$(monitor_json | counter '["counters"]["evaluations"]')
STALE_B=$(monitor_json | counter '["counters"]["stale"]')
stop_all
python3 - "$ROWS_A" "$USEC_A" "$ROWS_B" "$USEC_B" "$EVALS_B" "$TARGET_UTIL" "$DUR" "$STALE_B" "$CAPACITY_BATCH" <<'PY'
import sys
rows_a, usec_a, rows_b, usec_b, evals_b, util, dur, stale_b, batch = (float(x) for x in sys.argv[1:])
per_row = usec_a / rows_a
per_eval = (usec_b - rows_b * per_row) / evals_b
print(f"ingest alone: {rows_a:.0f} rows in {dur:.0f} s, {usec_a:.0f} us of Redis CPU: {per_row:.2f} us per row")
print(f"with workers: {rows_b:.0f} rows, {evals_b:.0f} evaluations ({stale_b:.0f} stale), {usec_b:.0f} us: {per_eval:.1f} us per evaluation")
features, window, stride = 30, 500, 100
cost = per_row + features / stride * per_eval  # us of Redis time per ingested row
budget = util * 1e6
cap = budget / cost
print()
print(f"# 3. one shard at {util:.0%} of a Redis core: the default monitor ({features} features, window {window}, stride {stride}), batches of {batch:.0f} rows")
print(f"Redis CPU per ingested row, its evaluations included: {cost:.2f} us -> {cap:,.0f} rows/s per shard")
print(f"{'rows/s per monitor':>20} {'monitors per shard':>20}")
for r in (10, 100, 1000, 10000):
    print(f"{r:>20,} {cap / r:>20,.0f}")
PY
echo "($(nproc) cores shared by wrk or drift-sim, drift-api, the workers and every redis-server; load average before the run: $LOAD)"
