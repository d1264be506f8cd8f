#!/usr/bin/env bash
# Hostile soak: normal ingest clients against one API replica, first alone, then while
# hostile clients run (slow headers, idle connections, unknown methods, oversized declared
# bodies, endless chunked bodies), then alone again. Same run, same replica, so the
# ratio of the normal clients' p99 latency with and without the hostile mix is
# meaningful.
#
#   scripts/soak_hostile.sh [seconds-per-phase]         (default 20)
#
# Prints, per phase (before / hostile / after): requests, errors (anything but 202 or a
# failed connection), p50/p99/max latency of the normal clients; the hostile clients'
# counts; and the RSS and open files of the process serving the API (drift-stack runs
# the replicas in process: /proc/<pid>/status VmRSS and /proc/<pid>/fd), sampled before,
# during and after the hostile phase.
#
# Settings (environment):
#   CLIENTS [16]      normal keep-alive ingest clients (one row per request)
#   SLOW [200]        slow-header connections (one header byte per second)
#   IDLE [300]        idle connections (connect, send nothing; reopened when closed)
#   METHODS [8]       clients sending made-up methods in a loop
#   OVERSIZED [8]     clients declaring a 60 MB body and sending none
#   CHUNKED [50]      connections with a chunked body that never ends
#   SKIP_BUILD [0]    1: use the existing target/release/drift-stack
#   BIN_DIR [${CARGO_TARGET_DIR:-target}/release]
# Needs: python3, redis-server, nginx (nginx-light), prometheus (drift-stack starts them).
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-20}
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release -q -p drift-testkit --bin drift-stack
fi
[ -x "$BIN_DIR/drift-stack" ] || { echo "$BIN_DIR/drift-stack not found" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/drift-soak-hostile.XXXXXX")
STACK_PID=
cleanup() {
  if [ -n "$STACK_PID" ]; then
    kill "$STACK_PID" 2>/dev/null || true
    wait "$STACK_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

"$BIN_DIR/drift-stack" --apis 1 --workers 1 --info "$WORK/info.json" >"$WORK/stack.log" 2>&1 &
STACK_PID=$!
for _ in $(seq 600); do
  [ -s "$WORK/info.json" ] && break
  kill -0 "$STACK_PID" 2>/dev/null || { cat "$WORK/stack.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$WORK/info.json" ] || { echo "drift-stack did not come up" >&2; cat "$WORK/stack.log" >&2; exit 1; }

CLIENTS=${CLIENTS:-16} SLOW=${SLOW:-200} IDLE=${IDLE:-300} METHODS=${METHODS:-8} \
OVERSIZED=${OVERSIZED:-8} CHUNKED=${CHUNKED:-50} \
python3 - "$WORK/info.json" "$DUR" <<'PY'
import asyncio, json, os, random, sys, time

info = json.load(open(sys.argv[1]))
DUR = float(sys.argv[2])
PID = info["pid"]
api = info["api_urls"][0].removeprefix("http://")
HOST, PORT = api.rsplit(":", 1)
PORT = int(PORT)
env = lambda k: int(os.environ[k])

# One reference-like row of the default monitor, built from its own feature list.
async def monitor_columns():
    r, w = await asyncio.open_connection(HOST, PORT)
    w.write(b"GET /v1/monitors/breast_cancer HTTP/1.1\r\nHost: x\r\n\r\n")
    status, body = await read_response(r)
    w.close()
    return json.loads(body)["features"]

async def read_response(r):
    head = await r.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    n = 0
    for line in head.split(b"\r\n"):
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    body = await r.readexactly(n)
    return status, body

def proc_sample():
    rss = 0
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) // 1024
    fds = len(os.listdir(f"/proc/{PID}/fd"))
    return rss, fds

class Normal:
    def __init__(self):
        self.lat = []
        self.errors = 0

async def normal_client(stats, req, stop):
    r = w = None
    while not stop.is_set():
        try:
            if w is None:
                r, w = await asyncio.wait_for(asyncio.open_connection(HOST, PORT), 5)
            t = time.perf_counter()
            w.write(req)
            status, _ = await asyncio.wait_for(read_response(r), 10)
            stats.lat.append(time.perf_counter() - t)
            if status != 202:
                stats.errors += 1
        except Exception:
            stats.errors += 1
            if w is not None:
                w.close()
            r = w = None
            await asyncio.sleep(0.05)
    if w is not None:
        w.close()

hostile = {"slow": 0, "idle": 0, "methods": 0, "oversized": 0, "chunked": 0, "refused": 0}

async def hold(kind, stop, first, trickle=None, every=1.0):
    """Keeps one hostile connection open: sends `first`, then `trickle` every `every` s;
    reconnects whenever the server closes it (counting the closes)."""
    while not stop.is_set():
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(HOST, PORT), 5)
        except Exception:
            hostile["refused"] += 1
            await asyncio.sleep(0.5)
            continue
        try:
            if first:
                w.write(first)
            while not stop.is_set():
                if trickle:
                    w.write(trickle)
                    await w.drain()
                try:
                    data = await asyncio.wait_for(r.read(65536), every)
                    if not data:
                        break
                except asyncio.TimeoutError:
                    pass
        except Exception:
            pass
        hostile[kind] += 1
        w.close()

async def methods_client(stop):
    while not stop.is_set():
        try:
            r, w = await asyncio.open_connection(HOST, PORT)
            for _ in range(50):
                m = "".join(random.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=8))
                p = "/" + "".join(random.choices("abcdefghij", k=12))
                w.write(f"{m} {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                await read_response(r)
                hostile["methods"] += 1
            w.close()
        except Exception:
            await asyncio.sleep(0.05)

async def oversized_client(stop):
    head = (b"PUT /v1/monitors/m HTTP/1.1\r\nHost: x\r\nContent-Length: 60000000\r\n\r\n",
            b"POST /v1/monitors/breast_cancer/rows HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 60000000\r\n\r\n")
    while not stop.is_set():
        try:
            r, w = await asyncio.open_connection(HOST, PORT)
            w.write(random.choice(head))
            await asyncio.wait_for(read_response(r), 10)
            hostile["oversized"] += 1
            w.close()
        except Exception:
            await asyncio.sleep(0.05)

def summary(name, s, dur):
    lat = sorted(s.lat)
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3 if lat else float("nan")
    print(f"{name:8} requests {len(lat):7d} ({len(lat)/dur:7.0f}/s)  errors {s.errors:5d}  "
          f"p50 {q(0.50):7.2f} ms  p99 {q(0.99):7.2f} ms  max {lat[-1]*1e3 if lat else 0:8.2f} ms")
    return q(0.99)

async def phase(name, req, hostile_on):
    stats, stop = Normal(), asyncio.Event()
    tasks = [asyncio.create_task(normal_client(stats, req, stop)) for _ in range(env("CLIENTS"))]
    hstop = asyncio.Event()
    if hostile_on:
        slow_first = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
        chunked_first = (b"POST /v1/monitors/breast_cancer/rows HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        tasks += [asyncio.create_task(hold("slow", hstop, slow_first, b"a")) for _ in range(env("SLOW"))]
        tasks += [asyncio.create_task(hold("idle", hstop, b"")) for _ in range(env("IDLE"))]
        tasks += [asyncio.create_task(hold("chunked", hstop, chunked_first, b"1\r\n \r\n"))
                  for _ in range(env("CHUNKED"))]
        tasks += [asyncio.create_task(methods_client(hstop)) for _ in range(env("METHODS"))]
        tasks += [asyncio.create_task(oversized_client(hstop)) for _ in range(env("OVERSIZED"))]
    samples = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < DUR:
        await asyncio.sleep(min(1.0, DUR / 4))
        samples.append(proc_sample())
    stop.set(); hstop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    p99 = summary(name, stats, time.perf_counter() - t0)
    rss = max(s[0] for s in samples); fds = max(s[1] for s in samples)
    print(f"{'':8} process {PID}: max RSS {rss} MiB, max open files {fds} during the phase")
    return p99, stats.errors

async def main():
    cols = await monitor_columns()
    row = [1.0] * len(cols)
    body = json.dumps({"columns": cols, "data": [row]}).encode()
    req = (b"POST /v1/monitors/breast_cancer/rows HTTP/1.1\r\nHost: x\r\n"
           b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
           b"\r\n\r\n" + body)
    rss, fds = proc_sample()
    print(f"API {HOST}:{PORT} (process {PID}); {DUR:.0f} s per phase; at start: RSS {rss} MiB, open files {fds}")
    print(f"normal clients {env('CLIENTS')}; hostile: slow headers {env('SLOW')}, idle {env('IDLE')}, "
          f"endless chunked {env('CHUNKED')}, unknown-method clients {env('METHODS')}, "
          f"oversized-declared clients {env('OVERSIZED')}")
    p_before, e_before = await phase("before", req, False)
    p_during, e_during = await phase("hostile", req, True)
    print(f"{'':8} hostile: {hostile}  (slow/idle/chunked: connections the server closed)")
    await asyncio.sleep(2)
    p_after, e_after = await phase("after", req, False)
    rss, fds = proc_sample()
    print(f"at end: RSS {rss} MiB, open files {fds}")
    print(f"p99 ratio hostile/before {p_during / p_before:.2f}, after/before {p_after / p_before:.2f}; "
          f"errors before {e_before}, hostile {e_during}, after {e_after}")

asyncio.run(main())
PY
