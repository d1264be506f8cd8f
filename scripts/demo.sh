#!/usr/bin/env bash
# End-to-end demo of the drift monitor on loopback, without Docker (`make demo`).
#
# The stack is brought up by drift-stack (testkit/src/bin/drift-stack.rs), the same
# launcher the full-stack test uses:
#   redis-server -> 3 x drift-api -> nginx gateway (local.conf.template)
#                -> 2 x drift-worker run, 1 x drift-worker export -> prometheus (+ alerts)
# then the demo streams rows without drift, then with drift on mean_radius (drift-sim),
# and prints what the monitor, Prometheus and the alerts say. Then it registers the
# example `penguins` monitor of data/monitors.toml (categorical features, missing values)
# and streams its rows without, then with a categorical drift, and prints what that
# monitor flags. Everything it started is stopped on exit (Ctrl-C included).
#
# Settings (environment; defaults in brackets):
#   DEMO_GATEWAY_PORT [8002]           nginx, on 127.0.0.1 (0: a free port)
#   DEMO_PROMETHEUS_PORT [9090]        Prometheus, on 127.0.0.1 (0: a free port)
#   DEMO_APIS [3]                      drift-api replicas behind the gateway
#   DEMO_WORKERS [2]                   drift-worker run instances
#   DEMO_KEY_PREFIX [drift]            Redis key prefix of every service
#   DEMO_WINDOW [$DRIFT_WINDOW or 500] DEMO_STRIDE [$DRIFT_STRIDE or 100]
#                                      rolling window and stride of the default monitor
#   DEMO_MONITOR [breast_cancer]
#   DEMO_ROWS [3000]                   rows per phase (no drift, then drift)
#   DEMO_RATE [1000] DEMO_BATCH [100]  rows/s and rows per request of the stream
#   DEMO_DETECT_TIMEOUT [60]           seconds to wait for the drift to show in Prometheus
#   DEMO_SKIP_BUILD [0]                1: do not run cargo, use the binaries in DEMO_BIN_DIR
#   DEMO_BIN_DIR [${CARGO_TARGET_DIR:-target}/release]
#   DEMO_WORKDIR [mktemp -d]           logs and drift-stack's info (removed at exit
#                                      unless DEMO_KEEP_WORKDIR=1 or the demo failed; the
#                                      server logs and configs are then copied there)
#   DEMO_HOLD [auto]                   1: keep the stack running until Ctrl-C; 0: stop at
#                                      the end; auto: 1 when stdin is a terminal
#   DEMO_STRICT [0]                    1: exit 2 unless mean_radius (and, with DEMO_PENGUINS=1,
#                                      the penguins drift feature) is detected as drifted
#   DEMO_PENGUINS [1]                  0: skip the penguins monitor
#   DEMO_PENGUINS_ROWS [1500]          penguins rows per phase (the drift starts after
#                                      DEMO_PENGUINS_AFTER [500] rows of the second)
#   DEMO_PENGUINS_KIND [category-share] DEMO_PENGUINS_FEATURES [species]
#   DEMO_PENGUINS_CATEGORY [Chinstrap] DEMO_PENGUINS_MAGNITUDE [0.6]
#                                      the penguins drift (drift-sim --drift-kind ...;
#                                      e.g. missing / body_mass_g / - / 0.3)
#   DEMO_PENGUINS_RATE [500] DEMO_PENGUINS_BATCH [50]
#   DEMO_ADMIN_TOKEN [random]          admin token of the replicas (registers penguins)
#   DEMO_INSTALL [auto]                auto: apt-get install missing packages when root
# Redis, the replicas, workers and the exporter get free loopback ports (drift-stack
# reports them); the services run inside drift-stack with their defaults, so DRIFT_*
# variables of drift-api/drift-worker other than the window and stride do not apply.
# drift-stack takes no monitors file: the penguins entry of data/monitors.toml is read
# here and registered with PUT /v1/monitors/penguins (the same reference and parameters
# that `drift-api --monitors-config data/monitors.toml` would register).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

GATEWAY_PORT="${DEMO_GATEWAY_PORT:-8002}"
PROM_PORT="${DEMO_PROMETHEUS_PORT:-9090}"
APIS="${DEMO_APIS:-3}"
WORKERS="${DEMO_WORKERS:-2}"
KEY_PREFIX="${DEMO_KEY_PREFIX:-drift}"
WINDOW="${DEMO_WINDOW:-${DRIFT_WINDOW:-500}}"
STRIDE="${DEMO_STRIDE:-${DRIFT_STRIDE:-100}}"
MONITOR="${DEMO_MONITOR:-breast_cancer}"
ROWS="${DEMO_ROWS:-3000}"
RATE="${DEMO_RATE:-1000}"
BATCH="${DEMO_BATCH:-100}"
DETECT_TIMEOUT="${DEMO_DETECT_TIMEOUT:-60}"
BIN_DIR="${DEMO_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}"
STRICT="${DEMO_STRICT:-0}"
PENGUINS="${DEMO_PENGUINS:-1}"
P_MONITOR=penguins
P_ROWS="${DEMO_PENGUINS_ROWS:-1500}"
P_AFTER="${DEMO_PENGUINS_AFTER:-500}"
P_KIND="${DEMO_PENGUINS_KIND:-category-share}"
P_FEATURES="${DEMO_PENGUINS_FEATURES:-species}"
P_CATEGORY="${DEMO_PENGUINS_CATEGORY:-Chinstrap}"
P_MAGNITUDE="${DEMO_PENGUINS_MAGNITUDE:-0.6}"
P_RATE="${DEMO_PENGUINS_RATE:-500}"
P_BATCH="${DEMO_PENGUINS_BATCH:-50}"
MONITORS_TOML="$ROOT/data/monitors.toml"
P_CSV="" # the penguins reference, as data/monitors.toml names it (set by penguins_put)
ADMIN_TOKEN="${DEMO_ADMIN_TOKEN:-demo-$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')}"
HOLD="${DEMO_HOLD:-auto}"
if [ "$HOLD" = auto ]; then
    if [ -t 0 ]; then HOLD=1; else HOLD=0; fi
fi

# Set from drift-stack's info once it is up.
GATEWAY=""
PROM=""
EXPORTER=""
STACK_PID=""
REDIS_PID=""

log() { printf '[demo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
section() { printf '\n==== %s ====\n' "$*" >&2; }

WORK=""
FAILED=0
CLEANED=0

# Copies the logs and configs of drift-stack's servers into $WORK/logs: drift-stack
# removes its own directory when it exits.
keep_server_logs() {
    [ -f "$WORK/stack.json" ] || return 0
    python3 - "$WORK/stack.json" "$WORK/logs/servers" <<'PY' || true
import json, pathlib, shutil, sys
info = json.load(open(sys.argv[1]))
dest = pathlib.Path(sys.argv[2])
dest.mkdir(parents=True, exist_ok=True)
logs = info.get("logs") or {}
files = {"nginx-error.log": logs.get("gateway_error"), "redis.log": logs.get("redis"),
         "prometheus.log": logs.get("prometheus"),
         "nginx.conf": pathlib.Path(info["gateway_dir"]) / "nginx.conf",
         "prometheus.yml": pathlib.Path(info["prometheus_dir"]) / "prometheus.yml"}
for name, f in files.items():
    if f and pathlib.Path(f).is_file():
        shutil.copy(f, dest / name)
PY
}

cleanup() {
    [ "$CLEANED" = 1 ] && return
    CLEANED=1
    local keep=0
    if [ "$FAILED" = 1 ] || [ "${DEMO_KEEP_WORKDIR:-0}" = 1 ]; then keep=1; fi
    if [ -n "$STACK_PID" ] && kill -0 "$STACK_PID" 2>/dev/null; then
        [ "$keep" = 1 ] && keep_server_logs
        log "stopping drift-stack (pid $STACK_PID)"
        kill -TERM "$STACK_PID" 2>/dev/null || true
        for _ in $(seq 1 300); do
            kill -0 "$STACK_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$STACK_PID" 2>/dev/null; then
            log "drift-stack did not stop within 30 s; killing it"
            kill -KILL "$STACK_PID" 2>/dev/null || true
            # Redis has no parent-death signal (see drift-stack.rs): never leave it behind.
            [ -n "$REDIS_PID" ] && kill -KILL "$REDIS_PID" 2>/dev/null || true
        fi
        local rc=0
        wait "$STACK_PID" 2>/dev/null || rc=$?
        [ "$rc" = 0 ] || log "drift-stack exited with status $rc (see $WORK/logs/drift-stack.log)"
    fi
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "$keep" = 1 ]; then
            log "logs kept in $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
}
on_signal() {
    log "interrupted"
    exit 130
}
trap cleanup EXIT
trap on_signal INT TERM

die() {
    FAILED=1
    log "ERROR: $*"
    exit 1
}

# Prints the last lines of drift-stack's log (after a failure).
show_log() {
    local f="$WORK/logs/drift-stack.log"
    if [ -f "$f" ]; then
        echo "---- last lines of $f ----" >&2
        tail -n 30 "$f" >&2
    fi
}

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# info KEY: a value of drift-stack's info file (lists joined by spaces).
info() {
    python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))[sys.argv[2]]
print(" ".join(map(str, v)) if isinstance(v, list) else v)
' "$WORK/stack.json" "$1"
}

# prom_query EXPR: prints one line per result series "labels value" (empty if none).
prom_query() {
    curl -fsS --max-time 5 -G "$PROM/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
        python3 -c '
import json, sys
try:
    data = json.load(sys.stdin)["data"]["result"]
except Exception:
    sys.exit(0)
for r in data:
    labels = ",".join(f"{k}={v}" for k, v in sorted(r["metric"].items())
                      if k not in ("__name__", "job", "instance"))
    print(labels or "-", r["value"][1])
' || true
}

# show_monitor [NAME]: prints the monitor as the API reports it (through the gateway),
# compactly: for each feature its kind, decision, the signals that fired (distribution:
# KS or total variation; missing: the missing share), statistic and window missing share.
show_monitor() {
    local name="${1:-$MONITOR}" body
    if ! body="$(curl -fsS --max-time 5 "$GATEWAY/v1/monitors/$name")"; then
        log "GET $GATEWAY/v1/monitors/$name failed"
        return 0
    fi
    printf '%s' "$body" | python3 -c '
import json, sys
raw = sys.stdin.read()
try:
    doc = json.loads(raw)
except ValueError:
    print(raw[:2000]); sys.exit(0)
results = doc.get("results") if isinstance(doc, dict) else None
if not isinstance(results, dict):
    # Unknown shape: show the document itself.
    text = json.dumps(doc, indent=1)
    print(text if len(text) < 3000 else text[:3000] + "\n... (truncated)")
    sys.exit(0)
for k in ("name", "features_drifting", "drift_share", "dataset_drifted", "last_detected_at", "params", "counters"):
    if k in doc:
        print(f"  {k}: {json.dumps(doc[k])}")
rows = sorted(((f, r) for f, r in results.items() if isinstance(r, dict)),
              key=lambda fr: (not fr[1].get("drifted"), fr[1].get("p_value") if isinstance(fr[1].get("p_value"), (int, float)) else 2))
print(f"  {len(rows)} feature results; drifted first, then lowest p-values:")
line = "    %-24s %-11s %-7s %-12s %10s %10s %8s %8s  %s"
print(line % ("feature", "kind", "drifted", "fired", "p_value", "statistic", "missing", "seq", "top category"))
def num(v, fmt):
    return format(v, fmt) if isinstance(v, (int, float)) else str(v)
for f, r in rows[:8]:
    fired = "+".join(s.get("signal", "?") for s in r.get("signals") or [] if s.get("fired")) or "-"
    print(line % (f, r.get("kind", "numeric"), r.get("drifted"), fired, num(r.get("p_value"), ".3g"),
                  num(r.get("statistic"), ".4f"), num(r.get("missing_share"), ".3f"), r.get("seq"),
                  r.get("top_category") or ""))
'
}

# ---------------------------------------------------------------- tools
for var in DEMO_HOST DEMO_REDIS_PORT DEMO_API_PORTS DEMO_WORKER_PORTS DEMO_EXPORTER_PORT; do
    if [ -n "${!var:-}" ]; then
        log "$var is ignored: drift-stack listens on 127.0.0.1 and picks free ports for redis," \
            "the replicas, workers and exporter (DEMO_APIS / DEMO_WORKERS set how many)"
    fi
done
need_pkgs=()
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || need_pkgs+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_pkgs+=(nginx-light)
command -v prometheus >/dev/null 2>&1 || need_pkgs+=(prometheus)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
command -v python3 >/dev/null 2>&1 || need_pkgs+=(python3)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    cmd="apt-get update && apt-get install -y --no-install-recommends ${need_pkgs[*]}"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ "${DEMO_INSTALL:-auto}" != 0 ]; then
        log "installing ${need_pkgs[*]}"
        DEBIAN_FRONTEND=noninteractive bash -c "$cmd" >&2
        # The packages may start system services on the ports the demo wants (9090...).
        for svc in redis-server nginx prometheus; do
            if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
            if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
        done
    else
        die "missing ${need_pkgs[*]}; install with: sudo $cmd"
    fi
fi

for port in "$GATEWAY_PORT" "$PROM_PORT"; do
    [ "$port" = 0 ] && continue
    port_free "$port" || die "port 127.0.0.1:$port is already in use (a system prometheus or nginx service? change DEMO_GATEWAY_PORT / DEMO_PROMETHEUS_PORT)"
done
[ "$APIS" -ge 1 ] 2>/dev/null || die "DEMO_APIS must be at least 1"

# ---------------------------------------------------------------- build
section "build"
if [ "${DEMO_SKIP_BUILD:-0}" != 1 ]; then
    command -v cargo >/dev/null 2>&1 || die "cargo not found (or set DEMO_SKIP_BUILD=1 and DEMO_BIN_DIR)"
    (cd "$ROOT" && cargo build --release -p drift-testkit -p drift-sim --bin drift-stack --bin drift-sim) ||
        die "cargo build of drift-stack/drift-sim failed"
else
    log "DEMO_SKIP_BUILD=1: using binaries in $BIN_DIR"
fi
for b in drift-stack drift-sim; do
    [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b not found"
done

# ---------------------------------------------------------------- work dir
WORK="${DEMO_WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/drift-demo.XXXXXX")}"
mkdir -p "$WORK/logs"
# drift-stack's directories live under this one (TMPDIR below); nginx started as root
# runs its workers as nobody, who must be able to traverse it.
chmod 755 "$WORK"
rm -f "$WORK/stack.json"
log "work dir $WORK"

# ---------------------------------------------------------------- start
section "start"
# Its own session: a Ctrl-C reaches this script only, whose exit trap then stops the stack
# in order (SIGTERM: replicas first, so buffered rows flush), not every server at once.
SETSID=()
if command -v setsid >/dev/null 2>&1; then SETSID=(setsid); fi
# The admin token goes by environment, not argv (ps shows argv).
TMPDIR="$WORK" RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 DRIFT_LOG_FORMAT="${DRIFT_LOG_FORMAT:-text}" \
    DRIFT_STACK_ADMIN_TOKEN="$ADMIN_TOKEN" \
    "${SETSID[@]}" "$BIN_DIR/drift-stack" --apis "$APIS" --workers "$WORKERS" \
    --window "$WINDOW" --stride "$STRIDE" --key-prefix "$KEY_PREFIX" \
    --gateway-port "$GATEWAY_PORT" --prometheus-port "$PROM_PORT" \
    --info "$WORK/stack.json" >"$WORK/logs/drift-stack.log" 2>&1 </dev/null &
STACK_PID=$!
log "started drift-stack (pid $STACK_PID, log $WORK/logs/drift-stack.log)"
deadline=$((SECONDS + 180))
until [ -f "$WORK/stack.json" ]; do
    if ! kill -0 "$STACK_PID" 2>/dev/null; then
        show_log
        die "drift-stack exited before the stack was up"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        show_log
        die "the stack was not up within 180 s"
    fi
    sleep 0.3
done
GATEWAY="$(info gateway_url)"
PROM="$(info prometheus_url)"
EXPORTER="$(info exporter_url)"
REDIS_PID="$(info redis_pid)"
grep -m1 '^drift-stack: up' "$WORK/logs/drift-stack.log" >&2 || true
log "APIs: $(info api_urls)"
log "workers: $(info worker_urls)"
log "redis: $(info redis_url) (pid $REDIS_PID)"

# ---------------------------------------------------------------- streams
stream() { # stream true|false
    "$BIN_DIR/drift-sim" --target "$GATEWAY" --drift "$1" --rows "$ROWS" --rate "$RATE" \
        --batch "$BATCH" --monitor "$MONITOR"
}

# settle [NAME]: waits until the workers drained the monitor's jobs
# (drift_jobs_pending == 0) or 20 s.
settle() {
    local name="${1:-$MONITOR}" deadline=$((SECONDS + 20)) pending
    sleep 2
    while [ "$SECONDS" -lt "$deadline" ]; do
        pending="$(prom_query "sum(drift_jobs_pending{monitor=\"$name\"})" | awk '{print $2}')"
        [ "${pending:-x}" = 0 ] && break
        sleep 1
    done
    sleep 2
}

section "phase 1: $ROWS rows WITHOUT drift (drift-sim)"
stream false || log "the stream reported errors (see above)"
settle
log "features drifting: $(prom_query "max(drift_features_drifting{monitor=\"$MONITOR\"})" | awk '{print $2}')"
log "rows ingested: $(prom_query "max(drift_rows_ingested_total{monitor=\"$MONITOR\"})" | awk '{print $2}')"
show_monitor

section "phase 2: $ROWS rows WITH drift on mean_radius (drift-sim)"
t0=$SECONDS
stream true || log "the stream reported errors (see above)"
detected=""
deadline=$((SECONDS + DETECT_TIMEOUT))
while [ "$SECONDS" -lt "$deadline" ]; do
    v="$(prom_query "max(drift_feature_drifted{monitor=\"$MONITOR\",feature=\"mean_radius\"})" | awk '{print $2}')"
    if [ "$v" = 1 ]; then
        detected=$((SECONDS - t0))
        break
    fi
    sleep 1
done
settle

section "result"
if [ -n "$detected" ]; then
    log "mean_radius drift visible in Prometheus ${detected}s after the drifting stream started"
else
    log "mean_radius drift NOT visible in Prometheus within ${DETECT_TIMEOUT}s after the stream"
fi
echo "Features drifting now (Prometheus):" >&2
prom_query "max by (feature) (drift_feature_drifted{monitor=\"$MONITOR\"}) == 1" | sed 's/^/  /' >&2
echo "p-values of drifting features:" >&2
prom_query "max by (feature) (drift_feature_p_value{monitor=\"$MONITOR\"}) and on (feature) (max by (feature) (drift_feature_drifted{monitor=\"$MONITOR\"}) == 1)" | sed 's/^/  /' >&2
echo "Firing alerts (Prometheus ALERTS):" >&2
alerts="$(prom_query 'ALERTS{alertstate="firing"}')"
printf '%s\n' "${alerts:-  none}" | sed 's/^/  /' >&2
echo "Monitor through the gateway (GET /v1/monitors/$MONITOR):" >&2
show_monitor

# ---------------------------------------------------------------- penguins
# penguins_put: registers the penguins entry of data/monitors.toml (its reference CSV and
# parameters, as the monitors file gives them) with PUT /v1/monitors/penguins.
penguins_put() {
    local spec csv query
    spec="$(python3 - "$MONITORS_TOML" "$P_MONITOR" <<'PY'
import pathlib, sys, tomllib, urllib.parse
path, name = pathlib.Path(sys.argv[1]), sys.argv[2]
entries = [m for m in tomllib.loads(path.read_text()).get("monitor", []) if m.get("name") == name]
if not entries:
    sys.exit(f"no [[monitor]] named {name} in {path}")
m = entries[0]
query = {}
for key, value in m.items():
    if key in ("name", "reference"):
        continue
    query[key] = ",".join(value) if isinstance(value, list) else str(value)
print(path.parent / m["reference"])
print(urllib.parse.urlencode(query))
PY
)" || return 1
    csv="$(printf '%s\n' "$spec" | sed -n 1p)"
    P_CSV="$csv"
    query="$(printf '%s\n' "$spec" | sed -n 2p)"
    log "PUT /v1/monitors/$P_MONITOR?$query (reference $csv)"
    curl -fsS --max-time 30 -X PUT "$GATEWAY/v1/monitors/$P_MONITOR?$query" \
        -H "authorization: Bearer $ADMIN_TOKEN" -H 'content-type: text/csv' \
        --data-binary @"$csv" >"$WORK/logs/penguins-put.json" || return 1
    python3 - "$WORK/logs/penguins-put.json" >&2 <<'PY' || true
import json, sys
doc = json.load(open(sys.argv[1]))
m = doc.get("monitor", {})
features = m.get("features", [])
kinds = m.get("kinds") or ["numeric"] * len(features)
categories = m.get("categories") or [[] for _ in features]
thresholds = m.get("thresholds") or [None] * len(features)
missing = m.get("reference_missing") or [0] * len(features)
print(f"  {doc.get('outcome')}: {len(features)} features, version {m.get('version')}")
for f, kind, cats, thr, miss in zip(features, kinds, categories, thresholds, missing):
    thr = f"{thr:.3f}" if isinstance(thr, (int, float)) else "-"
    extra = f"  categories {', '.join(cats)}" if cats else ""
    print(f"    {f:<20} {kind:<11} threshold {thr}  reference missing {miss}{extra}")
PY
}

# penguins_stream true|false: streams penguins rows (drift-sim models them on the reference
# CSV, with the monitor's kinds) and watches the evaluations; the JSON summary goes to
# $WORK/logs/penguins-<drift>.json, the text to stderr.
penguins_stream() {
    local drift=(--drift "$1")
    if [ "$1" = true ]; then
        drift+=(--drift-kind "$P_KIND" --drift-features "$P_FEATURES" --drift-magnitude "$P_MAGNITUDE" --drift-after "$P_AFTER")
        if [ -n "$P_CATEGORY" ] && [ "$P_CATEGORY" != - ]; then drift+=(--drift-category "$P_CATEGORY"); fi
    fi
    "$BIN_DIR/drift-sim" --target "$GATEWAY" --monitor "$P_MONITOR" --reference "$P_CSV" \
        "${drift[@]}" --rows "$P_ROWS" --rate "$P_RATE" --batch "$P_BATCH" --watch --watch-timeout 20 \
        --progress none --json >"$WORK/logs/penguins-$1.json"
}

# penguins_summary FILE: one line of what drift-sim's watch saw of the drifting stream.
penguins_summary() {
    python3 - "$1" >&2 <<'PY'
import json, sys
try:
    doc = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception as e:
    print(f"  (no summary: {e})")
    sys.exit(0)
w = doc.get("watch") or {}
fa = w.get("false_alarm_features") or {}
if w.get("detected"):
    signals = "+".join(w.get("detection_signals") or []) or "?"
    print(f"penguins: {w.get('detection_feature')} flagged by its {signals} signal "
          f"{w.get('delay_rows')} rows after the onset; false alarms: {w.get('false_alarms')}"
          + (f" {fa}" if fa else ""))
else:
    print(f"penguins: the drift was NOT detected; false alarms: {w.get('false_alarms')}"
          + (f" {fa}" if fa else ""))
PY
}

P_DETECTED=""
if [ "$PENGUINS" = 1 ]; then
    section "penguins: register the monitor of data/monitors.toml"
    penguins_put || die "registering the penguins monitor failed (see above)"

    section "penguins phase 1: $P_ROWS rows WITHOUT drift (drift-sim --reference data/penguins.csv)"
    penguins_stream false || log "the penguins stream reported errors (see above)"
    settle "$P_MONITOR"
    show_monitor "$P_MONITOR"

    category_note=""
    if [ -n "$P_CATEGORY" ] && [ "$P_CATEGORY" != - ]; then category_note=" ($P_CATEGORY)"; fi
    section "penguins phase 2: $P_ROWS rows, $P_KIND drift on $P_FEATURES$category_note to $P_MAGNITUDE after $P_AFTER rows"
    penguins_stream true || log "the penguins stream reported errors (see above)"
    settle "$P_MONITOR"
    P_DETECTED="$(python3 -c '
import json, sys
try:
    w = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]).get("watch") or {}
except Exception:
    sys.exit(0)
print(w.get("detection_feature") or "" if w.get("detected") else "")
' "$WORK/logs/penguins-true.json")"
    echo "Features of $P_MONITOR drifting now (Prometheus):" >&2
    prom_query "max by (feature) (drift_feature_drifted{monitor=\"$P_MONITOR\"}) == 1" | sed 's/^/  /' >&2
    echo "Monitor through the gateway (GET /v1/monitors/$P_MONITOR):" >&2
    show_monitor "$P_MONITOR"
    penguins_summary "$WORK/logs/penguins-true.json"
fi

cat >&2 <<EOF

Where to look:
  gateway      $GATEWAY/v1/monitors/$MONITOR   (POST rows to $GATEWAY/v1/monitors/$MONITOR/rows)
               $GATEWAY/v1/monitors/$P_MONITOR   (categorical and missing values: see README)
  Prometheus   $PROM/graph?g0.expr=drift_feature_p_value
  alerts       $PROM/alerts
  exporter     $EXPORTER/metrics
  logs         $WORK/logs/drift-stack.log (kept with DEMO_KEEP_WORKDIR=1)
  servers      $(info work_dir) (drift-stack's configs and server logs)
EOF

if [ "$STRICT" = 1 ]; then
    if [ -z "$detected" ]; then
        FAILED=1
        exit 2
    fi
    if [ "$PENGUINS" = 1 ] && [ -z "$P_DETECTED" ]; then
        log "the penguins drift on $P_FEATURES was not detected"
        FAILED=1
        exit 2
    fi
fi

if [ "$HOLD" = 1 ]; then
    log "the stack keeps running; press Ctrl-C to stop it"
    while kill -0 "$STACK_PID" 2>/dev/null; do
        sleep 2
    done
    show_log
    die "drift-stack exited"
fi
log "done"
