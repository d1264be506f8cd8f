#!/usr/bin/env bash
# Gateway throughput with single-row requests: wrk -> NGINX (nginx/local.conf.template)
# -> 3 x drift-api (release) -> Redis, for POST /v1/monitors/breast_cancer/rows (one row)
# and POST /v1/predict (one row). Baseline measured in the same run: the same requests
# straight to one API replica, without NGINX.
#
#   scripts/bench_gateway.sh [seconds-per-point]        (default 20)
#
# Prints one line per point: requests/s, p50/p99/max latency (wrk --latency), non-2xx
# responses, and the CPU seconds each group of processes used during the point (wrk,
# nginx master+workers, the API replicas, redis-server), which shows where the cores go.
#
# Settings (environment):
#   CONNS [32]  THREADS [1]     wrk connections and threads
#   APIS [3]                    API replicas behind NGINX
#   WORKERS [0]                 drift-worker run replicas (0: nobody evaluates; the jobs
#                               stream stays capped by the API); >0 adds their CPU cost
#   NGINX_WORKERS []            override worker_processes of the rendered config (e.g. 2)
#   NGINX_ACCESS_LOG []         override access_log, e.g. "off" or
#                               "@PREFIX@/access.log combined buffer=64k flush=1s"
#                               (@PREFIX@ is the rendered nginx directory)
#   POINTS [all]                all | gateway | direct: which points to run
#   SKIP_BUILD [0]              1: use the existing release binaries
#   BIN_DIR [${CARGO_TARGET_DIR:-target}/release]
# The request body is one reference row, printed by drift-sim's ingest_body example
# (built with the binaries; with SKIP_BUILD=1 it must be in $BIN_DIR/examples).
# Needs: wrk, nginx (nginx-light), redis-server, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DUR=${1:-20}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
NAPIS=${APIS:-3}
NWORKERS=${WORKERS:-0}
POINTS=${POINTS:-all}
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for b in wrk redis-server curl python3 "$NGINX"; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install -y wrk nginx-light redis-server curl)" >&2; exit 1; }
done
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release -q -p drift-api -p drift-worker
  cargo build --release -q -p drift-sim --example ingest_body
fi
for b in drift-api drift-worker examples/ingest_body; do
  [ -x "$BIN_DIR/$b" ] || { echo "$BIN_DIR/$b not found" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/drift-bench-gw.XXXXXX")
chmod 755 "$WORK"
mkdir -p "$WORK/nginx" "$WORK/logs"
chmod 755 "$WORK/nginx"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=scripts/lib.sh
. scripts/lib.sh # (the script runs from the checkout root)
wait_http() {
  for _ in $(seq 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "$1 did not answer" >&2; exit 1
}

# ---- redis, APIs, workers, nginx
RPORT=$(port)
redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no \
  --logfile "$WORK/logs/redis.log" --daemonize no >/dev/null 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
# Listening is enough here: each API's /readyz below answers once it has registered its
# monitors in this Redis.
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$RPORT") 2>/dev/null && break; sleep 0.05; done
REDIS="redis://127.0.0.1:$RPORT"

export RUST_LOG=${RUST_LOG:-warn}
API_PORTS=()
API_PIDS=()
for i in $(seq "$NAPIS"); do
  p=$(port)
  "$BIN_DIR/drift-api" --listen "127.0.0.1:$p" --redis-url "$REDIS" >"$WORK/logs/api-$i.log" 2>&1 &
  PIDS+=("$!"); API_PIDS+=("$!"); API_PORTS+=("$p")
done
for p in "${API_PORTS[@]}"; do wait_http "http://127.0.0.1:$p/readyz"; done
WORKER_PIDS=()
for i in $(seq "$NWORKERS"); do
  "$BIN_DIR/drift-worker" run --listen "127.0.0.1:$(port)" --redis-url "$REDIS" \
    --consumer "bench-$i" >"$WORK/logs/worker-$i.log" 2>&1 &
  PIDS+=("$!"); WORKER_PIDS+=("$!")
done

GPORT=$(port)
upstreams=""
for p in "${API_PORTS[@]}"; do upstreams+="server 127.0.0.1:$p max_fails=1 fail_timeout=2s; "; done
sed -e "s#@LISTEN@#127.0.0.1:$GPORT#g" -e "s#@UPSTREAMS@#$upstreams#g" \
  -e "s#@PREFIX@#$WORK/nginx#g" -e "s#@LOCATIONS@#$ROOT/nginx/gateway-locations.conf#g" \
  nginx/local.conf.template >"$WORK/nginx/nginx.conf"
if [ -n "${NGINX_WORKERS:-}" ]; then
  sed -i -e "s#^worker_processes .*#worker_processes $NGINX_WORKERS;#" "$WORK/nginx/nginx.conf"
fi
if [ -n "${NGINX_ACCESS_LOG:-}" ]; then
  sed -i -e "s#^\(    \)access_log .*#\1access_log ${NGINX_ACCESS_LOG//@PREFIX@/$WORK/nginx};#" "$WORK/nginx/nginx.conf"
fi
"$NGINX" -t -q -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf"
"$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http "http://127.0.0.1:$GPORT/healthz"

# ---- request bodies (one reference row) and wrk scripts
"$BIN_DIR/examples/ingest_body" 1 >"$WORK/row.json"
cat >"$WORK/post.lua" <<LUA
local f = io.open("$WORK/row.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA
for path in /v1/monitors/breast_cancer/rows /v1/predict; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "@$WORK/row.json" "http://127.0.0.1:$GPORT$path")
  case "$code" in 2*) ;; *) echo "POST $path answered $code" >&2; exit 1 ;; esac
done

# CPU seconds (user+system) used so far by a list of pids (children of nginx included).
cpu_of() {
  python3 - "$@" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
total = 0
for pid in sys.argv[1:]:
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        total += int(f[11]) + int(f[12])  # utime, stime
    except (OSError, IndexError, ValueError):
        pass
print(f"{total / tick:.2f}")
PY
}
# Busy CPU seconds of the whole machine so far (all cores, idle and iowait excluded).
busy_all() {
  awk -v tick="$(getconf CLK_TCK)" '/^cpu / {printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / tick}' /proc/stat
}
# nginx master and workers, one pid per line.
nginx_pids() { echo "$NGINX_PID"; pgrep -P "$NGINX_PID" || true; }

# point LABEL URL: one wrk run, one table line.
point() {
  local label=$1 url=$2 out n0 a0 r0 w0 m0 n1 a1 r1 w1 m1 t0 t1 wrk_cpu
  local -a np; mapfile -t np < <(nginx_pids)
  n0=$(cpu_of "${np[@]}"); a0=$(cpu_of "${API_PIDS[@]}"); r0=$(cpu_of "$REDIS_PID")
  w0=$(cpu_of "${WORKER_PIDS[@]:-}"); m0=$(busy_all)
  t0=$(date +%s.%N)
  out=$( { TIMEFORMAT='%U %S'; time wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --latency \
           -s "$WORK/post.lua" "$url"; } 2>&1 )
  t1=$(date +%s.%N)
  n1=$(cpu_of "${np[@]}"); a1=$(cpu_of "${API_PIDS[@]}"); r1=$(cpu_of "$REDIS_PID")
  w1=$(cpu_of "${WORKER_PIDS[@]:-}"); m1=$(busy_all)
  wrk_cpu=$(echo "$out" | tail -1 | awk '{printf "%.2f", $1 + $2}')
  local rps p50 p99 max non2xx errs
  rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  p50=$(ms "$(echo "$out" | awk '$1=="50%" {print $2}')")
  p99=$(ms "$(echo "$out" | awk '$1=="99%" {print $2}')")
  max=$(ms "$(echo "$out" | awk '$1=="Latency" {print $4}')")
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  errs=$(echo "$out" | awk '/Socket errors/ {print $0}' | sed 's/^ *//')
  python3 - "$label" "$rps" "$p50" "$p99" "$max" "${non2xx:-0}" "$t0" "$t1" \
    "$wrk_cpu" "$n0" "$n1" "$a0" "$a1" "$r0" "$r1" "$w0" "$w1" "$m0" "$m1" <<'PY'
import sys
(label, rps, p50, p99, mx, non2xx, t0, t1, wrk, n0, n1, a0, a1, r0, r1, w0, w1, m0, m1) = sys.argv[1:]
el = float(t1) - float(t0)
def pct(a, b=None):
    v = float(a) if b is None else float(b) - float(a)
    return f"{100 * v / el:5.0f}%"
print(f"{label:<24} {float(rps):>9.0f} {p50:>8} {p99:>8} {mx:>9} {non2xx:>7}   "
      f"{pct(wrk)} {pct(n0, n1)} {pct(a0, a1)} {pct(r0, r1)} {pct(w0, w1)} {pct(m0, m1)}")
PY
  [ -n "$errs" ] && echo "    ($errs)"
  return 0
}

# Warm-up: connections, allocator, Redis script cache.
wrk -t1 -c"$CONNS" -d2s -s "$WORK/post.lua" "http://127.0.0.1:$GPORT/v1/monitors/breast_cancer/rows" >/dev/null
wrk -t1 -c"$CONNS" -d2s -s "$WORK/post.lua" "http://127.0.0.1:${API_PORTS[0]}/v1/predict" >/dev/null

echo "wrk -t$THREADS -c$CONNS -d${DUR}s --latency, one row per request; $(nproc) cores;" \
  "nginx worker_processes $(awk '/^worker_processes/ {print $2}' "$WORK/nginx/nginx.conf" | tr -d ';')," \
  "$NAPIS API replica(s), $NWORKERS worker(s)"
echo "CPU columns: share of one core used by wrk | nginx | APIs | redis | workers | whole machine"
echo "(the machine column includes kernel softirq time, e.g. loopback TCP, and any other load;"
echo " $(nproc) cores = $(($(nproc) * 100))%)"
printf '%-24s %9s %8s %8s %9s %7s   %6s %6s %6s %6s %6s %6s\n' point req/s p50_ms p99_ms max_ms non2xx \
  wrk nginx apis redis workers machine
if [ "$POINTS" != direct ]; then
  point "gateway  rows"    "http://127.0.0.1:$GPORT/v1/monitors/breast_cancer/rows"
  point "gateway  predict" "http://127.0.0.1:$GPORT/v1/predict"
fi
if [ "$POINTS" != gateway ]; then
  point "direct   rows"    "http://127.0.0.1:${API_PORTS[0]}/v1/monitors/breast_cancer/rows"
  point "direct   predict" "http://127.0.0.1:${API_PORTS[0]}/v1/predict"
fi
for f in "$WORK"/logs/api-*.log; do
  if grep -qiE 'error|panic' "$f"; then echo "note: $(basename "$f") logged errors:"; grep -iE 'error|panic' "$f" | tail -3; fi
done
