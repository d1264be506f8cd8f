#!/usr/bin/env bash
# Gateway throughput with single-row requests: wrk -> NGINX (nginx/local.conf.template)
# -> 3 x drift-api (release) -> Redis, for POST /v1/monitors/breast_cancer/rows (one row)
# and POST /v1/predict (one row). Baseline measured in the same run: the same requests
# straight to one API replica, without NGINX.
#
#   scripts/bench_gateway.sh [seconds-per-point]        (default 20)
#   POINTS=vs-prototype scripts/bench_gateway.sh 10     (= scripts/bench_vs_prototype.sh 10)
#
# POINTS=vs-prototype compares with the Python prototype this project replaces
# (scripts/prototype_server.py: FastAPI + scipy, one process, a window of 10 rows per
# feature in memory, 30 ks_2samp per request): the same single-row POST /datadrift body
# (the prototype's shape, scikit-learn names) through NGINX to our replicas and straight
# to one replica, then to the prototype straight and behind an NGINX rendered from the same
# template and locations (a second instance whose only upstream is the prototype), all with
# the same wrk settings; then prints the ratios ours/prototype of requests/s and the
# verdict on the project's targets (ours >= 100x the prototype, p99 < 25 ms). It starts 2
# workers unless WORKERS is set, so that the evaluation our /datadrift defers to them runs
# (and costs CPU) during the points; their counters are printed. The prototype's
# dependencies are installed in a venv on first use (see scripts/prototype_server.py).
#
# Prints one line per point: requests/s, p50/p99/max latency (wrk --latency), non-2xx
# responses, and the CPU seconds each group of processes used during the point (wrk,
# nginx master+workers, the API replicas, redis-server), which shows where the cores go.
# For the prototype's points the "apis" column is the prototype's process and "nginx" its
# own NGINX instance (0 when straight).
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
#   POINTS [all]                all (= gateway + direct) | gateway | direct | datadrift
#                               (ours only) | prototype (the prototype only) | vs-prototype
#   PROTO_CONNS [$CONNS]        wrk connections for the prototype points
#   PROTO_NGINX [1]             0: skip the prototype-behind-NGINX point
#   PROTO_ARGS []               extra flags of scripts/prototype_server.py, e.g.
#                               "--http h11 --loop asyncio" (plain uvicorn)
#   WRK_TIMEOUT [10s]           wrk --timeout: a request slower than this counts as a socket
#                               timeout and is left out of the latencies (wrk's own default,
#                               2s, cut the prototype's queue at 32 connections)
#   SKIP_BUILD [0]              1: use the existing release binaries
#   BIN_DIR [${CARGO_TARGET_DIR:-target}/release]
# The request bodies are single reference rows, in turn, printed by drift-sim's ingest_body example
# (built with the binaries; with SKIP_BUILD=1 it must be in $BIN_DIR/examples).
# Needs: wrk, nginx (nginx-light), redis-server, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DUR=${1:-20}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
NAPIS=${APIS:-3}
POINTS=${POINTS:-all}
case "$POINTS" in all | gateway | direct | datadrift | prototype | vs-prototype) ;; *)
  echo "POINTS must be all, gateway, direct, datadrift, prototype or vs-prototype" >&2; exit 2 ;;
esac
if [ "$POINTS" = vs-prototype ]; then NWORKERS=${WORKERS:-2}; else NWORKERS=${WORKERS:-0}; fi
PROTO_CONNS=${PROTO_CONNS:-$CONNS}
WRK_TIMEOUT=${WRK_TIMEOUT:-10s}
want() { # want SET...: whether POINTS includes one of these point sets
  local s
  for s in "$@"; do
    case "$POINTS:$s" in all:gateway | all:direct | vs-prototype:datadrift | vs-prototype:prototype) return 0 ;; esac
    [ "$POINTS" = "$s" ] && return 0
  done
  return 1
}
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
# Listening is enough here: each API's /readyz below answers once it has registered its
# monitors in this Redis.
start_redis "$WORK/logs/redis.log"
PIDS+=("$REDIS_PID")
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

# start_nginx DIR LISTEN-PORT UPSTREAM-PORT...: an NGINX from the local template in DIR
# (NGINX_PID).
start_nginx() {
  local dir=$1 listen=$2 upstreams="" p
  shift 2
  mkdir -p "$dir"; chmod 755 "$dir"
  for p in "$@"; do upstreams+="server 127.0.0.1:$p max_fails=1 fail_timeout=2s; "; done
  sed -e "s#@LISTEN@#127.0.0.1:$listen#g" -e "s#@UPSTREAMS@#$upstreams#g" \
    -e "s#@PREFIX@#$dir#g" -e "s#@LOCATIONS@#$ROOT/nginx/gateway-locations.conf#g" \
    nginx/local.conf.template >"$dir/nginx.conf"
  if [ -n "${NGINX_WORKERS:-}" ]; then
    sed -i -e "s#^worker_processes .*#worker_processes $NGINX_WORKERS;#" "$dir/nginx.conf"
  fi
  if [ -n "${NGINX_ACCESS_LOG:-}" ]; then
    sed -i -e "s#^\(    \)access_log .*#\1access_log ${NGINX_ACCESS_LOG//@PREFIX@/$dir};#" "$dir/nginx.conf"
  fi
  "$NGINX" -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
  "$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  wait_http "http://127.0.0.1:$listen/healthz"
}
GPORT=$(port)
start_nginx "$WORK/nginx" "$GPORT" "${API_PORTS[@]}"
OUR_NGINX_PID=$NGINX_PID

# ---- the prototype (scripts/prototype_server.py), straight and behind its own NGINX
PROTO_PID=""
PROTO_NGINX_PID=""
if want prototype; then
  # Dependencies first (a venv, installed once), so that start-up below is only start-up.
  PROTO_PY=$(python3 scripts/prototype_server.py --setup) || { echo "could not set up the prototype's dependencies" >&2; exit 1; }
  PPORT=$(port)
  read -r -a proto_args <<<"${PROTO_ARGS:-}"
  "$PROTO_PY" scripts/prototype_server.py --port "$PPORT" "${proto_args[@]}" >"$WORK/logs/prototype.log" 2>&1 &
  PROTO_PID=$!
  PIDS+=("$PROTO_PID")
  for _ in $(seq 600); do curl -sf -o /dev/null "http://127.0.0.1:$PPORT/healthz" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://127.0.0.1:$PPORT/healthz" || { echo "the prototype did not start:" >&2; tail -5 "$WORK/logs/prototype.log" >&2; exit 1; }
  if [ "${PROTO_NGINX:-1}" = 1 ]; then
    PGPORT=$(port)
    start_nginx "$WORK/nginx-prototype" "$PGPORT" "$PPORT"
    PROTO_NGINX_PID=$NGINX_PID
  fi
fi
NGINX_PID=$OUR_NGINX_PID

# ---- request bodies and wrk scripts: one row per request, cycling through the 569
# reference rows (a stream of distinct rows, as a model's traffic is; one row repeated
# would make every window a single value, which no real feature looks like and which
# makes the exact KS p-value far costlier than on real windows).
"$BIN_DIR/examples/ingest_body" 569 >"$WORK/rows.json"
# The prototype's /datadrift body: the same rows as pandas "split" frames under
# scikit-learn's names ("mean radius"), which both servers take.
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
b = json.load(open(f"{work}/rows.json"))
cols = [c.replace("_", " ") for c in b["columns"]]
bodies = {
    "row": [json.dumps({"columns": b["columns"], "data": [r]}) for r in b["data"]],
    "datadrift": [json.dumps({"features": {"columns": cols, "data": [r]}}) for r in b["data"]],
}
for name, items in bodies.items():
    with open(f"{work}/{name}.json", "w") as f:
        f.write(items[0])
    with open(f"{work}/post-{name}.lua", "w") as f:
        f.write("local bodies = {\n")
        for item in items:
            f.write("  [==[" + item + "]==],\n")
        f.write("}\n")
        f.write('local i = 0\n'
                'local headers = {["Content-Type"] = "application/json"}\n'
                'request = function()\n'
                '  i = i % #bodies + 1\n'
                '  return wrk.format("POST", nil, headers, bodies[i])\n'
                'end\n')
PY
cp "$WORK/post-row.lua" "$WORK/post.lua"
check_post() { # check_post BODY URL: one request, must answer 2xx
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "@$WORK/$1.json" "$2")
  case "$code" in 2*) ;; *) echo "POST $2 answered $code" >&2; exit 1 ;; esac
}
for path in /v1/monitors/breast_cancer/rows /v1/predict; do check_post row "http://127.0.0.1:$GPORT$path"; done
check_post datadrift "http://127.0.0.1:$GPORT/datadrift"
if [ -n "$PROTO_PID" ]; then
  check_post datadrift "http://127.0.0.1:$PPORT/datadrift"
  [ -z "$PROTO_NGINX_PID" ] || check_post datadrift "http://127.0.0.1:$PGPORT/datadrift"
fi

# CPU seconds (user+system) used so far by groups of processes (children of nginx
# included), each group a space-separated pid list: one line of totals (one process start
# for all groups, so that the readings around a wrk run are close to its start and end).
cpu_groups() {
  python3 - "$@" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
def total(pids):
    t = 0
    for pid in pids.split():
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            t += int(f[11]) + int(f[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return t / tick
print(" ".join(f"{total(g):.2f}" for g in sys.argv[1:]))
PY
}
# Busy CPU seconds of the whole machine so far (all cores, idle and iowait excluded).
busy_all() {
  awk -v tick="$(getconf CLK_TCK)" '/^cpu / {printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / tick}' /proc/stat
}
# nginx master and workers, one pid per line (ours, or the instance given).
nginx_pids() { local m=${1:-$NGINX_PID}; [ -z "$m" ] && return 0; echo "$m"; pgrep -P "$m" || true; }

declare -A RPS P99
# point LABEL URL [BODY [CONNS [NGINX-MASTER-PID [APP-PIDS]]]]: one wrk run, one table
# line. BODY row (default) or datadrift; the "apis" CPU column is APP-PIDS (default our
# replicas: the prototype's process for its points), "nginx" that NGINX instance ("-" for
# none). Requests/s and p99 land in RPS[LABEL] and P99[LABEL].
point() {
  local label=$1 url=$2 body=${3:-row} conns=${4:-$CONNS} nmaster=${5-$NGINX_PID}
  local -a apps; read -r -a apps <<<"${6:-${API_PIDS[*]}}"
  local out n0 a0 r0 w0 m0 n1 a1 r1 w1 m1 t0 t1 wrk_cpu
  local -a np; mapfile -t np < <(nginx_pids "$nmaster")
  read -r n0 a0 r0 w0 < <(cpu_groups "${np[*]:-}" "${apps[*]}" "$REDIS_PID" "${WORKER_PIDS[*]:-}")
  m0=$(busy_all)
  t0=$(date +%s.%N)
  out=$( { TIMEFORMAT='%U %S'; time wrk -t"$THREADS" -c"$conns" -d"${DUR}s" --timeout "$WRK_TIMEOUT" --latency \
           -s "$WORK/post-$body.lua" "$url"; } 2>&1 )
  t1=$(date +%s.%N)
  m1=$(busy_all)
  read -r n1 a1 r1 w1 < <(cpu_groups "${np[*]:-}" "${apps[*]}" "$REDIS_PID" "${WORKER_PIDS[*]:-}")
  wrk_cpu=$(echo "$out" | tail -1 | awk '{printf "%.2f", $1 + $2}')
  local rps p50 p99 max non2xx errs
  rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  p50=$(ms "$(echo "$out" | awk '$1=="50%" {print $2}')")
  p99=$(ms "$(echo "$out" | awk '$1=="99%" {print $2}')")
  max=$(ms "$(echo "$out" | awk '$1=="Latency" {print $4}')")
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  errs=$(echo "$out" | awk '/Socket errors/ {print $0}' | sed 's/^ *//')
  RPS[$label]=$rps; P99[$label]=$p99
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

# Warm-up: connections, allocator, Redis script cache (and the prototype's windows).
if want gateway direct; then
  wrk -t1 -c"$CONNS" -d2s -s "$WORK/post-row.lua" "http://127.0.0.1:$GPORT/v1/monitors/breast_cancer/rows" >/dev/null
  wrk -t1 -c"$CONNS" -d2s -s "$WORK/post-row.lua" "http://127.0.0.1:${API_PORTS[0]}/v1/predict" >/dev/null
fi
if want datadrift; then
  wrk -t1 -c"$CONNS" -d2s -s "$WORK/post-datadrift.lua" "http://127.0.0.1:$GPORT/datadrift" >/dev/null
fi
if [ -n "$PROTO_PID" ]; then
  wrk -t1 -c"$PROTO_CONNS" -d2s -s "$WORK/post-datadrift.lua" "http://127.0.0.1:$PPORT/datadrift" >/dev/null
fi

echo "wrk -t$THREADS -c$CONNS -d${DUR}s --latency, one row per request; $(nproc) cores;" \
  "nginx worker_processes $(awk '/^worker_processes/ {print $2}' "$WORK/nginx/nginx.conf" | tr -d ';')," \
  "$NAPIS API replica(s), $NWORKERS worker(s)${PROTO_PID:+; prototype: 1 uvicorn process, wrk -c$PROTO_CONNS}"
echo "CPU columns: share of one core used by wrk | nginx | APIs | redis | workers | whole machine"
echo "(the machine column includes kernel softirq time, e.g. loopback TCP, and any other load;"
echo " $(nproc) cores = $(($(nproc) * 100))%)"
printf '%-24s %9s %8s %8s %9s %7s   %6s %6s %6s %6s %6s %6s\n' point req/s p50_ms p99_ms max_ms non2xx \
  wrk nginx apis redis workers machine
if want gateway; then
  point "gateway  rows"    "http://127.0.0.1:$GPORT/v1/monitors/breast_cancer/rows"
  point "gateway  predict" "http://127.0.0.1:$GPORT/v1/predict"
fi
if want direct; then
  point "direct   rows"    "http://127.0.0.1:${API_PORTS[0]}/v1/monitors/breast_cancer/rows"
  point "direct   predict" "http://127.0.0.1:${API_PORTS[0]}/v1/predict"
fi
if want datadrift; then
  point "gateway  datadrift" "http://127.0.0.1:$GPORT/datadrift" datadrift
  point "direct   datadrift" "http://127.0.0.1:${API_PORTS[0]}/datadrift" datadrift
fi
if [ -n "$PROTO_PID" ]; then
  point "proto    datadrift" "http://127.0.0.1:$PPORT/datadrift" datadrift "$PROTO_CONNS" "" "$PROTO_PID"
  if [ -n "$PROTO_NGINX_PID" ]; then
    point "proto-gw datadrift" "http://127.0.0.1:$PGPORT/datadrift" datadrift "$PROTO_CONNS" "$PROTO_NGINX_PID" "$PROTO_PID"
  fi
fi
if [ "$NWORKERS" -gt 0 ] && { want datadrift || want gateway; }; then
  curl -sf "http://127.0.0.1:${API_PORTS[0]}/v1/monitors/breast_cancer" >"$WORK/monitor.json" || true
  python3 - "$WORK/monitor.json" "$NWORKERS" <<'PY' || true
import json, sys
v = json.load(open(sys.argv[1]))
c = v["counters"]
print(f"our monitor after the points: {v['rows']} rows, {c['rounds']} rounds, {c['evaluations']} evaluations, "
      f"{c['stale']} stale ({c.get('superseded', '-')} of them superseded) by {sys.argv[2]} worker(s)")
PY
fi
if want datadrift && want prototype; then
  python3 - "${RPS[gateway  datadrift]}" "${P99[gateway  datadrift]}" "${RPS[direct   datadrift]}" \
    "${P99[direct   datadrift]}" "${RPS[proto    datadrift]}" "${P99[proto    datadrift]}" \
    "${RPS[proto-gw datadrift]:-}" "${P99[proto-gw datadrift]:-}" "$CONNS" "$PROTO_CONNS" <<'PY'
import sys
g, gp99, d, dp99, p, pp99, pg, pgp99, conns, pconns = sys.argv[1:]
g, d, p, gp99 = float(g), float(d), float(p), float(gp99)
print()
print(f"POST /datadrift, one row per request (ours: wrk -c{conns}; prototype: wrk -c{pconns}):")
print(f"  ours via NGINX   {g:9.0f} req/s  p99 {gp99:7.2f} ms")
print(f"  ours direct      {d:9.0f} req/s  p99 {float(dp99):7.2f} ms")
print(f"  prototype        {p:9.0f} req/s  p99 {float(pp99):7.2f} ms")
if pg:
    print(f"  prototype NGINX  {float(pg):9.0f} req/s  p99 {float(pgp99):7.2f} ms")
print(f"  ratio ours via NGINX / prototype direct: {g / p:.1f}x" if p else "  prototype answered nothing")
if pg and float(pg):
    print(f"  ratio ours via NGINX / prototype via NGINX: {g / float(pg):.1f}x")
    print(f"  ratio ours straight to one replica / prototype direct: {d / p:.1f}x")
ok_ratio = p > 0 and g / p >= 100
print(f"  target ours >= 100x prototype: {'met' if ok_ratio else 'NOT met'} ({g / p:.1f}x)" if p else "")
print(f"  target p99 < 25 ms (ours via NGINX): {'met' if gp99 < 25 else 'NOT met'} ({gp99:.2f} ms)")
PY
fi
for f in "$WORK"/logs/api-*.log; do
  if grep -qiE 'error|panic' "$f"; then echo "note: $(basename "$f") logged errors:"; grep -iE 'error|panic' "$f" | tail -3; fi
done
