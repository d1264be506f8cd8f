"""docker-compose.yml for real, on the Docker engine: `make compose-test`.

Brings the stack up as the README says (`up --build --scale api=10 --scale worker=4`), in
its own compose project (DRIFT_COMPOSE_PROJECT, default drift-compose-test), and checks, in
this order (the tests share the stack and run in file order):
    1. every container is up and healthy, the gateway on :8002 and Prometheus on :9090 answer;
    2. rows without drift, then with mean_radius shifted by one standard deviation, sent
       through the gateway: through Prometheus, mean_radius and only it is flagged, and
       DriftDetected fires for it and nothing else;
    3. Prometheus scrapes the 10 API replicas and the 4 workers (dns_sd) and every API
       replica served rows requests;
    4. under load, `docker kill` of 2 workers and 3 API containers: the gateway keeps
       serving, every failed request was in flight on a killed container, the killed
       workers' pending jobs are taken over by the others, and every acknowledged row is in
       Redis (rows acknowledged by 202 <= rows counted <= those + rows of failed requests);
    5. under load, workers 4 -> 2 -> 6 and API 10 -> 3 -> 10: no failed request, no lost row;
    6. Redis restarted (append-only file on): windows, counters and results are kept,
       ingest recovers without restarting anything else, and across a restart under load
       no acknowledged row is lost;
    7. a worker cut off the network (`docker network disconnect`) and reconnected: the
       pipeline goes on meanwhile, the worker resumes without a restart;
    8. `docker compose down -v` leaves no container, network or volume of the project;
    9. the same with docker-compose.cluster.yml on top: six Redis nodes joined as a cluster,
       drift found through the gateway, the monitor's master SIGKILLed under load and
       started again: ingest resumes and every acknowledged row is stored; `down -v`.
A timeline (image build, up, healthy, each fault and its recovery, in seconds) is printed
at the end (tests/compose/conftest.py).

Images: without a registry, scripts/offline-images.sh builds local stand-ins first (the
test runs it unless DRIFT_COMPOSE_OFFLINE_IMAGES=0); when grafana/grafana is missing,
docker-compose.offline.yml leaves Grafana out (DRIFT_COMPOSE_OFFLINE=1/0 forces either
way). Compose: `docker compose` (v2) when present, else `docker-compose` (v1, Debian's).
Needs the host ports 8002 and 9090 free (and 4000 with Grafana).
Set DRIFT_COMPOSE_KEEP=1 to leave the stack running after the tests (no `down`).
"""
from __future__ import annotations

import csv
import hashlib
import http.client as httpclient
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = os.environ.get("DRIFT_COMPOSE_PROJECT", "drift-compose-test")
IMAGE_TAG = os.environ.get("DRIFT_COMPOSE_IMAGE_TAG", "compose-test")
REDIS_PASSWORD = "compose-test-password"
GATEWAY_PORT, PROM_PORT = 8002, 9090
GATEWAY = f"http://127.0.0.1:{GATEWAY_PORT}"
PROM = f"http://127.0.0.1:{PROM_PORT}"
APIS, WORKERS = 10, 4
MONITOR = "breast_cancer"
SHIFTED = "mean_radius"
KEY_PREFIX = "drift"
ROWS_ROUTE = "/v1/monitors/{monitor}/rows"
ROWS_PATH = f"/v1/monitors/{MONITOR}/rows"
# Workers take over a dead consumer's jobs after DRIFT_CLAIM_IDLE_MS (compose: the
# default, 15 s); their janitor looks every half of that.
CLAIM_IDLE_S = 15.0


# ---------------------------------------------------------------------------- helpers
def log(msg: str) -> None:
    print(f"[compose {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Response:
    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


def http(method: str, url: str, body=None, headers=None, timeout: float = 10.0) -> Response:
    """One HTTP request; 4xx/5xx are returned, not raised."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, e.headers, e.read())


def wait_until(what: str, fn, timeout: float, interval: float = 0.5):
    """Calls fn until it returns a truthy value (returned) or the timeout (fails)."""
    deadline = time.monotonic() + timeout
    last_err = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except (OSError, ValueError, KeyError, httpclient.HTTPException,
                subprocess.CalledProcessError) as e:
            last_err = e
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}"
                        + (f" (last error: {last_err!r})" if last_err else ""))
        time.sleep(interval)


# Lines of a long command (image builds) worth showing while it runs.
PROGRESS = re.compile(r"^(Step \d+/\d+ :|\[offline-images|Successfully|Building |"
                      r".*(error|warning: unused|Finished|Compiling drift-))")


def run(args: list[str], timeout: float = 600, check: bool = True, env=None,
        progress: bool = False) -> subprocess.CompletedProcess:
    """Runs a command (output captured); with progress, shows its PROGRESS lines live."""
    if not progress:
        p = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout)
    else:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        lines = []
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if PROGRESS.match(line.strip()):
                log("  " + line.rstrip()[:200])
            if time.monotonic() > deadline:
                proc.kill()
        proc.wait()
        p = subprocess.CompletedProcess(args, proc.returncode, "".join(lines))
    if check and p.returncode != 0:
        pytest.fail(f"`{' '.join(args)}` exited {p.returncode}:\n{p.stdout[-4000:]}")
    return p


# ---------------------------------------------------------------------------- data
def load_reference() -> tuple[list[str], list[list[float]]]:
    with open(ROOT / "data" / "breast_cancer.csv", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        keep = [i for i, h in enumerate(header) if h != "target"]
        rows = [[float(r[i]) for i in keep] for r in reader if r]
    return [header[i] for i in keep], rows


COLUMNS, REFERENCE = load_reference()
_J = COLUMNS.index(SHIFTED)
_COL = [r[_J] for r in REFERENCE]
_MEAN = sum(_COL) / len(_COL)
SD = math.sqrt(sum((v - _MEAN) ** 2 for v in _COL) / (len(_COL) - 1))


def draw_rows(rng: random.Random, n: int, shift_sd: float = 0.0) -> dict:
    """n rows resampled from the reference (no drift: resampling raises no false alarm);
    with shift_sd, mean_radius is moved by that many standard deviations."""
    data = []
    for _ in range(n):
        row = list(rng.choice(REFERENCE))
        row[_J] += shift_sd * SD
        data.append(row)
    return {"columns": COLUMNS, "data": data}


# ---------------------------------------------------------------------------- compose
def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed "
                "(apt-get install docker-compose)")


def image_exists(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode == 0


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


class Stack:
    def __init__(self, timeline):
        self.timeline = timeline
        self.compose = compose_command()
        self.files = ["-f", "docker-compose.yml"]
        grafana = self.service_image("grafana")
        # DRIFT_COMPOSE_OFFLINE=1 / 0 forces the offline override (no Grafana) on / off.
        forced = os.environ.get("DRIFT_COMPOSE_OFFLINE")
        self.offline = forced == "1" or (forced != "0" and not image_exists(grafana))
        if self.offline:
            self.files += ["-f", "docker-compose.offline.yml"]
        self.env = dict(os.environ)
        self.env.update({"DRIFT_IMAGE_TAG": IMAGE_TAG, "REDIS_PASSWORD": REDIS_PASSWORD,
                         "COMPOSE_PROJECT_NAME": PROJECT})
        for k in ("COMPOSE_FILE", "COMPOSE_PROFILES", "DRIFT_KEY_PREFIX", "DRIFT_WINDOW",
                  "DRIFT_STRIDE", "DRIFT_CORRECTION"):
            self.env.pop(k, None)
        if subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode != 0:
            # No buildx: the legacy builder (the CLI refuses BuildKit without it).
            self.env["DOCKER_BUILDKIT"] = "0"
            self.env["COMPOSE_DOCKER_CLI_BUILD"] = "1"
        self.network = None
        self.killed_ips: set[str] = set()

    @staticmethod
    def service_image(service: str) -> str:
        text = (ROOT / "docker-compose.yml").read_text()
        m = re.search(r"^  " + service + r":\n(?:    .*\n|\n)*?    image: *(\S+)", text, re.M)
        assert m, f"no image for {service} in docker-compose.yml"
        return m.group(1)

    def dc(self, *args: str, timeout: float = 900, check: bool = True,
           progress: bool = False) -> subprocess.CompletedProcess:
        return run([*self.compose, *self.files, "-p", PROJECT, *args], timeout=timeout,
                   check=check, env=self.env, progress=progress)

    def timed(self, what: str, fn):
        t0 = time.monotonic()
        out = fn()
        took = time.monotonic() - t0
        self.timeline.add(what, took)
        log(f"{what}: {took:.1f}s")
        return out

    # -- containers
    def ids(self, service: str | None = None, all_states: bool = True) -> list[str]:
        args = ["docker", "ps", "-q", "--no-trunc", "--filter",
                f"label=com.docker.compose.project={PROJECT}"]
        if all_states:
            args.insert(2, "-a")
        if service:
            args += ["--filter", f"label=com.docker.compose.service={service}"]
        return run(args, timeout=60).stdout.split()

    def inspect(self, ids: list[str]) -> list[dict]:
        if not ids:
            return []
        out = json.loads(run(["docker", "inspect", *ids], timeout=60).stdout)
        info = []
        for c in out:
            nets = c["NetworkSettings"]["Networks"] or {}
            health = (c["State"].get("Health") or {}).get("Status")
            info.append({
                "id": c["Id"], "short": c["Id"][:12], "name": c["Name"].lstrip("/"),
                "service": c["Config"]["Labels"].get("com.docker.compose.service"),
                "status": c["State"]["Status"], "health": health,
                "started": c["State"]["StartedAt"], "restarts": c["RestartCount"],
                "ips": [n["IPAddress"] for n in nets.values() if n.get("IPAddress")],
                "networks": list(nets),
            })
        return info

    def containers(self, service: str, running: bool = True) -> list[dict]:
        cs = self.inspect(self.ids(service))
        return [c for c in cs if c["status"] == "running"] if running else cs

    def redis_container(self) -> dict:
        cs = self.containers("redis")
        assert len(cs) == 1, cs
        return cs[0]

    def redis_bytes(self, *args: str) -> bytes:
        """redis-cli --raw in the Redis container (the values may be binary)."""
        rid = self.redis_container()["id"]
        cmd = ["docker", "exec", rid, "redis-cli", "-a", REDIS_PASSWORD, "--no-auth-warning",
               "--raw", *args]
        p = subprocess.run(cmd, capture_output=True, timeout=30)
        if p.returncode != 0:
            raise OSError(f"redis-cli {args}: {(p.stderr or p.stdout).decode(errors='replace')}")
        return p.stdout

    def redis(self, *args: str) -> str:
        return self.redis_bytes(*args).decode("utf-8", "replace")

    def key(self, what: str) -> str:
        return f"{KEY_PREFIX}:{{{MONITOR}}}:{what}"

    def rows_stored(self) -> int:
        return int(self.redis("GET", self.key("seq")).strip() or 0)

    def consumers(self) -> dict[str, int]:
        """Consumer name -> pending jobs, in the jobs stream's group `workers`."""
        out = self.redis("XINFO", "CONSUMERS", self.key("jobs"), "workers").splitlines()
        res, name = {}, None
        for k, v in zip(out[0::2], out[1::2]):
            if k == "name":
                name = v
            elif k == "pending" and name is not None:
                res[name] = int(v)
        return res

    def pending_total(self) -> int:
        out = self.redis("XPENDING", self.key("jobs"), "workers").splitlines()
        return int(out[0]) if out else 0

    def wait_healthy(self, expect: dict[str, int], timeout: float = 240) -> None:
        def ok():
            bad = []
            for svc, n in expect.items():
                cs = self.containers(svc)
                healthy = [c for c in cs if c["health"] in (None, "healthy")]
                if len(healthy) != n or len(cs) != n:
                    bad.append(f"{svc}: {len(healthy)}/{len(cs)} healthy of {n}")
            ok.last = bad
            return not bad

        ok.last = []
        try:
            wait_until("healthy containers", ok, timeout, 1.0)
        except pytest.fail.Exception:
            pytest.fail(f"not healthy after {timeout}s: {ok.last}\n{self.logs_tail()}")

    def logs_tail(self, lines: int = 15) -> str:
        p = self.dc("logs", "--no-color", "--tail", str(lines), timeout=60, check=False)
        return p.stdout[-8000:]

    def project_leftovers(self) -> dict[str, list[str]]:
        flt = f"label=com.docker.compose.project={PROJECT}"
        return {
            "containers": run(["docker", "ps", "-aq", "--filter", flt], timeout=60).stdout.split(),
            "networks": run(["docker", "network", "ls", "-q", "--filter", flt], timeout=60).stdout.split(),
            "volumes": run(["docker", "volume", "ls", "-q", "--filter", flt], timeout=60).stdout.split(),
        }

    def network_name(self) -> str:
        if self.network is None:
            nets = run(["docker", "network", "ls", "--format", "{{.Name}}", "--filter",
                        f"label=com.docker.compose.project={PROJECT}"], timeout=60).stdout.split()
            assert len(nets) == 1, f"expected one network of the project, found {nets}"
            self.network = nets[0]
        return self.network

    # -- Prometheus
    def prom_get(self, path: str, **params):
        url = f"{PROM}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        r = http("GET", url, timeout=10)
        assert r.status == 200, f"GET {url}: {r.status} {r.text[:500]}"
        doc = r.json()
        assert doc.get("status") == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict]:
        data = self.prom_get("/api/v1/query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def targets(self, job: str) -> list[dict]:
        return [t for t in self.prom_get("/api/v1/targets", state="active")["activeTargets"]
                if t["labels"].get("job") == job]

    def targets_up(self, job: str, n: int) -> bool:
        ts = self.targets(job)
        return len(ts) == n and all(t["health"] == "up" for t in ts)

    def firing(self) -> list[dict]:
        return [a for a in self.prom_get("/api/v1/alerts")["alerts"] if a["state"] == "firing"]


# ---------------------------------------------------------------------------- load
class Load:
    """Rows batches through the gateway from a few threads (keep-alive connections), each
    request recorded with its start, end, status and, for a 202, the rows accepted."""

    def __init__(self, threads: int = 4, batch: int = 10, pause: float = 0.02, seed: int = 7):
        self.threads = threads
        self.batch = batch
        self.pause = pause
        self.seed = seed
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.records: list[dict] = []
        self.workers: list[threading.Thread] = []

    def _run(self, i: int) -> None:
        rng = random.Random(self.seed * 1000 + i)
        conn = None
        while not self.stop_flag.is_set():
            body = json.dumps(draw_rows(rng, self.batch)).encode()
            t0 = time.monotonic()
            rec = {"t0": t0, "rows": self.batch, "status": None, "accepted": 0}
            try:
                if conn is None:
                    conn = httpclient.HTTPConnection("127.0.0.1", GATEWAY_PORT, timeout=15)
                conn.request("POST", ROWS_PATH, body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                rec["status"] = r.status
                rec["request_id"] = r.getheader("X-Request-Id")
                if r.status == 202:
                    rec["accepted"] = int(json.loads(data)["accepted"])
                else:
                    rec["error"] = data[:300].decode("utf-8", "replace")
                if (r.getheader("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, httpclient.HTTPException, ValueError) as e:
                rec["error"] = repr(e)
                if conn is not None:
                    conn.close()
                conn = None
            rec["t1"] = time.monotonic()
            with self.lock:
                self.records.append(rec)
            if self.pause:
                time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def __enter__(self):
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self.workers.append(t)
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self) -> None:
        self.stop_flag.set()
        for t in self.workers:
            t.join(timeout=30)

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.records)

    def ok_after(self, t: float) -> int:
        return sum(1 for r in self.snapshot() if r["status"] == 202 and r["t0"] >= t)

    @property
    def acked(self) -> int:
        return sum(r["accepted"] for r in self.snapshot())

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.snapshot() if r["status"] != 202]

    def summary(self) -> str:
        recs = self.snapshot()
        statuses: dict[str, int] = {}
        for r in recs:
            statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
        span = (max(r["t1"] for r in recs) - min(r["t0"] for r in recs)) if recs else 0
        lat = sorted(r["t1"] - r["t0"] for r in recs)
        p99 = lat[int(0.99 * (len(lat) - 1))] * 1000 if lat else 0
        return (f"{len(recs)} requests in {span:.0f}s ({len(recs) / max(span, 1e-9):.0f}/s), "
                f"statuses {statuses}, {self.acked} rows acknowledged, p99 {p99:.0f} ms")


def check_rows(stack: Stack, load: Load, before: int, what: str) -> dict:
    """Every acknowledged row is counted in Redis, and nothing beyond the rows of requests
    whose outcome the client could not see is counted twice."""
    stored = stack.rows_stored() - before
    acked = load.acked
    uncertain = sum(r["rows"] for r in load.failed)
    log(f"{what}: rows acknowledged {acked}, counted in Redis {stored}, "
        f"rows of failed requests {uncertain}")
    assert stored >= acked, f"{what}: {acked - stored} acknowledged rows lost (acked {acked}, stored {stored})"
    assert stored <= acked + uncertain, (
        f"{what}: {stored - acked} rows counted beyond the acknowledged ones, more than the "
        f"{uncertain} rows of failed requests (double counting?)")
    return {"acked": acked, "stored": stored, "uncertain": uncertain}


def nginx_log_entries(stack: Stack, request_ids: set[str]) -> dict[str, dict]:
    """The gateway's JSON access log lines of the given request ids."""
    if not request_ids:
        return {}
    ids = stack.ids("nginx")
    p = subprocess.run(["docker", "logs", ids[0]], capture_output=True, text=True, timeout=60)
    out = {}
    for line in p.stdout.splitlines():
        if '"request_id"' not in line:
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("request_id") in request_ids:
            out[doc["request_id"]] = doc
    return out


def wait_evaluated(stack: Stack, seq: int, timeout: float = 90, settled: bool = True) -> dict:
    """The monitor view (through the gateway) once every feature's result is at the
    evaluation boundary `seq` or a later one (settled: all at the same one, which only
    happens once rows stop arriving)."""
    last = {}

    def done():
        view = http("GET", f"{GATEWAY}/v1/monitors/{MONITOR}").json()
        res = view.get("results") or {}
        seqs = {(r or {}).get("seq") or 0 for r in res.values()}
        last["seqs"] = sorted(seqs)
        if len(res) == len(COLUMNS) and (len(seqs) == 1 or not settled) and min(seqs) >= seq:
            return view
        return None

    try:
        return wait_until(f"every feature evaluated at row {seq}", done, timeout, 0.5)
    except pytest.fail.Exception as e:
        raise AssertionError(f"{e}; result seqs {last.get('seqs')}, "
                             f"jobs pending {stack.pending_total()}") from None


def post_batches(rng: random.Random, batches: int, shift_sd: float = 0.0) -> int:
    seq = 0
    for _ in range(batches):
        r = http("POST", f"{GATEWAY}{ROWS_PATH}", body=draw_rows(rng, 100, shift_sd))
        assert r.status == 202, r.text
        doc = r.json()
        assert doc["accepted"] == 100, doc
        seq = max(seq, doc["seq"])
    return seq


def nginx_errors(stack: Stack, since: float) -> list[str]:
    """The gateway's error log lines (its stderr) about upstreams since a docker-logs
    timestamp (seconds since the epoch)."""
    ids = stack.ids("nginx")
    p = subprocess.run(["docker", "logs", "--since", f"{since:.0f}", ids[0]],
                       capture_output=True, text=True, timeout=60)
    return [line for line in p.stderr.splitlines() if "upstream" in line]


def report_failures(stack: Stack, failed: list[dict], events: list[tuple[str, float]]) -> None:
    """Logs each failed request with the last event before it and the gateway's account
    of it (upstream addresses tried, their statuses, the time taken)."""
    entries = nginx_log_entries(stack, {r.get("request_id") for r in failed if r.get("request_id")})
    for r in failed[:25]:
        before = [(name, t) for name, t in events if t <= r["t0"]]
        name, t = before[-1] if before else ("start", r["t0"])
        e = entries.get(r.get("request_id"), {})
        log(f"  failed: {r['status']} {r['t0'] - t:+.2f}s after {name!r}, took "
            f"{r['t1'] - r['t0']:.2f}s, upstreams {e.get('upstream_addr')} -> "
            f"{e.get('upstream_status')} ({e.get('upstream_response_time')}) "
            f"{r.get('error', '')[:80]!r}")


def drain(stack: Stack, timeout: float = 90) -> None:
    """No evaluation job pending (every job acknowledged, taken-over ones included)."""
    wait_until("no evaluation job pending", lambda: stack.pending_total() == 0, timeout, 0.5)


# ---------------------------------------------------------------------------- fixture
@pytest.fixture(scope="module")
def stack(timeline):
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("the Docker engine does not answer (docker info)")
    s = Stack(timeline)
    log(f"compose: {' '.join(s.compose)} {' '.join(s.files)} -p {PROJECT}"
        f"{' (offline: Grafana left out)' if s.offline else ''}")
    # A previous run's leftovers of this project only.
    s.dc("down", "-v", "--remove-orphans", "--timeout", "5", timeout=300)
    busy = [p for p in (GATEWAY_PORT, PROM_PORT) + (() if s.offline else (4000,)) if not port_free(p)]
    if busy:
        pytest.fail(f"host port(s) {busy} are taken; the compose stack publishes them "
                    "(stop `make demo` or the other stack using them)")
    if os.environ.get("DRIFT_COMPOSE_OFFLINE_IMAGES", "1") != "0":
        s.timed("image build: stand-in images (scripts/offline-images.sh)",
                lambda: run([str(ROOT / "scripts" / "offline-images.sh")], timeout=3600,
                            progress=True))
    # api, worker and exporter share the image drift-monitor:$DRIFT_IMAGE_TAG.
    s.timed("image build: drift-monitor (compose build)",
            lambda: s.dc("build", "api", timeout=3600, progress=True))
    try:
        s.timed(f"up (--scale api={APIS} --scale worker={WORKERS})",
                lambda: s.dc("up", "-d", "--no-build", "--scale", f"api={APIS}",
                             "--scale", f"worker={WORKERS}", timeout=600))
        s.timed("healthy (every container; gateway, Prometheus and its 16 targets)",
                lambda: wait_all_up(s))
        yield s
    finally:
        if os.environ.get("DRIFT_COMPOSE_KEEP") == "1":
            log(f"DRIFT_COMPOSE_KEEP=1: the stack of project {PROJECT} keeps running")
        elif any(s.project_leftovers().values()):
            s.timed("down -v (teardown)", lambda: s.dc("down", "-v", "--remove-orphans", timeout=300))


def wait_all_up(s: Stack) -> None:
    s.wait_healthy({"redis": 1, "api": APIS, "worker": WORKERS, "exporter": 1,
                    "nginx": 1, "prometheus": 1})
    wait_until("gateway /readyz", lambda: http("GET", f"{GATEWAY}/readyz", timeout=3).status == 200, 60)
    wait_until("monitor registered",
               lambda: http("GET", f"{GATEWAY}/v1/monitors/{MONITOR}", timeout=3).status == 200, 60)
    wait_until("Prometheus ready", lambda: http("GET", f"{PROM}/-/ready", timeout=3).status == 200, 60)
    wait_until("every Prometheus target up",
               lambda: s.targets_up("api", APIS) and s.targets_up("worker", WORKERS)
               and s.targets_up("exporter", 1), 60)


@pytest.fixture(autouse=True)
def logs_on_failure(request, stack):
    """After a failed test: the containers' states and the last log lines of each."""
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        states = [(c["name"], c["status"], c["health"]) for c in stack.inspect(stack.ids())]
        log(f"{request.node.name} failed; containers: {states}\n{stack.logs_tail()}")


# ---------------------------------------------------------------------------- tests
def test_stack_is_up_and_healthy(stack):
    cs = stack.inspect(stack.ids())
    by = {}
    for c in cs:
        by.setdefault(c["service"], []).append(c)
    counts = {k: len(v) for k, v in by.items()}
    log(f"containers: {counts}")
    assert counts == {"redis": 1, "api": APIS, "worker": WORKERS, "exporter": 1, "nginx": 1,
                      "prometheus": 1}, counts
    if stack.offline:
        assert "grafana" not in by
    assert http("GET", f"{GATEWAY}/healthz").json()["status"] == "ok"
    r = http("GET", f"{GATEWAY}/metrics")
    assert r.status == 404 and r.json()["error"]["code"] == "not_found", r.text
    # Redis really has its append-only file on.
    assert stack.redis("CONFIG", "GET", "appendonly").split() == ["appendonly", "yes"]


def test_drift_only_on_the_shifted_feature_and_alert(stack):
    rng = random.Random(20240607)
    t0 = time.monotonic()
    seq = post_batches(rng, 30)
    view = wait_evaluated(stack, seq)
    assert [f for f, r in view["results"].items() if r and r.get("drifted")] == [], view
    # Prometheus has the exporter's view of that round: nothing flagged.
    wait_until("Prometheus: the no-drift rows exported",
               lambda: float((stack.query(f'max(drift_rows_ingested_total{{monitor="{MONITOR}"}})')
                              or [{"value": [0, "0"]}])[0]["value"][1]) >= seq, 30)
    flagged = stack.query(f'drift_feature_drifted{{monitor="{MONITOR}"}} == 1')
    assert flagged == [], f"false alarm without drift: {flagged}"
    assert not [a for a in stack.firing() if a["labels"].get("alertname") == "DriftDetected"]
    stack.timeline.add("no-drift stream: 3000 rows, evaluated, nothing flagged", time.monotonic() - t0)

    t1 = time.monotonic()
    seq = post_batches(rng, 10, shift_sd=1.0)
    view = wait_evaluated(stack, seq)
    assert [f for f, r in view["results"].items() if r and r.get("drifted")] == [SHIFTED], view

    def only_shifted_flagged():
        res = stack.query(f'drift_feature_drifted{{monitor="{MONITOR}"}} == 1')
        return sorted(r["metric"]["feature"] for r in res) == [SHIFTED]

    wait_until("Prometheus: drift_feature_drifted == 1 for mean_radius only", only_shifted_flagged, 30)
    flagged_at = time.monotonic()

    def alert():
        alerts = stack.firing()
        hit = [a for a in alerts if a["labels"].get("alertname") == "DriftDetected"
               and a["labels"].get("feature") == SHIFTED]
        return alerts if hit else None

    alerts = wait_until("DriftDetected firing for mean_radius", alert, 45)
    others = [(a["labels"]["alertname"], a["labels"].get("feature")) for a in alerts
              if not (a["labels"]["alertname"] == "DriftDetected"
                      and a["labels"].get("feature") == SHIFTED)]
    assert others == [], f"unexpected alerts firing: {others}"
    stack.timeline.add("drift on mean_radius: 1000 rows -> flagged in Prometheus",
                       flagged_at - t1)
    stack.timeline.add("drift on mean_radius: rows sent -> DriftDetected firing",
                       time.monotonic() - t1)


def test_prometheus_scrapes_every_replica_and_rows_reach_every_api(stack):
    api_ips = sorted(ip for c in stack.containers("api") for ip in c["ips"])
    worker_ips = sorted(ip for c in stack.containers("worker") for ip in c["ips"])
    assert len(api_ips) == APIS and len(worker_ips) == WORKERS
    wait_until(f"{APIS} api and {WORKERS} worker targets up",
               lambda: stack.targets_up("api", APIS) and stack.targets_up("worker", WORKERS), 30)
    scraped = sorted(t["labels"]["instance"].rsplit(":", 1)[0] for t in stack.targets("api"))
    assert scraped == api_ips, (scraped, api_ips)
    scraped = sorted(t["labels"]["instance"].rsplit(":", 1)[0] for t in stack.targets("worker"))
    assert scraped == worker_ips, (scraped, worker_ips)

    expr = (f'sum by (instance) (http_requests_total{{job="api", route="{ROWS_ROUTE}", '
            f'method="POST", status="202"}})')

    def every_replica():
        res = stack.query(expr)
        per = {r["metric"]["instance"]: float(r["value"][1]) for r in res}
        every_replica.per = per
        return len(per) == APIS and all(v > 0 for v in per.values())

    every_replica.per = {}
    wait_until("rows requests on every API replica (Prometheus)", every_replica, 30)
    log(f"rows requests (202) per API replica: {sorted(int(v) for v in every_replica.per.values())}")


def kill_window_ok(rec: dict, kills: list[tuple[float, float]], slack: float = 0.5) -> bool:
    """The request was in flight while a container was killed."""
    return any(rec["t0"] <= k1 + slack and rec["t1"] >= k0 - slack for k0, k1 in kills)


def hold_pending_jobs(stack: Stack, workers: list[dict], tries: int = 40) -> dict[str, int]:
    """Freezes the workers (docker pause) at a moment when they hold delivered, not yet
    acknowledged jobs, so that killing them leaves work the others must take over.
    Returns their consumers' pending counts (left paused)."""
    held = {}
    for _ in range(tries):
        run(["docker", "pause", *[w["id"] for w in workers]], timeout=60)
        cons = stack.consumers()
        held = {n: p for n, p in cons.items() if any(n.startswith(w["short"] + "-") for w in workers)}
        if sum(held.values()) > 0:
            return held
        run(["docker", "unpause", *[w["id"] for w in workers]], timeout=60)
        time.sleep(random.uniform(0.05, 0.3))
    return held


def test_kill_workers_and_apis_under_load(stack):
    drain(stack)
    before = stack.rows_stored()
    workers = stack.containers("worker")
    apis = stack.containers("api")
    victims_w = workers[:2]
    victims_a = apis[:3]
    stack.killed_ips = {ip for c in victims_a for ip in c["ips"]}
    with Load(threads=4, batch=10, pause=0.02) as load:
        time.sleep(3)
        held = hold_pending_jobs(stack, victims_w)
        log(f"paused workers {[w['short'] for w in victims_w]} holding pending jobs {held}")
        k0 = time.monotonic()
        run(["docker", "kill", *[w["id"] for w in victims_w]], timeout=60)
        run(["docker", "kill", *[a["id"] for a in victims_a]], timeout=60)
        k1 = time.monotonic()
        stack.timeline.add("docker kill 2 workers + 3 API containers", k1 - k0)
        # The gateway goes on serving through the 7 remaining replicas.
        wait_until("rows accepted through the gateway after the kills",
                   lambda: load.ok_after(k1 + 1) >= 50, 30, 0.2)
        first_ok = min(r["t1"] for r in load.snapshot() if r["status"] == 202 and r["t0"] >= k1)
        stack.timeline.add("kill -> first 202 started after it", first_ok - k1)
        # The killed workers' pending jobs go to the survivors (XAUTOCLAIM after the idle time).
        dead = set(held)

        def taken_over():
            cons = stack.consumers()
            return all(cons.get(n, 0) == 0 for n in dead)

        wait_until("the killed workers' pending jobs taken over", taken_over, CLAIM_IDLE_S * 3, 0.5)
        took_over = time.monotonic()
        stack.timeline.add(f"kill -> the killed workers' {sum(held.values())} pending jobs taken over",
                           took_over - k1)
        time.sleep(3)
    log(f"load during kills: {load.summary()}")
    failed = load.failed
    kills = [(k0, k1)]
    outside = [r for r in failed if not kill_window_ok(r, kills)]
    entries = nginx_log_entries(stack, {r.get("request_id") for r in failed if r.get("request_id")})
    for r in failed[:20]:
        e = entries.get(r.get("request_id"), {})
        log(f"  failed: status {r['status']} {r.get('error', '')[:120]!r} "
            f"at {r['t0'] - k0:+.2f}s..{r['t1'] - k0:+.2f}s upstream {e.get('upstream_addr')}")
    assert not outside, f"{len(outside)} requests failed that were not in flight at the kill: {outside[:5]}"
    for r in failed:
        e = entries.get(r.get("request_id"))
        if e and e.get("upstream_addr"):
            last = e["upstream_addr"].split(",")[-1].strip().rsplit(":", 1)[0]
            assert last in stack.killed_ips, f"failed on a live replica: {e}"
    # Docker's reaction to the kill (restart policy unless-stopped) is reported, then the
    # scale is restored whatever it was.
    restarted = [c["short"] for c in stack.inspect([c["id"] for c in victims_w + victims_a])
                 if c["status"] == "running"]
    log(f"killed containers running again (restart policy): {restarted or 'none'}")
    drain(stack)
    check_rows(stack, load, before, "kills")
    stack.timed("recover the scale after the kills (up --scale, healthy)", lambda: (
        stack.dc("up", "-d", "--no-build", "--no-recreate", "--scale", f"api={APIS}",
                 "--scale", f"worker={WORKERS}", timeout=600),
        stack.wait_healthy({"api": APIS, "worker": WORKERS})))
    dead_letters = stack.redis("XLEN", stack.key("dead")).strip()
    assert dead_letters in ("0", ""), f"jobs dead-lettered: {dead_letters}"


def test_scale_workers_and_apis_under_load(stack):
    drain(stack)
    before = stack.rows_stored()
    steps = [("worker", 2), ("worker", 6), ("api", 3), ("api", APIS)]
    events = []
    since = time.time()
    with Load(threads=4, batch=10, pause=0.02) as load:
        time.sleep(2)
        for svc, n in steps:
            t0 = time.monotonic()
            events.append((f"scale {svc}={n}", t0))
            stack.dc("up", "-d", "--no-build", "--no-deps", "--no-recreate", "--scale",
                     f"{svc}={n}", svc, timeout=600)
            stack.wait_healthy({svc: n})
            wait_until(f"Prometheus: {n} {svc} targets up", lambda: stack.targets_up(svc, n), 60)
            stack.timeline.add(f"scale {svc} -> {n} (healthy, scraped)", time.monotonic() - t0)
            time.sleep(2)
    log(f"load during scaling: {load.summary()}")
    failed = load.failed
    report_failures(stack, failed, events)
    if failed:
        for line in nginx_errors(stack, since)[:15]:
            log(f"  nginx: {line[:300]}")
    assert not failed, f"{len(failed)} requests failed while scaling (none was killed)"
    drain(stack)
    check_rows(stack, load, before, "scaling")
    # The pipeline evaluates with the new set of workers.
    rng = random.Random(99)
    wait_evaluated(stack, post_batches(rng, 2))


def redis_snapshot(stack: Stack) -> dict:
    """The monitor's state in Redis, read in one redis-cli call: row counter, counters,
    decision, window layout, every feature's window (length and digest of its values) and
    result (hash fields sorted: their order is not state)."""
    cmds = [("seq", "GET", stack.key("seq")), ("stats", "HGETALL", stack.key("stats")),
            ("state", "HGETALL", stack.key("state")),
            ("blocks", "LRANGE", stack.key("blocks"), "0", "-1"), ("dbsize", "DBSIZE")]
    for f in COLUMNS:
        cmds.append((f"win:{f}", "LRANGE", stack.key(f"win:{f}"), "0", "-1"))
        cmds.append((f"res:{f}", "HGETALL", stack.key(f"res:{f}")))
    script = "".join(f"ECHO @@{c[0]}@@\n{' '.join(c[1:])}\n" for c in cmds)
    rid = stack.redis_container()["id"]
    p = subprocess.run(["docker", "exec", "-i", rid, "redis-cli", "-a", REDIS_PASSWORD,
                        "--no-auth-warning", "--raw"], input=script.encode(),
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    snap, name, buf = {}, None, []
    for line in p.stdout.split(b"\n"):
        m = re.fullmatch(rb"@@(.+)@@", line)
        if m:
            if name is not None:
                snap[name] = buf
            name, buf = m.group(1).decode(), []
        else:
            buf.append(line)
    snap[name] = buf
    out = {}
    for k, lines in snap.items():
        if lines and lines[-1] == b"":
            lines = lines[:-1]
        if k in ("stats", "state") or k.startswith("res:"):
            out[k] = sorted(zip(lines[0::2], lines[1::2]))
        elif k.startswith("win:"):
            blob = b"\n".join(lines)
            out[k] = (len(blob), hashlib.sha256(blob).hexdigest())
        else:
            out[k] = lines
    out["seq"] = int(out["seq"][0]) if out["seq"] and out["seq"][0] else 0
    return out


def test_redis_restart_keeps_state_and_recovers(stack):
    others = {c["id"]: (c["started"], c["restarts"]) for c in stack.inspect(stack.ids())
              if c["service"] != "redis" and c["status"] == "running"}
    # 1. Quiet: the whole monitor state is the same after the restart.
    wait_evaluated(stack, post_batches(random.Random(3), 6))
    drain(stack)
    time.sleep(1.5)  # appendfsync everysec
    snap = redis_snapshot(stack)
    assert snap["seq"] > 0 and snap["win:" + SHIFTED][0] > 0
    rid = stack.redis_container()["id"]
    t0 = time.monotonic()
    run(["docker", "restart", rid], timeout=120)
    stack.wait_healthy({"redis": 1}, timeout=60)
    stack.timeline.add("restart Redis (quiet) -> healthy", time.monotonic() - t0)
    after = redis_snapshot(stack)
    diff = [k for k in snap if snap[k] != after[k]]
    assert not diff, f"Redis state changed across the restart: {diff}"
    log(f"Redis state after the restart: the same {len(snap)} items (row counter "
        f"{after['seq']}, {len(COLUMNS)} windows of {after['win:' + SHIFTED][0]} bytes each...)")

    attempts = []

    def ingest_ok():
        r = http("POST", f"{GATEWAY}{ROWS_PATH}", body=draw_rows(random.Random(), 10), timeout=5)
        attempts.append((round(time.monotonic() - t0, 2), r.status,
                         r.text[:120] if r.status != 202 else ""))
        return r.status == 202

    wait_until("ingest through the gateway after the Redis restart", ingest_ok, 60, 0.2)
    stack.timeline.add("restart Redis (quiet) -> state compared, ingest 202 again",
                       time.monotonic() - t0)
    log(f"ingest attempts after the quiet Redis restart (s, status): {attempts}")

    # 2. Under load: rows acknowledged before, during and after the restart are all kept.
    drain(stack)
    before = stack.rows_stored()
    with Load(threads=4, batch=10, pause=0.01) as load:
        time.sleep(3)
        t0 = time.monotonic()
        run(["docker", "restart", rid], timeout=120)
        t1 = time.monotonic()
        wait_until("rows accepted after the Redis restart under load",
                   lambda: load.ok_after(t1) >= 20, 60, 0.2)
        first_ok = min(r["t1"] for r in load.snapshot() if r["status"] == 202 and r["t0"] >= t1)
        stack.timeline.add("restart Redis under load -> first 202 after it", first_ok - t0)
        time.sleep(3)
    log(f"load during the Redis restart: {load.summary()}")
    bad = [r for r in load.failed if r["status"] not in (503, 502, 504, None)]
    assert not bad, f"unexpected failures across the Redis restart: {bad[:5]}"
    drain(stack)
    check_rows(stack, load, before, "Redis restart")
    wait_until("Prometheus: drift_redis_up back to 1",
               lambda: stack.query("max(drift_redis_up) == 1"), 30)
    wait_evaluated(stack, post_batches(random.Random(5), 2))
    # Nothing else was restarted.
    now = {c["id"]: (c["started"], c["restarts"]) for c in stack.inspect(list(others))}
    changed = [stack.inspect([i])[0]["name"] for i in others if now.get(i) != others[i]]
    assert not changed, f"containers restarted with Redis: {changed}"


def worker_jobs(stack: Stack, worker: dict) -> float:
    p = subprocess.run(["docker", "exec", worker["id"], "curl", "-fsS",
                        "http://127.0.0.1:9101/metrics"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise OSError(p.stderr)
    total = 0.0
    for line in p.stdout.splitlines():
        if line.startswith("drift_worker_jobs_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_worker_cut_off_the_network_and_back(stack):
    drain(stack)
    before = stack.rows_stored()
    net = stack.network_name()
    workers = stack.containers("worker")
    victim = workers[0]
    n = len(workers)
    with Load(threads=4, batch=10, pause=0.02) as load:
        time.sleep(2)
        t0 = time.monotonic()
        run(["docker", "network", "disconnect", net, victim["id"]], timeout=60)
        stack.timeline.add("docker network disconnect 1 worker", time.monotonic() - t0)
        # The others go on evaluating; Prometheus no longer finds the cut-off one.
        seq_then = stack.rows_stored()
        wait_evaluated(stack, seq_then - seq_then % 100, 60, settled=False)
        wait_until(f"Prometheus: {n - 1} worker targets",
                   lambda: stack.targets_up("worker", n - 1), 60)
        jobs_cut = worker_jobs(stack, victim)
        time.sleep(5)
        t1 = time.monotonic()
        run(["docker", "network", "connect", "--alias", "worker", net, victim["id"]], timeout=60)
        # It resumes by itself: evaluates jobs again, scraped again, never restarted.
        wait_until("the reconnected worker evaluates jobs again",
                   lambda: worker_jobs(stack, victim) > jobs_cut, 90, 0.5)
        stack.timeline.add("network reconnect -> the worker evaluates again", time.monotonic() - t1)
        wait_until(f"Prometheus: {n} worker targets again", lambda: stack.targets_up("worker", n), 60)
        stack.timeline.add("network reconnect -> scraped again", time.monotonic() - t1)
    log(f"load during the network cut: {load.summary()}")
    assert not load.failed, f"{len(load.failed)} requests failed during the network cut"
    info = stack.inspect([victim["id"]])[0]
    assert info["started"] == victim["started"] and info["restarts"] == victim["restarts"], info
    drain(stack)
    check_rows(stack, load, before, "network cut")


def test_compose_down_leaves_nothing(stack):
    if os.environ.get("DRIFT_COMPOSE_KEEP") == "1":
        pytest.skip("DRIFT_COMPOSE_KEEP=1")
    stack.timed("down -v", lambda: stack.dc("down", "-v", "--remove-orphans", timeout=300))
    left = stack.project_leftovers()
    assert left == {"containers": [], "networks": [], "volumes": []}, left


# ---------------------------------------------------------------------------- the cluster
CLUSTER_NODES = [f"redis-node-{i}" for i in range(1, 7)]


def test_cluster_override_runs_the_stack_on_six_nodes_and_survives_a_master(stack):
    """docker-compose.cluster.yml on top (after `down -v` of the base stack): six Redis
    nodes joined by redis-cluster-init, drift found through the gateway, and the monitor's
    master SIGKILLed under load, its replica promoted, and the killed node started again
    (as its supervisor would; DRIFT_REDIS_ACK_REPLICAS=1 refuses rows until the promoted
    replica has a replica): ingest resumes without restarting a service and every
    acknowledged row is stored. Ends with `down -v` of the whole override."""
    files = [*stack.files, "-f", "docker-compose.cluster.yml"]

    def dcc(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return run([*stack.compose, *files, "-p", PROJECT, *args], timeout=timeout,
                   env=stack.env)

    def node_cli(node: str, *args: str) -> str:
        cid = stack.containers(node)[0]["id"]
        p = subprocess.run(["docker", "exec", cid, "redis-cli", "-c", "-a", REDIS_PASSWORD,
                            "--no-auth-warning", *args], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0, p.stderr or p.stdout
        return p.stdout.strip()

    def stored() -> int:
        live = [n for n in CLUSTER_NODES if stack.containers(n)]
        return int(node_cli(live[0], "GET", stack.key("seq")) or 0)

    try:
        stack.timed("cluster: up (6 Redis nodes, --scale api=3 --scale worker=2)",
                    lambda: dcc("up", "-d", "--no-build", "--scale", "api=3",
                                "--scale", "worker=2"))
        stack.timed("cluster: healthy", lambda: stack.wait_healthy(
            {**{n: 1 for n in CLUSTER_NODES}, "api": 3, "worker": 2, "exporter": 1,
             "nginx": 1, "prometheus": 1}))
        init = stack.containers("redis-cluster-init", running=False)
        codes = run(["docker", "inspect", "-f", "{{.State.ExitCode}}",
                     *[c["id"] for c in init]], timeout=60).stdout.split()
        assert codes == ["0"], f"redis-cluster-init exited with {codes}"
        info = node_cli("redis-node-1", "CLUSTER", "INFO")
        assert "cluster_state:ok" in info and "cluster_size:3" in info, info
        wait_until("gateway /readyz on the cluster",
                   lambda: http("GET", f"{GATEWAY}/readyz", timeout=3).status == 200, 60)
        wait_until("monitor registered on the cluster",
                   lambda: http("GET", f"{GATEWAY}/v1/monitors/{MONITOR}", timeout=3).status == 200, 60)

        rng = random.Random(77)
        t0 = time.monotonic()
        wait_evaluated(stack, post_batches(rng, 10))
        seq = post_batches(rng, 10, shift_sd=1.0)
        view = wait_evaluated(stack, seq)
        assert [f for f, r in view["results"].items() if r and r.get("drifted")] == [SHIFTED], view
        wait_until("Prometheus (cluster): mean_radius alone flagged",
                   lambda: sorted(r["metric"]["feature"] for r in stack.query(
                       f'drift_feature_drifted{{monitor="{MONITOR}"}} == 1')) == [SHIFTED], 60)
        stack.timeline.add("cluster: drift on mean_radius -> flagged in Prometheus",
                           time.monotonic() - t0)

        slot = int(node_cli("redis-node-1", "CLUSTER", "KEYSLOT", stack.key("seq")))

        def serves(node: str) -> bool:
            me = [l for l in node_cli(node, "CLUSTER", "NODES").splitlines() if "myself" in l]
            for r in me[0].split()[8:]:
                a, _, b = r.partition("-")
                if not r.startswith("[") and int(a) <= slot <= int(b or a):
                    return True
            return False

        owner = next((n for n in CLUSTER_NODES if serves(n)), None)
        assert owner, f"no master serves slot {slot}"
        before = stored()
        with Load(threads=2, batch=10, pause=0.02, seed=31) as load:
            time.sleep(3)
            killed_at = time.monotonic()
            run(["docker", "kill", "-s", "KILL", stack.containers(owner)[0]["id"]], timeout=60)
            # Started again once its replica took over (sooner, it would simply come
            # back as the master, from its append-only file).
            promoted = wait_until(
                "cluster: a replica promoted in the killed master's place",
                lambda: next((time.monotonic() for n in CLUSTER_NODES
                              if n != owner and serves(n)), None), 60)
            run(["docker", "start", stack.containers(owner, running=False)[0]["id"]], timeout=60)
            resumed = wait_until(
                "cluster: ingest resumed after the master's kill",
                lambda: next((r["t1"] for r in load.snapshot()
                              if r["status"] == 202 and r["t0"] > killed_at + 1), None), 60)
            time.sleep(2)
        stack.timeline.add(f"cluster: SIGKILL of the master ({owner}) -> replica promoted",
                           promoted - killed_at)
        stack.timeline.add("cluster: SIGKILL -> first 202 (the killed node started again "
                           "once the replica was promoted)", resumed - killed_at)
        log(f"cluster failover load: {load.summary()}")
        wait_until("cluster: the killed master back as a replica",
                   lambda: node_cli(owner, "ROLE").splitlines()[0] == "slave", 60)
        # Every acknowledged row is stored; beyond them only rows of refused requests
        # (a 503 after the write says they may be stored).
        got = stored() - before
        assert got >= load.acked, f"{load.acked - got} acknowledged rows lost"
        assert got <= load.acked + sum(r["rows"] for r in load.failed), (got, load.acked)
        assert all(r["status"] == 503 for r in load.failed), load.failed[:5]
        stack.timeline.add(f"cluster: rows acknowledged {load.acked}, stored {got}", 0)
    finally:
        stack.timed("cluster: down -v", lambda: dcc("down", "-v", "--remove-orphans",
                                                    timeout=300))
    left = stack.project_leftovers()
    assert left == {"containers": [], "networks": [], "volumes": []}, left
