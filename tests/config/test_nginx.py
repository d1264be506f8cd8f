"""The gateway configs parse with `nginx -t`: the compose one (nginx/nginx.conf) and the
local template the demo, the benchmarks and the stack test render
(nginx/local.conf.template). Both include nginx/gateway-locations.conf."""
from __future__ import annotations

import re


def nginx_t(require_tool, run_tool, prefix, conf, what):
    # -p and -e keep the pid, log and temp paths out of the system directories.
    prefix.mkdir(parents=True, exist_ok=True)
    run_tool([require_tool("nginx"), "-t", "-q", "-p", prefix, "-e", prefix / "error.log", "-c", conf], what)


def test_compose_config_parses(root, require_tool, run_tool, tmp_path):
    # nginx -t only parses: the compose resolver (127.0.0.11) and the host `api` are used
    # at request time (variable proxy_pass), never resolved by -t. The config includes
    # gateway-locations.conf relative to its own directory, so it is tested in place.
    nginx_t(require_tool, run_tool, tmp_path / "nginx-compose", root / "nginx" / "nginx.conf",
            "nginx -t nginx/nginx.conf")


def render_local(root, render, tmp_path):
    prefix = tmp_path / "nginx-local"
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    text = render(root / "nginx" / "local.conf.template", {
        "LISTEN": "127.0.0.1:18002",
        "UPSTREAMS": "server 127.0.0.1:18001 max_fails=1 fail_timeout=2s; server 127.0.0.1:18003;",
        "PREFIX": str(prefix),
        "LOCATIONS": str(root / "nginx" / "gateway-locations.conf"),
    }, conf)
    return text, prefix, conf


def test_local_template_has_no_unknown_placeholders(root, render, tmp_path):
    text, _, _ = render_local(root, render, tmp_path)
    # The template documents its placeholders in comments; only directives count.
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    left = sorted(set(re.findall(r"@[A-Z_]*@", code)))
    assert not left, (
        f"nginx/local.conf.template: unknown placeholder(s) left after rendering: {' '.join(left)}"
    )


def test_local_template_renders_to_a_valid_config(root, render, require_tool, run_tool, tmp_path):
    _, prefix, conf = render_local(root, render, tmp_path)
    nginx_t(require_tool, run_tool, prefix, conf, "nginx -t nginx/local.conf.template (rendered)")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_reference_uploads_have_their_own_body_limit(root, render, require_tool, tmp_path):
    """Through the local gateway, a 3 MiB `PUT /v1/monitors/{m}` (a reference) reaches the
    replica, while a 3 MiB ingest batch gets the gateway's JSON 413 (2 MiB limit)."""
    import http.server
    import json
    import subprocess
    import threading
    import time
    import urllib.error
    import urllib.request

    seen = []

    class Stub(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
            seen.append((self.command, self.path, len(body)))
            out = json.dumps({"received": len(body)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_PUT = do_POST = do_GET = _answer

        def log_message(self, *args):
            pass

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    listen = _free_port()
    prefix = tmp_path / "nginx-run"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    render(root / "nginx" / "local.conf.template", {
        "LISTEN": f"127.0.0.1:{listen}",
        "UPSTREAMS": f"server 127.0.0.1:{upstream.server_address[1]};",
        "PREFIX": str(prefix),
        "LOCATIONS": str(root / "nginx" / "gateway-locations.conf"),
    }, conf)
    nginx = subprocess.Popen([require_tool("nginx"), "-p", str(prefix), "-e", str(prefix / "error.log"),
                              "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{listen}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.05)

        def send(method, path, size):
            req = urllib.request.Request(base + path, data=b"x" * size, method=method,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        big = 3 * 1024 * 1024
        status, body = send("PUT", "/v1/monitors/m", big)
        assert (status, body) == (200, {"received": big}), body
        status, body = send("POST", "/v1/monitors/m/rows", big)
        assert status == 413 and body["error"]["code"] == "payload_too_large", body
        assert "2 MiB" in body["error"]["message"]
        status, body = send("PUT", "/v1/monitors/m", 65 * 1024 * 1024)
        assert status == 413 and body["error"]["code"] == "payload_too_large", body
        assert "64 MiB" in body["error"]["message"]
        # The rows path is not mistaken for a monitor.
        status, _ = send("POST", "/v1/monitors/m/rows", 10)
        assert status == 200
        assert [(m, p) for m, p, _ in seen if p != "/healthz"] == [("PUT", "/v1/monitors/m"), ("POST", "/v1/monitors/m/rows")]
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        upstream.shutdown()
