#!/usr/bin/env bash
# Detection delay of a mean shift on mean_radius at the default window (500) and stride (100),
# measured end to end: redis-server, one drift-api and two `drift-worker run` on loopback, and
# drift-sim --watch, for several shift sizes and seeds. Prints a table (magnitude -> delay in
# rows: median, min, max over the seeds that detected it; detections; false alarms) and keeps
# every run's JSON summary in $OUT.
#
# Each run gets its own key prefix (API and workers restarted), so no run sees another's rows.
# The rate is kept low enough for two workers to evaluate every boundary before the next one
# supersedes it (the summaries' stale_jobs must be 0, otherwise delays are upper bounds).
#
# Usage: simulator/scripts/delay_table.sh            (after `make release`)
# Knobs (environment): MAGNITUDES="0.25 0.5 1" SEEDS=10 RATE=1000 BATCH=50 CONCURRENCY=4
#   DRIFT_AFTER=1000 ROWS_0_25=6000 ROWS_0_5=3500 ROWS_1=2500 MODEL=population
#   BIN=target/release OUT=target/delay_table
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${BIN:-$ROOT/target/release}
OUT=${OUT:-$ROOT/target/delay_table}
MAGNITUDES=${MAGNITUDES:-"0.25 0.5 1"}
SEEDS=${SEEDS:-10}
RATE=${RATE:-1000}
BATCH=${BATCH:-50}
CONCURRENCY=${CONCURRENCY:-4}
DRIFT_AFTER=${DRIFT_AFTER:-1000}
MODEL=${MODEL:-population}

for b in drift-api drift-worker drift-sim; do
    [[ -x $BIN/$b ]] || { echo "missing $BIN/$b: run 'make release' first" >&2; exit 1; }
done
command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install redis-server)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found (used to tabulate)" >&2; exit 1; }

rows_for() {
    case $1 in
        0.25) echo "${ROWS_0_25:-6000}" ;;
        0.5) echo "${ROWS_0_5:-3500}" ;;
        1 | 1.0) echo "${ROWS_1:-2500}" ;;
        *) echo "${ROWS_OTHER:-6000}" ;;
    esac
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() { # url
    for _ in $(seq 1 100); do
        if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$1" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "$1 did not answer" >&2
    return 1
}

mkdir -p "$OUT"
rm -f "$OUT"/runs.jsonl
# Only processes this script started and that are still its children are ever signalled.
REDIS_PID=
RUN_PIDS=()
cleanup() {
    for pid in "${RUN_PIDS[@]}" $REDIS_PID; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$OUT" >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!
REDIS=redis://127.0.0.1:$REDIS_PORT
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

started=$(date +%s)
for m in $MAGNITUDES; do
    rows=$(rows_for "$m")
    for seed in $(seq 1 "$SEEDS"); do
        prefix="delay-$m-$seed"
        api_port=$(free_port)
        export DRIFT_REDIS_URL=$REDIS DRIFT_KEY_PREFIX=$prefix
        "$BIN/drift-api" --listen "127.0.0.1:$api_port" >>"$OUT/api.log" 2>&1 &
        api_pid=$!
        w1_port=$(free_port)
        w2_port=$(free_port)
        "$BIN/drift-worker" run --listen "127.0.0.1:$w1_port" --block-ms 200 --refresh-ms 200 >>"$OUT/worker.log" 2>&1 &
        w1=$!
        "$BIN/drift-worker" run --listen "127.0.0.1:$w2_port" --block-ms 200 --refresh-ms 200 >>"$OUT/worker.log" 2>&1 &
        w2=$!
        RUN_PIDS=("$api_pid" "$w1" "$w2")
        wait_http "http://127.0.0.1:$api_port/v1/monitors/breast_cancer"
        wait_http "http://127.0.0.1:$w1_port/healthz"
        wait_http "http://127.0.0.1:$w2_port/healthz"
        # Let the workers find the monitor (refresh) and block on its jobs stream, so the
        # first boundaries are not left waiting.
        sleep 1
        "$BIN/drift-sim" --target "http://127.0.0.1:$api_port" --drift true --drift-kind shift \
            --drift-features mean_radius --drift-magnitude "$m" --drift-after "$DRIFT_AFTER" \
            --rows "$rows" --seed "$seed" --model "$MODEL" --rate "$RATE" --batch "$BATCH" \
            --concurrency "$CONCURRENCY" --watch --watch-timeout 20 --progress none --json \
            2>>"$OUT/sim.log" | tail -n 1 >>"$OUT/runs.jsonl"
        kill "${RUN_PIDS[@]}" 2>/dev/null || true
        wait "${RUN_PIDS[@]}" 2>/dev/null || true
        RUN_PIDS=()
        redis-cli -p "$REDIS_PORT" flushall >/dev/null
        echo "magnitude $m seed $seed done ($(($(date +%s) - started)) s)" >&2
    done
done

python3 - "$OUT/runs.jsonl" <<'EOF'
import json, statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    s = json.loads(line)
    runs[s["drift"]["magnitude"]].append(s)
first = next(iter(runs.values()))[0]
print(f"model {first['model']}, window {first['monitor_params']['window']}, stride "
      f"{first['monitor_params']['stride']}, onset after {first['drift']['after']} rows, "
      f"rate {first['rate_target']:g} rows/s, batch {first['batch']}, concurrency {first['concurrency']}")
print()
print("| shift (sd) | rows sent | detected | delay rows median | min | max | delay s median | false alarms (runs with one) | stale jobs | drift-feature evaluations missed before detection |")
print("|---|---|---|---|---|---|---|---|---|---|")
for m in sorted(runs):
    rs = runs[m]
    w = [r["watch"] for r in rs]
    delays = sorted(x["delay_rows"] for x in w if x["detected"])
    secs = sorted(x["delay_seconds"] for x in w if x["detected"] and x["delay_seconds"] is not None)
    fa = sum(x["false_alarms"] for x in w)
    fa_runs = sum(1 for x in w if x["false_alarms"] > 0)
    stale = sum(x["stale_jobs"] or 0 for x in w)
    missed = sum(x.get("drift_evaluations_missed") or 0 for x in w)
    undetected = [r["seed"] for r in rs if not r["watch"]["detected"]]
    med = statistics.median(delays) if delays else "not detected"
    lo = delays[0] if delays else "-"
    hi = delays[-1] if delays else "-"
    sec = f"{statistics.median(secs):.2f}" if secs else "-"
    note = f" (not detected: seeds {', '.join(map(str, undetected))})" if undetected else ""
    print(f"| {m:g} | {rs[0]['rows_sent']} | {len(delays)}/{len(rs)}{note} | {med} | {lo} | {hi} | {sec} | {fa} ({fa_runs}) | {stale} | {missed} |")
print()
print("per run (magnitude, seed: delay rows / false alarms by feature):")
for m in sorted(runs):
    for r in runs[m]:
        w = r["watch"]
        print(f"  {m:g} seed {r['seed']}: {w['delay_rows'] if w['detected'] else 'not detected'}"
              f" / {w['false_alarm_features'] or '-'}"
              f"{'' if w['final_boundary_evaluated'] else ' (last boundary not evaluated)'}"
              f"{' (stale jobs: %d, drift-feature boundaries missed: %s)' % (w['stale_jobs'], w.get('drift_evaluations_missed')) if w['stale_jobs'] else ''}")
EOF
