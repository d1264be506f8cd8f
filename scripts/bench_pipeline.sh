#!/usr/bin/env bash
# Does evaluation keep up with ingest? One drift-api and W `drift-worker run` (release) on a
# fresh, empty redis-server per point, all on loopback. drift-sim paces rows at RATE rows/s
# (BATCH rows per request) for DUR seconds straight to the API, while the monitor view
# (GET /v1/monitors/breast_cancer: 30 features, window 500, stride 100) is sampled every
# ~250 ms; after the last row the script waits until the pipeline is idle (every job of
# every round accounted in the counters AND the jobs stream's consumer group has no pending
# entry and no lag), with a timeout.
#
#   scripts/bench_pipeline.sh [sweep|workers|capacity|all] [seconds-per-point]
#
#   sweep     (default) one point per rate of RATES, W workers
#   workers   one point per worker count of WORKERS at OVERLOAD_RATE; evaluations/s are
#             also printed as ratios to the first (1-worker) figure
#   capacity  the highest paced rate at which >= CAP_SHARE of the jobs are evaluated and
#             the pipeline becomes idle (W workers): each rate of CAP_RATES if set, else a
#             bisection between CAP_LO and CAP_HI in CAP_STEPS probes; it also prints the
#             lowest failing rate probed, so the answer is a bracket
#
# Settings (environment; defaults in brackets):
#   DUR [8]        seconds of sending per point (also the 2nd argument)
#   RATES ["3000 6000 12000 20000 60000"]   target rows/s of the sweep
#   W [2]          workers in sweep and capacity modes
#   WORKERS ["1 2 4"]  OVERLOAD_RATE [12000]   workers mode (a rate above what W workers
#                  evaluate, so that they are saturated; with workers that take the jobs
#                  stream in order, a heavy overload such as 60000 leaves every job they
#                  reach superseded, evaluations/s near 0 and the ratios n/a)
#   CAP_RATES []   CAP_LO [1000]  CAP_HI [60000]  CAP_STEPS [8]  CAP_SHARE [0.995]
#                  (bisection on a log scale: CAP_HI, CAP_LO, then geometric midpoints
#                  until CAP_STEPS probes or a bracket within 5%)
#   BATCH [100]    rows per request      CONC [8]   drift-sim --concurrency (requests in
#                  flight; pacing is open-loop: a batch leaves when due, so CONC only has to
#                  cover rate/BATCH x latency; too many in flight only queues in Redis)
#   SEED [1]       drift-sim --seed      INTERVAL [0.25] seconds between two samples
#   IDLE_TIMEOUT [60]  seconds to wait for the pipeline to be idle after the last row
#   WINDOW [500] STRIDE [100]  default monitor's window and stride (drift-api flags)
#   JOBS_MAXLEN [50000000]  drift-api --jobs-maxlen: the default cap (100,000 entries) trims
#                  the jobs of a long overload before any worker reads them, and trimmed
#                  jobs are never accounted, so the cap is raised to keep the books exact
#   API_ARGS []    extra drift-api flags     WORKER_ARGS []  extra drift-worker run flags
#   SKIP_BUILD [0] 1: use the existing binaries
#   BIN_DIR [${CARGO_TARGET_DIR:-target}/release]
#   REDIS_STATS [0] 1: after each point, the five costliest Redis commands (INFO commandstats)
#   KEEP_LOGS [0]  1: keep the work directory (server and drift-sim logs, JSON per point)
#
# Columns of each point (one line): target and achieved rows/s (drift-sim's accepted rows
# over its sending time), rows accepted, rounds (boundaries crossed), jobs (rounds x 30),
# evaluations, stale (acknowledged without an evaluation of their own), superseded (of the
# stale, those whose feature was evaluated on a newer window instead: counters.superseded,
# 0 when the API does not report it), dead letters, evaluated share (evaluations / jobs,
# final), evaluations/s while sending, the largest result age seen while sending (now -
# evaluated_at of the oldest feature, from the first evaluation on), p50 and max rows
# behind (rows - results[f].seq, max over features, from the first full window on),
# seconds from the last row's answer to idle, ingest p99 (drift-sim), failed requests, and
# the CPU each process group used while sending (share of one core).
# Needs: redis-server, redis-cli, curl, python3 (and cargo unless SKIP_BUILD=1).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-sweep}
DUR=${2:-${DUR:-8}}
case "$MODE" in sweep | workers | capacity | all) ;; *)
  echo "usage: $0 [sweep|workers|capacity|all] [seconds-per-point]" >&2; exit 2 ;;
esac
read -r -a RATE_LIST <<<"${RATES:-3000 6000 12000 20000 60000}"
read -r -a WORKER_LIST <<<"${WORKERS:-1 2 4}"
NW=${W:-2}
OVERLOAD_RATE=${OVERLOAD_RATE:-12000}
CAP_LO=${CAP_LO:-1000}
CAP_HI=${CAP_HI:-60000}
CAP_STEPS=${CAP_STEPS:-8}
CAP_SHARE=${CAP_SHARE:-0.995}
BATCH=${BATCH:-100}
CONC=${CONC:-8}
SEED=${SEED:-1}
INTERVAL=${INTERVAL:-0.25}
IDLE_TIMEOUT=${IDLE_TIMEOUT:-60}
WINDOW=${WINDOW:-500}
STRIDE=${STRIDE:-100}
JOBS_MAXLEN=${JOBS_MAXLEN:-50000000}
read -r -a EXTRA_API <<<"${API_ARGS:-}"
read -r -a EXTRA_WORKER <<<"${WORKER_ARGS:-}"
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
MONITOR=breast_cancer

for b in redis-server redis-cli curl python3; do
  command -v "$b" >/dev/null || { echo "missing $b (scripts/install-deps.sh; apt-get install -y redis-server curl)" >&2; exit 1; }
done
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release -q -p drift-api -p drift-worker -p drift-sim
fi
for b in drift-api drift-worker drift-sim; do
  [ -x "$BIN_DIR/$b" ] || { echo "$BIN_DIR/$b not found (build it or set BIN_DIR)" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/drift-bench-pipe.XXXXXX")
REDIS_PID=""
API_PID=""
POINT_PID=""
WORKER_PIDS=()
# Ends the processes of the current point (those this script started), then waits for them.
stop_point() {
  local p
  if [ -n "$POINT_PID" ]; then kill "$POINT_PID" 2>/dev/null || true; wait "$POINT_PID" 2>/dev/null || true; POINT_PID=""; fi
  for p in "${WORKER_PIDS[@]}" $API_PID; do kill "$p" 2>/dev/null || true; done
  for p in "${WORKER_PIDS[@]}" $API_PID; do wait "$p" 2>/dev/null || true; done
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
  WORKER_PIDS=(); API_PID=""; REDIS_PID=""
}
cleanup() {
  stop_point
  if [ "${KEEP_LOGS:-0}" = 1 ]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=scripts/lib.sh
. scripts/lib.sh # (the script runs from the checkout root)

# start_point N LABEL: a fresh redis-server, one drift-api, N workers, all ready.
start_point() {
  local n=$1 label=$2 i
  mkdir -p "$WORK/$label"
  start_redis "$WORK/$label/redis.log"
  if [ "${REDIS_STATS:-0}" = 1 ]; then
    # Every command in the slow log, to split the script time by script afterwards.
    redis-cli -p "$RPORT" CONFIG SET slowlog-log-slower-than 0 >/dev/null
    redis-cli -p "$RPORT" CONFIG SET slowlog-max-len 2000000 >/dev/null
  fi
  APORT=$(port)
  RUST_LOG=${RUST_LOG:-warn} "$BIN_DIR/drift-api" --listen "127.0.0.1:$APORT" \
    --redis-url "redis://127.0.0.1:$RPORT" --window "$WINDOW" --stride "$STRIDE" \
    --jobs-maxlen "$JOBS_MAXLEN" "${EXTRA_API[@]}" >"$WORK/$label/api.log" 2>&1 &
  API_PID=$!
  for i in $(seq 200); do
    curl -sf -o /dev/null "http://127.0.0.1:$APORT/readyz" && break
    [ "$i" = 200 ] && { echo "drift-api did not become ready:" >&2; tail -5 "$WORK/$label/api.log" >&2; exit 1; }
    sleep 0.05
  done
  for i in $(seq "$n"); do
    RUST_LOG=${RUST_LOG:-warn} "$BIN_DIR/drift-worker" run --listen "127.0.0.1:$(port)" \
      --redis-url "redis://127.0.0.1:$RPORT" --consumer "bench-$label-$i" "${EXTRA_WORKER[@]}" \
      >"$WORK/$label/worker-$i.log" 2>&1 &
    WORKER_PIDS+=("$!")
  done
  # Every worker has joined the group (its first blocking read) before the first row.
  local key="drift:{$MONITOR}:jobs" have=0
  for i in $(seq 200); do
    have=$(redis-cli -p "$RPORT" XINFO CONSUMERS "$key" workers 2>/dev/null | grep -c '^name$' || true)
    [ "$have" -ge "$n" ] && break
    [ "$i" = 200 ] && { echo "only $have of $n workers joined the jobs group" >&2; exit 1; }
    sleep 0.05
  done
}

cat >"$WORK/point.py" <<'PY'
# One point: runs drift-sim, samples the monitor view while it sends, waits for idle,
# prints one table line and writes the figures as JSON (argv: see below).
import json, os, signal, statistics, subprocess, sys, threading, time, urllib.request

(label, api, rport, sim, rate, batch, dur, conc, seed, interval, idle_timeout,
 out_json, sim_log, pids_api, pids_redis, pids_workers) = sys.argv[1:]
rate, dur, interval, idle_timeout = float(rate), float(dur), float(interval), float(idle_timeout)
VIEW = f"{api}/v1/monitors/breast_cancer"
JOBS_KEY = "drift:{breast_cancer}:jobs"
TICK = os.sysconf("SC_CLK_TCK")

def view():
    with urllib.request.urlopen(VIEW, timeout=5) as r:
        return json.load(r)

def counters(v):
    c = v["counters"]
    return {k: int(c.get(k, 0) or 0) for k in
            ("rounds", "evaluations", "stale", "superseded", "dead_letters")}

def group():
    """pending and lag of the workers group (lag None when Redis cannot tell)."""
    out = subprocess.run(["redis-cli", "-p", rport, "--raw", "XINFO", "GROUPS", JOBS_KEY],
                         capture_output=True, text=True, timeout=5).stdout.split("\n")
    d = dict(zip(out[0::2], out[1::2]))
    lag = d.get("lag", "")
    return int(d.get("pending", "-1") or -1), (int(lag) if lag.strip() else None)

def busy():
    """Busy CPU seconds of the whole machine so far (idle and iowait excluded)."""
    f = open("/proc/stat").readline().split()
    return sum(int(x) for x in (f[1], f[2], f[3], f[6], f[7], f[8])) / TICK

def cpu(pids):
    t = 0
    for p in pids.split():
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            t += int(f[11]) + int(f[12])
        except (OSError, IndexError, ValueError):
            pass
    return t / TICK

v0 = view()
nf = len(v0["features"])
cpu0 = [cpu(p) for p in (pids_api, pids_redis, pids_workers)] + [busy()]
WINDOW = v0["params"]["window"]
samples = []          # (time, rows, max age or None, max rows behind or None)
first_result = None   # first time any result was seen
stop = threading.Event()

def sample_once():
    global first_result
    try:
        v = view()
    except OSError:
        return
    now = time.time()
    res = [r for r in v["results"].values()]
    done = [r for r in res if r]
    if done and first_result is None:
        first_result = min(r["evaluated_at"] for r in done)
    # Rows behind count from the first full window on (a feature without a result is behind
    # by every row); the age of the results from the first evaluation on (a feature without
    # a result then is as old as that first evaluation).
    behind = max(v["rows"] - (r["seq"] if r else 0) for r in res) if v["rows"] >= WINDOW else None
    age = max(now - r["evaluated_at"] if r else now - first_result for r in res) if done else None
    samples.append((now, v["rows"], age, behind))

def sampler():
    while not stop.is_set():
        t = time.time()
        sample_once()
        stop.wait(max(0.0, interval - (time.time() - t)))

cmd = [sim, "--target", api, "--rate", str(rate), "--batch", batch, "--duration", str(dur),
       "--concurrency", conc, "--seed", seed, "--json", "--progress", "none"]
th = threading.Thread(target=sampler, daemon=True)
t_start = time.time()
with open(sim_log, "w") as log, open(sim_log + ".json", "w+") as js:
    th.start()
    p = subprocess.Popen(cmd, stdout=js, stderr=log)
    def ended(signum, _frame):  # the script is being stopped: stop drift-sim too
        p.terminate()
        os._exit(128 + signum)
    signal.signal(signal.SIGTERM, ended)
    signal.signal(signal.SIGINT, ended)
    _, status, usage = os.wait4(p.pid, 0)
    t_last = time.time()  # every request answered: the last row is in Redis
    p.returncode = os.waitstatus_to_exitcode(status)
    js.seek(0)
    stdout = js.read()
stop.set()
cpu1 = [cpu(p_) for p_ in (pids_api, pids_redis, pids_workers)] + [busy()]
sim_cpu = usage.ru_utime + usage.ru_stime
th.join()
lines = [l for l in stdout.splitlines() if l.startswith("{")]
if p.returncode != 0 or not lines:
    sys.stderr.write(f"drift-sim failed (exit {p.returncode}); see {sim_log}:\n")
    sys.stderr.write(open(sim_log).read()[-2000:])
    sys.exit(1)
s = json.loads(lines[-1])
at_last = counters(view())

def accounted(c):
    """Jobs acknowledged: evaluated, stale or dead-lettered. The contract counts superseded
    jobs among the stale ones; should it ever count them apart, they are added."""
    n = c["evaluations"] + c["stale"] + c["dead_letters"]
    return n if n >= c["rounds"] * nf else n + c["superseded"]

# Idle: every job of every round accounted, and nothing pending or unread in the group.
idle_s = None
deadline = t_last + idle_timeout
while True:
    c = counters(view())
    pending, lag = group()
    if accounted(c) >= c["rounds"] * nf and pending == 0 and lag in (0, None):
        idle_s = time.time() - t_last
        break
    if time.time() > deadline:
        break
    time.sleep(0.05)
final = counters(view())
pending, lag = group()

send_s = s["elapsed_seconds"]
ages = [x[2] for x in samples if x[2] is not None]
behind = sorted(x[3] for x in samples if x[3] is not None)
jobs = final["rounds"] * nf
errors = sum(s.get("errors", {}).values())
cpu_share = [(b - a) / (t_last - t_start) for a, b in zip(cpu0, cpu1)] + [sim_cpu / (t_last - t_start)]
r = {
    "label": label, "rate_target": rate, "rows_per_s": s["rows_per_second"],
    "rows": s["rows_accepted"], "send_s": send_s, "rounds": final["rounds"], "jobs": jobs,
    "evaluations": final["evaluations"], "stale": final["stale"],
    "superseded": final["superseded"], "dead_letters": final["dead_letters"],
    "superseded_reported": "superseded" in v0["counters"],
    "share": final["evaluations"] / jobs if jobs else None,
    "evals_per_s": at_last["evaluations"] / send_s if send_s else 0.0,
    "age_max_s": max(ages) if ages else None,
    "behind_p50": statistics.median(behind) if behind else None,
    "behind_max": behind[-1] if behind else None,
    "idle_s": idle_s, "idle_timeout": idle_timeout, "pending_end": pending, "lag_end": lag,
    "ingest_p99_ms": (s.get("latency_ms") or {}).get("p99"), "errors": errors,
    "cpu_api": cpu_share[0], "cpu_redis": cpu_share[1], "cpu_workers": cpu_share[2],
    "cpu_machine": cpu_share[3], "cpu_sim": cpu_share[4],
    "samples": len(samples), "workers": len(pids_workers.split()),
}
json.dump(r, open(out_json, "w"))

def f(x, spec, none="-"):
    return none if x is None else format(x, spec)

share = "-" if r["share"] is None else f"{100 * r['share']:.2f}%"
idle = f(idle_s, ".2f") if idle_s is not None else f">{idle_timeout:.0f}"
print(f"{label:<7} {rate:>7.0f} {r['rows_per_s']:>8.0f} {r['rows']:>8} {r['rounds']:>6} {jobs:>7} "
      f"{r['evaluations']:>7} {r['stale']:>7} {r['superseded']:>6} {r['dead_letters']:>4} "
      f"{share:>8} {r['evals_per_s']:>8.0f} {f(r['age_max_s'], '.2f', 'never'):>7} "
      f"{f(r['behind_p50'], '.0f'):>7} {f(r['behind_max'], '.0f'):>7} {idle:>7} "
      f"{f(r['ingest_p99_ms'], '.1f'):>7} {errors:>4}   "
      + " ".join(f"{100 * cpu_share[i]:4.0f}%" for i in (4, 0, 1, 2, 3)), flush=True)
if idle_s is None:
    print(f"        (not idle after {idle_timeout:.0f} s: pending {pending}, lag {lag}, "
          f"accounted {accounted(final)} of {jobs})")
PY

header() {
  echo "$1"
  echo "window $WINDOW, stride $STRIDE, 30 features; drift-sim --batch $BATCH --concurrency $CONC --duration $DUR" \
    "straight to one API; $(nproc) cores shared by drift-sim, the API, redis-server and the workers" \
    "(load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
  echo "rows/s: achieved (accepted rows / sending time) | jobs = rounds x 30 | share = evaluations / jobs (final)"
  echo "stale: jobs acknowledged without an evaluation of their own; supsd: of those, skipped for a newer window"
  echo "evals/s: evaluations while sending / sending time | age: max over samples of now - oldest result's evaluated_at"
  echo "behind: rows - results[f].seq, max over features, p50 and max over samples | idle: s from the last answer until"
  echo "every job is accounted and the group has nothing pending or unread | p99: ingest latency (ms)"
  echo "cpu while sending, share of one core: drift-sim | API | redis | workers | machine (all processes, $(nproc) cores = $(($(nproc) * 100))%)"
  printf '%-7s %7s %8s %8s %6s %7s %7s %7s %6s %4s %8s %8s %7s %7s %7s %7s %7s %4s   %5s %5s %5s %5s %5s\n' \
    point target rows/s rows rounds jobs evals stale supsd dead share evals/s age_s \
    bhnd50 bhndmax idle_s p99_ms err sim api redis wrkrs machine
}

POINT_N=0
# run_point LABEL RATE NWORKERS: prints the line; the JSON lands in $WORK/$LABEL/point.json
run_point() {
  local label=$1 rate=$2 n=$3
  POINT_N=$((POINT_N + 1))
  start_point "$n" "p$POINT_N"
  python3 "$WORK/point.py" "$label" "http://127.0.0.1:$APORT" "$RPORT" "$BIN_DIR/drift-sim" \
    "$rate" "$BATCH" "$DUR" "$CONC" "$SEED" "$INTERVAL" "$IDLE_TIMEOUT" \
    "$WORK/p$POINT_N/point.json" "$WORK/p$POINT_N/sim.log" \
    "$API_PID" "$REDIS_PID" "${WORKER_PIDS[*]}" &
  POINT_PID=$!
  # In the background and waited for, so that a signal reaches the traps at once.
  wait "$POINT_PID"
  POINT_PID=""
  LAST_JSON="$WORK/p$POINT_N/point.json"
  if [ "${REDIS_STATS:-0}" = 1 ]; then
    # Where Redis's time went during the point: the five costliest commands.
    redis-cli -p "$RPORT" INFO commandstats | tr -d '\r' | python3 -c '
import re, sys
rows = []
for line in sys.stdin:
    m = re.match(r"cmdstat_(\w+):calls=(\d+),usec=(\d+),usec_per_call=([\d.]+)", line)
    if m:
        rows.append((int(m[3]), m[1], int(m[2]), float(m[4])))
for usec, name, calls, per in sorted(rows, reverse=True)[:int(__import__("os").environ.get("TOP", "5"))]:
    print(f"        redis {name:<12} calls {calls:>8}  total {usec / 1e6:7.2f} s  {per:8.1f} us/call")
'
    # The script time by script: the slow log holds every call (sha, microseconds).
    redis-cli -p "$RPORT" --json SLOWLOG GET 2000000 | python3 -c '
import glob, hashlib, json, sys
names = {hashlib.sha1(open(f, "rb").read()).hexdigest(): f.split("/")[-1]
         for f in glob.glob("store/src/scripts/*.lua")}
agg = {}
for e in json.load(sys.stdin):
    args = e[3]
    if args and args[0].lower() == "evalsha":
        name = names.get(args[1], args[1][:8])
        n, t = agg.get(name, (0, 0))
        agg[name] = (n + 1, t + e[2])
for name, (n, t) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
    print(f"        script {name:<17} calls {n:>7}  total {t / 1e6:7.2f} s  {t / n:8.1f} us/call")
'
  fi
  if grep -qiE 'panic|error' "$WORK/p$POINT_N"/{api,worker-*}.log 2>/dev/null; then
    echo "        (logged errors: $(grep -hiE 'panic|error' "$WORK/p$POINT_N"/{api,worker-*}.log 2>/dev/null | tail -1 | cut -c1-160))"
  fi
  stop_point
}
# report.py: the summaries of the workers and capacity modes (argv: what, then values).
cat >"$WORK/report.py" <<'PY'
import json, sys
what, args = sys.argv[1], sys.argv[2:]
if what == "get":      # JSON key
    v = json.load(open(args[0])).get(args[1])
    print("" if v is None else v)
elif what == "passes":   # JSON min-share: exit 0 when it evaluated enough and became idle
    d = json.load(open(args[0]))
    ok = d["idle_s"] is not None and d["share"] is not None and d["share"] >= float(args[1])
    sys.exit(0 if ok else 1)
elif what == "workers":  # JSON... (first = baseline)
    ds = [json.load(open(a)) for a in args]
    base = ds[0]["evals_per_s"]
    for d in ds:
        ratio = f"x{d['evals_per_s'] / base:5.2f}" if base else "  n/a"
        print(f"  {d['workers']:>3} worker(s): {d['evals_per_s']:8.0f} evaluations/s  {ratio}"
              f"   (share {100 * (d['share'] or 0):6.2f}%, {d['rows_per_s']:.0f} rows/s achieved,"
              f" workers used {100 * d['cpu_workers']:.0f}% of a core, redis {100 * d['cpu_redis']:.0f}%)")
elif what == "capacity":  # JSON target min-share stride features
    d = json.load(open(args[0]))
    target, share, stride, nf = float(args[1]), float(args[2]), float(args[3]), int(args[4])
    rps = d["rows_per_s"]
    print(f"capacity: {target:.0f} rows/s target ({rps:.0f} rows/s achieved = {rps / stride:.0f} rounds/s"
          f" = {nf * rps / stride:.0f} jobs/s) with {100 * d['share']:.2f}% of the jobs evaluated"
          f" (>= {100 * share:.1f}%)")
    if rps < 0.95 * target:
        print("  (the sender fell short of that target: there the bound is ingest, not evaluation)")
PY
report() { python3 "$WORK/report.py" "$@"; }

do_sweep() {
  header "== sweep: $NW worker(s), one point per target rate"
  local r
  for r in "${RATE_LIST[@]}"; do run_point "r$r" "$r" "$NW"; done
  if [ -n "${LAST_JSON:-}" ] && [ "$(report get "$LAST_JSON" superseded_reported)" != True ]; then
    echo "(this API reports no counters.superseded: shown as 0; superseded jobs are counted in stale)"
  fi
}

do_workers() {
  header "== workers: evaluations/s at $OVERLOAD_RATE rows/s (target) with ${WORKER_LIST[*]} worker(s)"
  local n all=()
  for n in "${WORKER_LIST[@]}"; do
    run_point "w$n" "$OVERLOAD_RATE" "$n"
    all+=("$LAST_JSON")
  done
  echo "evaluations/s while sending, relative to ${WORKER_LIST[0]} worker(s) (same run; $(nproc) cores shared by everything):"
  report workers "${all[@]}"
}

do_capacity() {
  local best="" best_json="" r lo hi i
  if [ -n "${CAP_RATES:-}" ]; then
    header "== capacity: $NW worker(s), rates ${CAP_RATES}; pass = share >= $CAP_SHARE and idle"
    for r in $CAP_RATES; do
      run_point "c$r" "$r" "$NW"
      if report passes "$LAST_JSON" "$CAP_SHARE"; then best=$r; best_json=$LAST_JSON; fi
    done
  else
    header "== capacity: $NW worker(s), bisection in [$CAP_LO, $CAP_HI] rows/s, $CAP_STEPS probes; pass = share >= $CAP_SHARE and idle"
    lo=$CAP_LO; hi=$CAP_HI
    # The upper end first: if it passes, the pipeline keeps up with everything asked for.
    run_point "c$hi" "$hi" "$NW"
    if report passes "$LAST_JSON" "$CAP_SHARE"; then
      best=$hi; best_json=$LAST_JSON
    else
      run_point "c$lo" "$lo" "$NW"
      if report passes "$LAST_JSON" "$CAP_SHARE"; then
        best=$lo; best_json=$LAST_JSON
        for i in $(seq $((CAP_STEPS - 2))); do
          [ $((hi * 100)) -le $((lo * 105)) ] && break  # within 5%
          # Geometric midpoint: the range spans decades, the answer is wanted within a %.
          r=$(python3 -c 'import math,sys; print(round(math.sqrt(int(sys.argv[1]) * int(sys.argv[2]))))' "$lo" "$hi")
          run_point "c$r" "$r" "$NW"
          if report passes "$LAST_JSON" "$CAP_SHARE"; then lo=$r; best=$r; best_json=$LAST_JSON; else hi=$r; fi
        done
      fi
    fi
  fi
  if [ -z "$best" ]; then
    echo "capacity: no probed rate kept >= $CAP_SHARE of the jobs evaluated"
  else
    report capacity "$best_json" "$best" "$CAP_SHARE" "$STRIDE" 30
    [ -z "${hi:-}" ] || [ "$hi" = "$best" ] || echo "  (lowest failing rate probed: $hi rows/s target)"
  fi
}

case "$MODE" in
  sweep) do_sweep ;;
  workers) do_workers ;;
  capacity) do_capacity ;;
  all) do_sweep; echo; do_workers; echo; do_capacity ;;
esac
