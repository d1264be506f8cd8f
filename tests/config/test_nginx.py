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
