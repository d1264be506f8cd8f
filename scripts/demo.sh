#!/usr/bin/env bash
# End-to-end demo of the drift monitor on loopback, without Docker (`make demo`).
#
#   redis-server -> 3 x drift-api -> nginx gateway (local.conf.template)
#                -> 2 x drift-worker run, 1 x drift-worker export -> prometheus (+ alerts)
# then streams rows without drift, then with drift on mean_radius (drift-sim when it is
# built, else scripts/stream.py), and prints what the monitor, Prometheus and the alerts
# say. Everything it started is stopped on exit (Ctrl-C included).
#
# Settings (environment; defaults in brackets):
#   DEMO_HOST [127.0.0.1]              address everything listens on
#   DEMO_REDIS_PORT [16379]
#   DEMO_API_PORTS ["18001 18002 18003"]     one drift-api replica per port
#   DEMO_WORKER_PORTS ["19111 19112"]        one drift-worker run per port
#   DEMO_EXPORTER_PORT [19102]
#   DEMO_GATEWAY_PORT [8002]           nginx
#   DEMO_PROMETHEUS_PORT [9090]
#   DEMO_KEY_PREFIX [drift]            DRIFT_KEY_PREFIX of every program
#   DEMO_MONITOR [breast_cancer]
#   DEMO_ROWS [3000]                   rows per phase (no drift, then drift)
#   DEMO_RATE [1000] DEMO_BATCH [100]  rows/s and rows per request of the stream
#   DEMO_DETECT_TIMEOUT [60]           seconds to wait for the drift to show in Prometheus
#   DEMO_STREAMER [auto]               auto | sim (drift-sim) | python (scripts/stream.py)
#   DEMO_SKIP_BUILD [0]                1: do not run cargo, use the binaries in DEMO_BIN_DIR
#   DEMO_BIN_DIR [${CARGO_TARGET_DIR:-target}/release]
#   DEMO_WORKDIR [mktemp -d]           logs, rendered configs, data (removed at exit
#                                      unless DEMO_KEEP_WORKDIR=1 or the demo failed)
#   DEMO_HOLD [auto]                   1: keep the stack running until Ctrl-C; 0: stop at
#                                      the end; auto: 1 when stdin is a terminal
#   DEMO_STRICT [0]                    1: exit 2 unless mean_radius is detected as drifted
#   DEMO_INSTALL [auto]                auto: apt-get install missing packages when root
# The programs also see the usual DRIFT_* variables (DRIFT_WINDOW, DRIFT_STRIDE, ...).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

HOST="${DEMO_HOST:-127.0.0.1}"
REDIS_PORT="${DEMO_REDIS_PORT:-16379}"
read -r -a API_PORTS <<<"${DEMO_API_PORTS:-18001 18002 18003}"
read -r -a WORKER_PORTS <<<"${DEMO_WORKER_PORTS:-19111 19112}"
EXPORTER_PORT="${DEMO_EXPORTER_PORT:-19102}"
GATEWAY_PORT="${DEMO_GATEWAY_PORT:-8002}"
PROM_PORT="${DEMO_PROMETHEUS_PORT:-9090}"
KEY_PREFIX="${DEMO_KEY_PREFIX:-drift}"
MONITOR="${DEMO_MONITOR:-breast_cancer}"
ROWS="${DEMO_ROWS:-3000}"
RATE="${DEMO_RATE:-1000}"
BATCH="${DEMO_BATCH:-100}"
DETECT_TIMEOUT="${DEMO_DETECT_TIMEOUT:-60}"
STREAMER="${DEMO_STREAMER:-auto}"
BIN_DIR="${DEMO_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}"
STRICT="${DEMO_STRICT:-0}"
HOLD="${DEMO_HOLD:-auto}"
if [ "$HOLD" = auto ]; then
    if [ -t 0 ]; then HOLD=1; else HOLD=0; fi
fi

GATEWAY="http://$HOST:$GATEWAY_PORT"
PROM="http://$HOST:$PROM_PORT"
REDIS_URL="redis://$HOST:$REDIS_PORT"

log() { printf '[demo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
section() { printf '\n==== %s ====\n' "$*" >&2; }

PIDS=()
NAMES=()
WORK=""
FAILED=0
CLEANED=0

cleanup() {
    [ "$CLEANED" = 1 ] && return
    CLEANED=1
    local i pid
    if [ "${#PIDS[@]}" -gt 0 ]; then
        log "stopping ${#PIDS[@]} process(es)"
        for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
            kill -TERM "${PIDS[$i]}" 2>/dev/null || true
        done
        for _ in $(seq 1 50); do
            local alive=0
            for pid in "${PIDS[@]}"; do
                kill -0 "$pid" 2>/dev/null && alive=1
            done
            [ "$alive" = 0 ] && break
            sleep 0.1
        done
        for pid in "${PIDS[@]}"; do
            kill -KILL "$pid" 2>/dev/null || true
        done
        wait 2>/dev/null || true
    fi
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "$FAILED" = 1 ] || [ "${DEMO_KEEP_WORKDIR:-0}" = 1 ]; then
            log "logs and configs kept in $WORK"
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

# Prints the last lines of a program's log (after a failure).
show_log() {
    local f="$WORK/logs/$1.log"
    if [ -f "$f" ]; then
        echo "---- last lines of $f ----" >&2
        tail -n 20 "$f" >&2
    fi
}

# start NAME COMMAND... : runs COMMAND in the background, output to $WORK/logs/NAME.log
start() {
    local name="$1"
    shift
    "$@" >"$WORK/logs/$name.log" 2>&1 &
    PIDS+=("$!")
    NAMES+=("$name")
    log "started $name (pid $!)"
}

pid_of() {
    local i
    for i in "${!NAMES[@]}"; do
        [ "${NAMES[$i]}" = "$1" ] && { echo "${PIDS[$i]}"; return; }
    done
}

# wait_http NAME URL [TIMEOUT]: until URL answers 2xx; fails early if NAME exited.
wait_http() {
    local name="$1" url="$2" timeout="${3:-60}" pid
    pid="$(pid_of "$name")"
    local deadline=$((SECONDS + timeout))
    until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            show_log "$name"
            die "$name exited before $url answered"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            show_log "$name"
            die "$name: $url did not answer 2xx within ${timeout}s"
        fi
        sleep 0.3
    done
    log "$name ready ($url)"
}

port_free() {
    ! (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
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

# Prints the monitor as the API reports it (through the gateway), compactly.
show_monitor() {
    local body
    if ! body="$(curl -fsS --max-time 5 "$GATEWAY/v1/monitors/$MONITOR")"; then
        log "GET $GATEWAY/v1/monitors/$MONITOR failed"
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
line = "    %-28s %-8s %12s %10s %8s"
print(line % ("feature", "drifted", "p_value", "statistic", "seq"))
def num(v, fmt):
    return format(v, fmt) if isinstance(v, (int, float)) else str(v)
for f, r in rows[:8]:
    print(line % (f, r.get("drifted"), num(r.get("p_value"), ".3g"), num(r.get("statistic"), ".4f"), r.get("seq")))
'
}

# ---------------------------------------------------------------- tools
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
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

for port in "$REDIS_PORT" "${API_PORTS[@]}" "${WORKER_PORTS[@]}" "$EXPORTER_PORT" "$GATEWAY_PORT" "$PROM_PORT"; do
    port_free "$port" || die "port $HOST:$port is already in use (a system prometheus or nginx service? change the DEMO_*_PORT settings)"
done
[ "${#API_PORTS[@]}" -ge 1 ] || die "DEMO_API_PORTS is empty"
[ "${#WORKER_PORTS[@]}" -ge 1 ] || die "DEMO_WORKER_PORTS is empty"

# ---------------------------------------------------------------- build
section "build"
if [ "${DEMO_SKIP_BUILD:-0}" != 1 ]; then
    command -v cargo >/dev/null 2>&1 || die "cargo not found (or set DEMO_SKIP_BUILD=1 and DEMO_BIN_DIR)"
    (cd "$ROOT" && cargo build --release -p drift-api -p drift-worker) || die "cargo build of drift-api/drift-worker failed"
    if [ "$STREAMER" != python ]; then
        (cd "$ROOT" && cargo build --release -p drift-sim) ||
            log "drift-sim did not build; the stream falls back to scripts/stream.py"
    fi
else
    log "DEMO_SKIP_BUILD=1: using binaries in $BIN_DIR"
fi
for b in drift-api drift-worker; do
    [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b not found"
done
USE_SIM=0
if [ "$STREAMER" != python ] && [ -x "$BIN_DIR/drift-sim" ] &&
    "$BIN_DIR/drift-sim" --help 2>/dev/null | grep -q -- '--target'; then
    USE_SIM=1
elif [ "$STREAMER" = sim ]; then
    die "DEMO_STREAMER=sim but $BIN_DIR/drift-sim is missing or has no --target flag"
fi

# ---------------------------------------------------------------- work dir
WORK="${DEMO_WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/drift-demo.XXXXXX")}"
mkdir -p "$WORK/logs" "$WORK/redis" "$WORK/nginx" "$WORK/prometheus/data"
# nginx started as root runs its workers as nobody: they must reach the temp dirs.
chmod 755 "$WORK" "$WORK/nginx"
log "work dir $WORK"

# Every program runs from the checkout so that data/breast_cancer.csv resolves.
cd "$ROOT"

# ---------------------------------------------------------------- redis
section "start"
start redis redis-server --bind "$HOST" --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$WORK/redis" --daemonize no --logfile ""
deadline=$((SECONDS + 20))
until [ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; do
    [ "$SECONDS" -lt "$deadline" ] || { show_log redis; die "redis-server did not start"; }
    sleep 0.2
done
log "redis ready ($REDIS_URL)"

export DRIFT_REDIS_URL="$REDIS_URL" DRIFT_KEY_PREFIX="$KEY_PREFIX" DRIFT_LOG_FORMAT="${DRIFT_LOG_FORMAT:-text}"
export RUST_LOG="${RUST_LOG:-info}"

# ---------------------------------------------------------------- API replicas
i=0
for port in "${API_PORTS[@]}"; do
    i=$((i + 1))
    start "api-$i" env DRIFT_LISTEN="$HOST:$port" "$BIN_DIR/drift-api"
done
i=0
for port in "${API_PORTS[@]}"; do
    i=$((i + 1))
    wait_http "api-$i" "http://$HOST:$port/readyz" 60
done

# ---------------------------------------------------------------- workers and exporter
i=0
for port in "${WORKER_PORTS[@]}"; do
    i=$((i + 1))
    start "worker-$i" env DRIFT_LISTEN="$HOST:$port" DRIFT_CONSUMER="demo-worker-$i" "$BIN_DIR/drift-worker" run
done
start exporter env DRIFT_LISTEN="$HOST:$EXPORTER_PORT" "$BIN_DIR/drift-worker" export
i=0
for port in "${WORKER_PORTS[@]}"; do
    i=$((i + 1))
    wait_http "worker-$i" "http://$HOST:$port/healthz" 30
done
wait_http exporter "http://$HOST:$EXPORTER_PORT/healthz" 30

# ---------------------------------------------------------------- gateway
upstreams=""
for port in "${API_PORTS[@]}"; do
    upstreams+="server $HOST:$port max_fails=1 fail_timeout=2s; "
done
sed -e "s#@LISTEN@#$HOST:$GATEWAY_PORT#g" \
    -e "s#@UPSTREAMS@#$upstreams#g" \
    -e "s#@PREFIX@#$WORK/nginx#g" \
    -e "s#@LOCATIONS@#$ROOT/nginx/gateway-locations.conf#g" \
    "$ROOT/nginx/local.conf.template" >"$WORK/nginx/nginx.conf"
"$NGINX" -t -q -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" ||
    die "nginx rejected $WORK/nginx/nginx.conf"
start nginx "$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf"
wait_http nginx "$GATEWAY/healthz" 20

# ---------------------------------------------------------------- prometheus
yaml_list() {
    local out="" p
    for p in "$@"; do out+="${out:+, }\"$HOST:$p\""; done
    printf '[%s]' "$out"
}
sed -e "s#@EXPORTER@#$(yaml_list "$EXPORTER_PORT")#g" \
    -e "s#@APIS@#$(yaml_list "${API_PORTS[@]}")#g" \
    -e "s#@WORKERS@#$(yaml_list "${WORKER_PORTS[@]}")#g" \
    -e "s#@RULES@#$ROOT/prometheus/alerts.yml#g" \
    "$ROOT/prometheus/local.yml.template" >"$WORK/prometheus/prometheus.yml"
start prometheus prometheus --config.file="$WORK/prometheus/prometheus.yml" \
    --storage.tsdb.path="$WORK/prometheus/data" --web.listen-address="$HOST:$PROM_PORT" \
    --log.level=warn
wait_http prometheus "$PROM/-/ready" 30

# ---------------------------------------------------------------- streams
stream() { # stream true|false
    if [ "$USE_SIM" = 1 ]; then
        "$BIN_DIR/drift-sim" --target "$GATEWAY" --drift "$1" --rows "$ROWS" --rate "$RATE" \
            --batch "$BATCH" --monitor "$MONITOR"
    else
        python3 "$ROOT/scripts/stream.py" --target "$GATEWAY" --drift "$1" --rows "$ROWS" \
            --rate "$RATE" --batch "$BATCH" --monitor "$MONITOR" --quiet
    fi
}

# Waits until the workers drained the jobs (drift_jobs_pending == 0) or 20 s.
settle() {
    local deadline=$((SECONDS + 20)) pending
    sleep 2
    while [ "$SECONDS" -lt "$deadline" ]; do
        pending="$(prom_query "sum(drift_jobs_pending{monitor=\"$MONITOR\"})" | awk '{print $2}')"
        [ "${pending:-x}" = 0 ] && break
        sleep 1
    done
    sleep 2
}

if [ "$USE_SIM" = 1 ]; then streamer="drift-sim"; else streamer="scripts/stream.py"; fi

section "phase 1: $ROWS rows WITHOUT drift ($streamer)"
stream false || log "the stream reported errors (see above)"
settle
log "features drifting: $(prom_query "max(drift_features_drifting{monitor=\"$MONITOR\"})" | awk '{print $2}')"
log "rows ingested: $(prom_query "max(drift_rows_ingested_total{monitor=\"$MONITOR\"})" | awk '{print $2}')"
show_monitor

section "phase 2: $ROWS rows WITH drift on mean_radius ($streamer)"
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

cat >&2 <<EOF

Where to look:
  gateway      $GATEWAY/v1/monitors/$MONITOR   (POST rows to $GATEWAY/v1/monitors/$MONITOR/rows)
  Prometheus   $PROM/graph?g0.expr=drift_feature_p_value
  alerts       $PROM/alerts
  exporter     http://$HOST:$EXPORTER_PORT/metrics
  logs         $WORK/logs (kept with DEMO_KEEP_WORKDIR=1)
EOF

if [ "$STRICT" = 1 ] && [ -z "$detected" ]; then
    FAILED=1
    exit 2
fi

if [ "$HOLD" = 1 ]; then
    log "the stack keeps running; press Ctrl-C to stop it"
    while true; do
        for i in "${!PIDS[@]}"; do
            if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
                show_log "${NAMES[$i]}"
                die "${NAMES[$i]} exited"
            fi
        done
        sleep 2
    done
fi
log "done"
