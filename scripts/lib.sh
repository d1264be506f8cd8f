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
