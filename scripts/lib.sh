# Helpers the benchmark and test scripts share; source it, don't run it.

# A loopback port that was free a moment ago.
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# A wrk latency (812.00us, 3.21ms, 1.02s) in milliseconds.
ms() {
  python3 -c '
import sys
s = sys.argv[1]
for suf, k in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
    if s.endswith(suf):
        print(f"{float(s[:-len(suf)]) * k:.2f}"); break
else:
    print(s)' "$1"
}

# start_redis LOGFILE: a fresh, empty redis-server (no persistence) on a free loopback
# port, once it listens; sets RPORT and REDIS_PID.
start_redis() {
  RPORT=$(port)
  redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no \
    --logfile "$1" --daemonize no >/dev/null 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$RPORT") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "redis-server did not listen on $RPORT" >&2; cat "$1" >&2; exit 1
}

# wrk_post_script BODY LUA: writes LUA, a wrk script that POSTs the JSON file BODY.
wrk_post_script() {
  cat >"$2" <<LUA
local f = io.open("$1", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA
}

# wrk_read REPORT: sets RPS, P50 and P99 (ms) and NON2XX (empty when none) from the text
# of a `wrk --latency` run.
wrk_read() {
  RPS=$(echo "$1" | awk '/Requests\/sec/ {print $2}')
  P50=$(ms "$(echo "$1" | awk '$1=="50%" {print $2}')")
  P99=$(ms "$(echo "$1" | awk '$1=="99%" {print $2}')")
  NON2XX=$(echo "$1" | awk '/Non-2xx/ {print $NF}')
}
