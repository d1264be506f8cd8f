"""The whole stack on loopback, through the NGINX gateway, as deployed (without Docker).

The stack is brought up by `drift-stack` (testkit/src/bin/drift-stack.rs, the one
launcher, which `make demo` uses too), on free loopback ports:
    redis-server
    3 x drift-api            behind NGINX rendered from nginx/local.conf.template
    2 x drift-worker run
    1 x drift-worker export
    prometheus               rendered from prometheus/local.yml.template (1 s scrapes)
                             with the rules of prometheus/alerts.yml
It writes the addresses (and the Redis pid) to an info file once everything is up; the
tests read them from there. They check, in this order (the tests share the stack and run
in file order):
    1. the gateway serves JSON errors and hides /metrics;
    2. rows without drift (resampled from data/breast_cancer.csv) raise no alarm, rows with
       mean_radius shifted by one standard deviation are detected; the rows went through
       the gateway to every replica;
    3. the DriftDetected alert fires for mean_radius (and nothing else fires);
    4. Locust runs 20 s headless through the gateway without a single failure;
    5. prediction rows are dropped (and counted) while Redis is frozen, yet predictions
       still answer;
    6. every PromQL expression of grafana/dashboards/drift.json returns data.
At the end drift-stack is stopped with SIGTERM and must exit 0 (a graceful stop).

Binary: $DRIFT_BIN_DIR/drift-stack (the Makefile's stack-test sets it after
`cargo build -p drift-testkit --bin drift-stack`); when unset, the test runs that build
itself and uses ${CARGO_TARGET_DIR:-target}/debug.

Needs: redis-server, nginx (nginx-light), prometheus, python3 with pytest and locust
(`scripts/install-deps.sh` installs them). Run: python3 -m pytest -q tests/stack
Set DRIFT_STACK_KEEP=1 to keep the temporary directory (drift-stack's log, the rendered
configs and the server logs); it is kept automatically when a test failed, and the last
log lines are printed.
"""
from __future__ import annotations

import csv
import ctypes
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MONITOR = "breast_cancer"
SHIFTED = "mean_radius"
KEY_PREFIX = "stack"
WINDOW = 500
STRIDE = 100
ROWS_ROUTE = "/v1/monitors/{monitor}/rows"
LOCUST_SECONDS = 20

# Dashboard expressions allowed to return no data, each with the reason. The test causes
# every event the dashboard needs (drift, dropped rows...), so this stays empty; an entry
# must name a substring of the expression and say why no data is legitimate.
ALLOWED_EMPTY: dict[str, str] = {
    "drift_feature_unseen_share": "the stack's monitor (breast_cancer) has numeric features only, "
    "which have no unseen share; the series of categorical features is checked by "
    "tests/config (sample series) and exported in worker/tests/it (mixed monitor)",
}


# ---------------------------------------------------------------------------- helpers
def log(msg: str) -> None:
    print(f"[stack {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def find_binary(name: str, package: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if not path:
        pytest.fail(f"`{name}` is not installed: apt-get install -y {package} "
                    "(scripts/install-deps.sh does it)")
    return path


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


def wait_until(what: str, fn, timeout: float, interval: float = 0.25):
    """Calls fn until it returns a truthy value (returned) or the timeout (fails)."""
    deadline = time.monotonic() + timeout
    last_err = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except (OSError, ValueError, KeyError) as e:  # not up yet, half-written answer...
            last_err = e
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}"
                        + (f" (last error: {last_err!r})" if last_err else ""))
        time.sleep(interval)


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text format -> (name, labels, value); enough for our own exporters."""
    out = []
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = line_re.match(line)
        if m:
            labels = dict(label_re.findall(m.group(3) or ""))
            out.append((m.group(1), labels, float(m.group(4))))
    return out


def metric_sum(text: str, name: str, **labels: str) -> float:
    return sum(v for n, l, v in parse_metrics(text)
               if n == name and all(l.get(k) == want for k, want in labels.items()))


# ---------------------------------------------------------------------------- data
def load_reference() -> tuple[list[str], list[list[float]]]:
    with open(ROOT / "data" / "breast_cancer.csv", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        keep = [i for i, h in enumerate(header) if h != "target"]
        rows = [[float(r[i]) for i in keep] for r in reader if r]
    return [header[i] for i in keep], rows


COLUMNS, REFERENCE = load_reference()


def draw_rows(rng: random.Random, n: int, shift_sd: float = 0.0) -> dict:
    """n rows resampled from the reference (no drift: resampling raises no false alarm);
    with shift_sd, mean_radius is moved by that many standard deviations."""
    j = COLUMNS.index(SHIFTED)
    col = [r[j] for r in REFERENCE]
    mean = sum(col) / len(col)
    sd = math.sqrt(sum((v - mean) ** 2 for v in col) / (len(col) - 1))
    data = []
    for _ in range(n):
        row = list(rng.choice(REFERENCE))
        row[j] += shift_sd * sd
        data.append(row)
    return {"columns": COLUMNS, "data": data}


# ---------------------------------------------------------------------------- processes
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # If pytest itself is killed, the children get SIGTERM instead of lingering.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Stack:
    """The stack as drift-stack started it: its process, and the addresses from its info."""

    def __init__(self, work: Path, bin_dir: Path):
        self.work = work
        self.bin_dir = bin_dir
        self.logs = work / "logs"
        self.logs.mkdir(parents=True)
        self.info_path = work / "stack.json"
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self.redis_frozen = False

    # -- the launcher
    def start(self) -> None:
        # Started as root, nginx runs its workers as nobody: drift-stack's directories
        # live under this one (TMPDIR below), which must then be traversable.
        self.work.chmod(0o755)
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("NO_COLOR", "1")
        env["TMPDIR"] = str(self.work)
        argv = [str(self.bin_dir / "drift-stack"), "--apis", "3", "--workers", "2",
                "--window", str(WINDOW), "--stride", str(STRIDE), "--key-prefix", KEY_PREFIX,
                "--info", str(self.info_path)]
        out = open(self.logs / "drift-stack.log", "wb")
        # Its own session: a Ctrl-C reaches pytest only, whose teardown then stops the
        # stack in order (SIGTERM), instead of every server at once.
        self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=ROOT, env=env,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        out.close()

        def up():
            if self.proc.poll() is not None:
                pytest.fail(f"drift-stack exited ({self.proc.returncode}) before it was up\n"
                            f"{self.tails()}")
            return self.info_path.exists()

        wait_until("drift-stack (its info file)", up, 180, 0.2)
        self.info = json.loads(self.info_path.read_text())
        self.gateway = self.info["gateway_url"]
        self.gateway_port = self.info["gateway_port"]
        self.prom = self.info["prometheus_url"]
        self.apis = self.info["api_urls"]
        self.workers = self.info["worker_urls"]
        self.exporter = self.info["exporter_url"]
        self.redis_url = self.info["redis_url"]
        self.redis_pid = self.info["redis_pid"]
        assert len(self.apis) == 3 and len(self.workers) == 2, self.info

        # drift-stack waits for both before writing its info; checked here all the same,
        # since every test relies on them.
        wait_until("monitor registration",
                   lambda: http("GET", f"{self.gateway}/v1/monitors/{MONITOR}").status == 200, 30)

        def targets_up():
            active = self.prom_get("/api/v1/targets")["activeTargets"]
            return len(active) == 6 and all(t["health"] == "up" for t in active)

        wait_until("all 6 Prometheus targets up", targets_up, 30, 0.5)

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"drift-stack exited ({self.proc.returncode})\n{self.tails()}")

    def freeze_redis(self) -> None:
        os.kill(self.redis_pid, signal.SIGSTOP)
        self.redis_frozen = True

    def thaw_redis(self) -> None:
        if self.redis_frozen:
            os.kill(self.redis_pid, signal.SIGCONT)
            self.redis_frozen = False

    def stop(self) -> int | None:
        """SIGTERM to drift-stack (it stops the APIs first, so buffered rows flush, and its
        servers last); its exit code, or None when it had to be killed."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log("drift-stack did not stop within 30 s; killing it")
                self.proc.kill()
                self.proc.wait()
                # Redis has no parent-death signal (see drift-stack.rs): never leave it.
                for key in ("redis_pid", "gateway_pid", "prometheus_pid"):
                    pid = self.info.get(key)
                    if pid:
                        try:
                            os.kill(pid, signal.SIGCONT)
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                return None
        return self.proc.returncode

    def server_logs(self) -> dict[str, Path]:
        """The logs and configs of the child servers (by a short name), which drift-stack
        removes when it exits."""
        logs = self.info.get("logs") or {}
        files = {"nginx-error.log": logs.get("gateway_error"), "redis.log": logs.get("redis"),
                 "prometheus.log": logs.get("prometheus")}
        if self.info.get("gateway_dir"):
            files["nginx.conf"] = Path(self.info["gateway_dir"]) / "nginx.conf"
        if self.info.get("prometheus_dir"):
            files["prometheus.yml"] = Path(self.info["prometheus_dir"]) / "prometheus.yml"
        return {name: Path(f) for name, f in files.items() if f and Path(f).is_file()}

    def keep_server_logs(self) -> None:
        """Copies the server logs and configs next to drift-stack's log before it stops."""
        dest = self.logs / "servers"
        dest.mkdir(exist_ok=True)
        for name, f in self.server_logs().items():
            shutil.copy(f, dest / name)

    def tails(self, lines: int = 25) -> str:
        out = []
        servers = [f for name, f in self.server_logs().items() if name.endswith(".log")]
        for f in [*sorted(self.logs.glob("*.log")), *servers]:
            text = f.read_text("utf-8", "replace").splitlines()[-lines:]
            out.append(f"---- {f} (last {len(text)} lines) ----\n" + "\n".join(text))
        return "\n".join(out)

    # -- Prometheus
    def prom_get(self, path: str, **params):
        url = f"{self.prom}{path}"
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

    def firing(self) -> list[dict]:
        return [a for a in self.prom_get("/api/v1/alerts")["alerts"] if a["state"] == "firing"]


def build_binaries() -> Path:
    bin_dir = os.environ.get("DRIFT_BIN_DIR")
    if bin_dir:
        return Path(bin_dir).resolve()
    log("DRIFT_BIN_DIR unset: cargo build -p drift-testkit --bin drift-stack")
    subprocess.run(["cargo", "build", "-q", "-p", "drift-testkit", "--bin", "drift-stack"],
                   cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    return target / "debug"


def _interrupt(signum, frame):
    # Once: a second SIGTERM must not abort the teardown that stops the stack.
    signal.signal(signum, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="module")
def stack(request):
    bin_dir = build_binaries()
    assert (bin_dir / "drift-stack").is_file(), \
        f"{bin_dir / 'drift-stack'} not found (set DRIFT_BIN_DIR)"
    for tool, pkg in (("redis-server", "redis-server"), ("nginx", "nginx-light"),
                      ("prometheus", "prometheus")):
        find_binary(tool, pkg)
    work = Path(tempfile.mkdtemp(prefix="drift-stack-"))
    s = Stack(work, bin_dir)
    failed_before = request.session.testsfailed
    started = time.monotonic()
    # SIGTERM (e.g. a CI timeout) unwinds through the finally below like Ctrl-C does.
    old_term = signal.signal(signal.SIGTERM, _interrupt)
    code = None
    try:
        s.start()
        log(f"stack up in {time.monotonic() - started:.1f}s: gateway {s.gateway}, "
            f"prometheus {s.prom}, work dir {work}")
        yield s
    finally:
        failed = request.session.testsfailed > failed_before
        s.thaw_redis()
        keep = failed or os.environ.get("DRIFT_STACK_KEEP") == "1"
        if failed:
            log("a test failed; last log lines:\n" + s.tails())
        if keep:
            s.keep_server_logs()
        code = s.stop()
        signal.signal(signal.SIGTERM, old_term)
        if keep or code != 0:
            log(f"configs and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if code != 0:
        tail = (work / "logs" / "drift-stack.log").read_text("utf-8", "replace")
        pytest.fail(f"drift-stack did not stop cleanly (exit {code}):\n"
                    + "\n".join(tail.splitlines()[-30:]))


def json_error(r: Response, status: int, code: str | None = None) -> dict:
    """Asserts an error in the API's contract: {"error": {"code", "message"}} as JSON."""
    assert r.status == status, f"expected {status}, got {r.status}: {r.text[:300]}"
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), f"{status} with Content-Type {ctype!r}: {r.text[:300]}"
    err = r.json()["error"]
    assert re.fullmatch(r"[a-z][a-z0-9_]*", err["code"]), err
    assert isinstance(err["message"], str) and err["message"], err
    if code:
        assert err["code"] == code, err
    return err


# ---------------------------------------------------------------------------- tests
def test_gateway_hides_metrics_and_errors_are_json(stack):
    gw = stack.gateway
    assert http("GET", f"{gw}/healthz").json()["status"] == "ok"
    # Replica metrics are never routed by the gateway, though each replica serves them.
    json_error(http("GET", f"{gw}/metrics"), 404, "not_found")
    for url in stack.apis:
        r = http("GET", f"{url}/metrics")
        assert r.status == 200 and "http_requests_total" in r.text
    # Errors made by NGINX itself.
    json_error(http("GET", f"{gw}/no/such/route"), 404, "not_found")
    # 413 before any body is read: send only the headers announcing 3 MB.
    with socket.create_connection(("127.0.0.1", stack.gateway_port), timeout=5) as s:
        s.sendall((f"POST /v1/monitors/{MONITOR}/rows HTTP/1.1\r\nHost: x\r\n"
                   "Content-Type: application/json\r\nContent-Length: 3000000\r\n\r\n").encode())
        raw = b""
        while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), raw[:300]
    assert b"application/json" in head.lower(), head
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    # Errors made by a replica pass through untouched.
    json_error(http("GET", f"{gw}/v1/monitors/no_such_monitor"), 404)
    json_error(http("POST", f"{gw}/v1/monitors/{MONITOR}/rows", body=b"{not json"), 400)
    bad_schema = {"columns": COLUMNS[:-1], "data": [REFERENCE[0][:-1]]}
    json_error(http("POST", f"{gw}/v1/monitors/{MONITOR}/rows", body=bad_schema), 422)
    json_error(http("GET", f"{gw}/v1/predict"), 405)
    # A good prediction through both routes.
    for path in ("/v1/predict", "/get-prediction"):
        r = http("POST", f"{gw}{path}", body={"columns": COLUMNS, "data": [REFERENCE[0]]})
        assert r.status == 200, r.text
        doc = r.json()
        assert doc["prediction"] in (0, 1) and 0.0 <= doc["probability"] <= 1.0, doc


def wait_evaluated(stack: Stack, seq: int, timeout: float = 60) -> dict:
    """The monitor view (read through the gateway) once every feature's result is at the
    evaluation boundary `seq` (or a later one)."""
    last = {}

    def done():
        stack.check_alive()
        view = http("GET", f"{stack.gateway}/v1/monitors/{MONITOR}").json()
        res = view.get("results") or {}
        last["seqs"] = sorted({(r or {}).get("seq") for r in res.values()}, key=str)
        last["rows"] = view.get("rows")
        # Every feature at the same boundary, ours or a later one (a stray logged
        # prediction row may have moved the counter past it).
        seqs = {(r or {}).get("seq") or 0 for r in res.values()}
        if len(res) == len(COLUMNS) and len(seqs) == 1 and seqs.pop() >= seq:
            return view
        return None

    try:
        return wait_until(f"every feature evaluated at row {seq}", done, timeout, 0.2)
    except pytest.fail.Exception as e:
        pending = stack.query(f'drift_jobs_pending{{monitor="{MONITOR}"}}')
        raise AssertionError(f"{e}; monitor rows {last.get('rows')}, result seqs "
                             f"{last.get('seqs')}, jobs pending {pending}") from None


def drifted(view: dict) -> list[str]:
    return sorted(f for f, r in view["results"].items() if r and r.get("drifted"))


def post_batches(stack: Stack, rng: random.Random, batches: int, shift_sd: float = 0.0) -> int:
    """Posts batches of 100 rows through the gateway; returns the row counter after the
    last one. Each batch crosses exactly one evaluation boundary (stride 100) once the
    window is full, and the jobs of that boundary carry the counter as their seq."""
    seq = 0
    for _ in range(batches):
        r = http("POST", f"{stack.gateway}/v1/monitors/{MONITOR}/rows",
                 body=draw_rows(rng, 100, shift_sd))
        assert r.status == 202, r.text
        doc = r.json()
        assert doc["accepted"] == 100, doc
        seq = max(seq, doc["seq"])
    return seq


def test_drift_detected_through_gateway_on_every_replica(stack):
    rng = random.Random(20240607)
    # 1. Six windows' worth of rows without drift (30 batches of 100 rows).
    seq = post_batches(stack, rng, 30)
    assert seq >= 3000, seq
    view = wait_evaluated(stack, seq)
    assert drifted(view) == [], f"false alarm on resampled rows: {json.dumps(view)[:2000]}"
    assert view["features_drifting"] == 0

    # 2. Two windows with mean_radius shifted by one standard deviation.
    seq = post_batches(stack, rng, 10, shift_sd=1.0)
    view = wait_evaluated(stack, seq)
    assert drifted(view) == [SHIFTED], json.dumps(view)[:2000]
    assert view["features_drifting"] == 1
    assert view["results"][SHIFTED]["p_value"] < 1e-6, view["results"][SHIFTED]

    # 3. NGINX spread the batches over every replica.
    per_replica = []
    for url in stack.apis:
        text = http("GET", f"{url}/metrics").text
        per_replica.append(metric_sum(text, "http_requests_total", route=ROWS_ROUTE,
                                      method="POST", status="202"))
    log(f"rows requests (202) per replica: {per_replica}")
    assert all(n > 0 for n in per_replica), f"a replica got no rows requests: {per_replica}"
    assert sum(per_replica) >= 40, per_replica


def test_drift_alert_fires(stack):
    def mean_radius_firing():
        alerts = stack.firing()
        hit = [a for a in alerts if a["labels"].get("alertname") == "DriftDetected"
               and a["labels"].get("feature") == SHIFTED
               and a["labels"].get("monitor") == MONITOR]
        return alerts if hit else None

    alerts = wait_until("DriftDetected firing for mean_radius", mean_radius_firing, 30, 0.5)
    others = [(a["labels"]["alertname"], a["labels"].get("feature")) for a in alerts
              if not (a["labels"]["alertname"] == "DriftDetected"
                      and a["labels"].get("feature") == SHIFTED)]
    assert others == [], f"unexpected alerts firing: {others}"
    fired = next(a for a in alerts if a["labels"].get("feature") == SHIFTED)
    # The alert's value is the KS statistic, at or above the feature's ert threshold.
    thr = stack.query(f'max(drift_feature_threshold{{monitor="{MONITOR}",feature="{SHIFTED}"}})')
    assert thr, "drift_feature_threshold is not exported"
    assert float(fired["value"]) >= float(thr[0]["value"][1]) > 0.1, (fired, thr)
    assert fired["labels"].get("severity") == "warning", fired


def test_locust_through_gateway_without_failures(stack):
    prefix = stack.work / "locust" / "run"
    prefix.parent.mkdir()
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless",
           "-u", "20", "-r", "10", "-t", f"{LOCUST_SECONDS}s", "--host", stack.gateway,
           "--only-summary", "--csv", str(prefix), "--exit-code-on-error", "1",
           "--stop-timeout", "5", "--loglevel", "WARNING"]
    log("locust: " + " ".join(cmd[2:]))
    started = time.monotonic()
    r = subprocess.run(cmd, cwd=stack.work / "locust", capture_output=True, text=True,
                       timeout=LOCUST_SECONDS + 60, preexec_fn=_die_with_parent)
    (stack.logs / "locust.log").write_text(r.stdout + r.stderr)
    with open(f"{prefix}_stats.csv", newline="") as f:
        stats = {row["Name"]: row for row in csv.DictReader(f)}
    total = stats["Aggregated"]
    requests, failures = int(total["Request Count"]), int(total["Failure Count"])
    log(f"locust: {requests} requests, {failures} failures, "
        f"{float(total['Requests/s']):.0f} req/s, p50 {total['50%']} ms, p99 {total['99%']} ms, "
        f"{time.monotonic() - started:.0f}s")
    with open(f"{prefix}_failures.csv", newline="") as f:
        failure_rows = list(csv.DictReader(f))
    assert failures == 0, f"locust failures: {failure_rows}\n{r.stderr[-2000:]}"
    assert r.returncode == 0, f"locust exited {r.returncode}\n{r.stderr[-3000:]}"
    assert requests >= 20 * LOCUST_SECONDS, f"locust sent only {requests} requests"
    for name in ("/get-prediction", "/v1/predict", "/v1/monitors/{monitor}/rows"):
        assert int(stats[name]["Request Count"]) > 0, f"locust never called {name}"
    stack.check_alive()


def test_prediction_rows_dropped_while_redis_frozen(stack):
    """Predictions answer without Redis; the rows they would log are dropped and counted.
    (This also gives the dashboard's `drift_rows_dropped_total` panel its data.)"""
    api = stack.apis[0]
    body = {"columns": COLUMNS, "data": [REFERENCE[1]]}
    stack.freeze_redis()
    try:
        t0 = time.monotonic()
        r = http("POST", f"{api}/v1/predict", body=body, timeout=5)
        assert r.status == 200, r.text
        assert time.monotonic() - t0 < 1.0, "the prediction waited for Redis"

        def dropped():
            text = http("GET", f"{api}/metrics", timeout=2).text
            return metric_sum(text, "drift_rows_dropped_total") >= 1

        wait_until("drift_rows_dropped_total on the replica", dropped, 10)
    finally:
        stack.thaw_redis()
    wait_until("readiness after Redis is back",
               lambda: http("GET", f"{stack.gateway}/readyz", timeout=3).status == 200, 15)
    wait_until("drift_rows_dropped_total in Prometheus",
               lambda: stack.query("sum by (reason) (increase(drift_rows_dropped_total[5m]))"),
               15, 0.5)


def dashboard_exprs() -> list[tuple[str, str]]:
    doc = json.loads((ROOT / "grafana" / "dashboards" / "drift.json").read_text())
    out = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels") or [])
            for t in p.get("targets") or []:
                if t.get("expr"):
                    out.append((p.get("title", "?"), t["expr"]))

    walk(doc.get("panels") or [])
    return out


def substitute(expr: str, feature: str) -> str:
    values = {"monitor": MONITOR, "feature": feature, "__rate_interval": "10s",
              "__interval": "5s", "__range": "5m", "__range_s": "300"}
    for k, v in values.items():
        expr = re.sub(r"\$\{" + k + r"(:[a-z]+)?\}|\[\[" + k + r"\]\]|\$" + k + r"\b", v, expr)
    left = re.findall(r"\$\{?\w+", expr)
    assert not left, f"unknown dashboard variable(s) {left} in {expr}"
    return expr


def test_dashboard_queries_return_data(stack):
    for entry, reason in ALLOWED_EMPTY.items():
        assert reason.strip(), f"allow-list entry {entry!r} has no reason"
    assert len(ALLOWED_EMPTY) <= 2, "the allow-list of empty dashboard queries must stay small"

    # Template variables: label_values(drift_features_drifting, monitor) and features.
    monitors = stack.prom_get("/api/v1/label/monitor/values", **{"match[]": "drift_features_drifting"})
    assert MONITOR in monitors, monitors
    features = stack.prom_get("/api/v1/label/feature/values",
                              **{"match[]": f'drift_feature_p_value{{monitor="{MONITOR}"}}'})
    assert sorted(features) == sorted(COLUMNS), features

    exprs = dashboard_exprs()
    assert len(exprs) >= 20, f"only {len(exprs)} expressions found in the dashboard"
    empty, nan_only, used_allow = [], [], set()
    # "All" (the variable's allValue .+) and a single feature.
    for feature in (".+", SHIFTED):
        for title, raw in exprs:
            if feature == SHIFTED and "$feature" not in raw and "${feature" not in raw:
                continue
            expr = substitute(raw, feature)
            result = stack.query(expr)
            allowed = [k for k in ALLOWED_EMPTY if k in raw]
            if not result:
                if allowed:
                    used_allow.update(allowed)
                    continue
                empty.append(f"{title}: {expr}")
            elif not any(math.isfinite(float(r["value"][1])) for r in result):
                nan_only.append(f"{title}: {expr} -> {[r['value'][1] for r in result]}")
    log(f"{len(exprs)} dashboard expressions checked")
    assert not empty, "dashboard queries without data:\n  " + "\n  ".join(empty)
    assert not nan_only, "dashboard queries with only NaN/Inf values:\n  " + "\n  ".join(nan_only)
    unused = set(ALLOWED_EMPTY) - used_allow
    assert not unused, f"allow-list entries whose queries now return data (remove them): {unused}"
