#!/usr/bin/env python3
"""Structure checks of docker-compose.yml and grafana/dashboards/drift.json.

No Docker engine is needed: the files are read as YAML/JSON and checked against what the
stack relies on (see ../shared/ARCHITECTURE.md and the comments in docker-compose.yml).

    python3 scripts/check_compose.py                 # both checks
    python3 scripts/check_compose.py compose         # docker-compose.yml only
    python3 scripts/check_compose.py dashboard       # drift.json only

Exit status 0 when everything holds, 1 with one line per problem otherwise, 2 when PyYAML
is missing (`pip install pyyaml`).
"""
from __future__ import annotations

import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    print("check_compose: PyYAML is missing; install it with: python3 -m pip install pyyaml",
          file=sys.stderr)
    sys.exit(2)

SERVICES = ["redis", "api", "worker", "exporter", "nginx", "prometheus", "grafana"]
# Services scaled with --scale: no host port, no fixed container name or hostname.
SCALED = ["api", "worker"]
# Internal services: never published on the host.
INTERNAL = ["redis", "api", "worker", "exporter"]
NO_HEALTHCHECK_NEEDED = {"grafana", "nginx", "prometheus"}
# service -> {dependency: required condition}
DEPENDS = {
    "api": {"redis": "service_healthy"},
    "worker": {"redis": "service_healthy"},
    "exporter": {"redis": "service_healthy"},
    "nginx": {"api": "service_healthy"},
    "prometheus": {"exporter": "service_healthy"},
    "grafana": {"prometheus": None},
}
PUBLISHED = {"nginx": "8002", "grafana": "4000", "prometheus": "9090"}


class Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, msg: str) -> None:
        self.problems.append(msg)

    def check(self, cond: bool, msg: str) -> bool:
        if not cond:
            self.fail(msg)
        return cond


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def command_words(svc: dict) -> list[str]:
    cmd = svc.get("command")
    if isinstance(cmd, str):
        return cmd.split()
    return [str(c) for c in as_list(cmd)]


def env_map(svc: dict) -> dict:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            key, _, val = str(item).partition("=")
            out[key] = val
        return out
    return {str(k): ("" if v is None else str(v)) for k, v in env.items()}


def host_ports(svc: dict) -> list[str]:
    """Host-side ports of a service's `ports` (short or long syntax)."""
    out = []
    for p in as_list(svc.get("ports")):
        if isinstance(p, dict):
            if p.get("published") is not None:
                out.append(str(p["published"]))
            continue
        parts = str(p).split(":")
        if len(parts) >= 2:
            out.append(parts[-2])
        else:
            out.append("(ephemeral:" + parts[0] + ")")
    return out


def bind_sources(svc: dict) -> list[str]:
    out = []
    for v in as_list(svc.get("volumes")):
        if isinstance(v, dict):
            if v.get("type") == "bind":
                out.append(v.get("source", ""))
            continue
        src = str(v).split(":")[0]
        if src.startswith(".") or src.startswith("/"):
            out.append(src)
    return out


def check_compose(c: Checker, path: str) -> None:
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    if not c.check(isinstance(doc, dict) and isinstance(doc.get("services"), dict),
                   f"{path}: no `services` mapping"):
        return
    services = doc["services"]
    for name in SERVICES:
        c.check(name in services, f"compose: service `{name}` is missing")
    for name, svc in services.items():
        svc = svc or {}
        c.check("container_name" not in svc,
                f"compose: service `{name}` sets container_name (breaks --scale and parallel stacks)")
        if name not in NO_HEALTHCHECK_NEEDED:
            hc = svc.get("healthcheck")
            if c.check(isinstance(hc, dict) and hc.get("test") and not hc.get("disable"),
                       f"compose: service `{name}` has no healthcheck"):
                test = " ".join(str(t) for t in as_list(hc["test"]))
                c.check("NONE" not in as_list(hc["test"])[:1], f"compose: `{name}` healthcheck is NONE")
                if name == "redis":
                    c.check("redis-cli" in test and "-a" in test.split() and "ping" in test,
                            "compose: redis healthcheck should run `redis-cli -a <password> ping`")
                elif name in ("api", "worker", "exporter"):
                    c.check("/healthz" in test or "/readyz" in test,
                            f"compose: `{name}` healthcheck should query /healthz or /readyz")
        for src in bind_sources(svc):
            full = os.path.normpath(os.path.join(os.path.dirname(path), src))
            c.check(os.path.exists(full), f"compose: `{name}` mounts {src}, which does not exist")

    for name in SCALED:
        svc = services.get(name) or {}
        c.check(not svc.get("ports"), f"compose: scaled service `{name}` must not publish host ports")
        c.check("hostname" not in svc, f"compose: scaled service `{name}` must not set a fixed hostname")
    for name in INTERNAL:
        svc = services.get(name) or {}
        c.check(not svc.get("ports"), f"compose: internal service `{name}` must not publish host ports")
    for name, port in PUBLISHED.items():
        svc = services.get(name) or {}
        c.check(port in host_ports(svc),
                f"compose: `{name}` must publish host port {port} (has {host_ports(svc) or 'none'})")

    for name, deps in DEPENDS.items():
        svc = services.get(name) or {}
        dep = svc.get("depends_on")
        if not c.check(isinstance(dep, dict),
                       f"compose: `{name}` needs depends_on in long form (with conditions)"):
            continue
        for target, cond in deps.items():
            entry = dep.get(target)
            if not c.check(isinstance(entry, dict), f"compose: `{name}` must depend on `{target}`"):
                continue
            if cond:
                c.check(entry.get("condition") == cond,
                        f"compose: `{name}` -> `{target}` needs condition {cond} "
                        f"(has {entry.get('condition')})")
            else:
                c.check("condition" in entry, f"compose: `{name}` -> `{target}` needs a condition")

    # redis: official image, persistence, password, no ports.
    redis = services.get("redis") or {}
    words = command_words(redis)
    c.check(str(redis.get("image", "")).startswith("redis:7"), "compose: redis should use a redis:7 image")
    c.check("--appendonly" in words and words[words.index("--appendonly") + 1:][:1] == ["yes"],
            "compose: redis must run with --appendonly yes")
    c.check("--appendfsync" in words and words[words.index("--appendfsync") + 1:][:1] == ["everysec"],
            "compose: redis must run with --appendfsync everysec")
    c.check("--requirepass" in words and "REDIS_PASSWORD" in " ".join(words),
            "compose: redis must take --requirepass from ${REDIS_PASSWORD...}")

    # The Rust services: commands, listen addresses, Redis URL with the password.
    expect = {
        "api": (["drift-api"], "0.0.0.0:8000"),
        "worker": (["drift-worker", "run"], "0.0.0.0:9101"),
        "exporter": (["drift-worker", "export"], "0.0.0.0:9102"),
    }
    for name, (cmd, listen) in expect.items():
        svc = services.get(name) or {}
        c.check(command_words(svc)[:len(cmd)] == cmd, f"compose: `{name}` command should start with {cmd}")
        env = env_map(svc)
        c.check(env.get("DRIFT_LISTEN") == listen, f"compose: `{name}` needs DRIFT_LISTEN={listen}")
        url = env.get("DRIFT_REDIS_URL", "")
        c.check(url.startswith("redis://") and "@redis:6379" in url and "REDIS_PASSWORD" in url,
                f"compose: `{name}` needs DRIFT_REDIS_URL=redis://:${{REDIS_PASSWORD...}}@redis:6379")
        c.check("build" in svc, f"compose: `{name}` should be built from the Dockerfile (build: .)")
        c.check("DRIFT_CONSUMER" not in env or name != "worker",
                "compose: worker must not set one DRIFT_CONSUMER for all replicas")

    # Gateway, Prometheus and Grafana wiring.
    nginx = services.get("nginx") or {}
    mounts = " ".join(str(v) for v in as_list(nginx.get("volumes")))
    c.check("nginx/nginx.conf" in mounts and "gateway-locations.conf" in mounts,
            "compose: nginx must mount nginx/nginx.conf and nginx/gateway-locations.conf")
    prom = services.get("prometheus") or {}
    mounts = " ".join(str(v) for v in as_list(prom.get("volumes")))
    c.check("prometheus.yml" in mounts and "alerts.yml" in mounts,
            "compose: prometheus must mount prometheus.yml and alerts.yml")
    graf = services.get("grafana") or {}
    env = env_map(graf)
    c.check(env.get("GF_AUTH_ANONYMOUS_ENABLED", "").lower() == "true",
            "compose: grafana needs GF_AUTH_ANONYMOUS_ENABLED=true")
    c.check(env.get("GF_AUTH_ANONYMOUS_ORG_ROLE") == "Viewer",
            "compose: grafana anonymous role must be Viewer (read-only)")
    mounts = " ".join(str(v) for v in as_list(graf.get("volumes")))
    c.check("grafana/provisioning" in mounts and "grafana/dashboards" in mounts,
            "compose: grafana must mount grafana/provisioning and grafana/dashboards")


def iter_panels(panels):
    for p in panels or []:
        yield p
        # Collapsed rows keep their panels inside.
        yield from iter_panels(p.get("panels"))


def check_dashboard(c: Checker, path: str) -> list[str]:
    """Checks drift.json; returns its PromQL expressions (for promtool)."""
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    exprs: list[str] = []
    c.check(dash.get("uid") == "drift-monitor", "dashboard: uid must be drift-monitor")
    variables = {v.get("name"): v for v in (dash.get("templating") or {}).get("list", [])}
    for name in ("monitor", "feature"):
        c.check(name in variables, f"dashboard: template variable `{name}` is missing")

    def var_query(v):
        q = v.get("query")
        return q.get("query", "") if isinstance(q, dict) else str(q or "")

    if "monitor" in variables:
        c.check("label_values(drift_features_drifting" in var_query(variables["monitor"]).replace(" ", ""),
                "dashboard: `monitor` must come from label_values(drift_features_drifting, monitor)")
    if "feature" in variables:
        fv = variables["feature"]
        c.check("drift_feature_p_value" in var_query(fv) and "$monitor" in var_query(fv),
                "dashboard: `feature` must come from label_values(drift_feature_p_value{monitor=\"$monitor\"}, feature)")
        c.check(fv.get("multi") is True and fv.get("includeAll") is True,
                "dashboard: `feature` must be multi-value with All")

    ids = set()
    panels = list(iter_panels(dash.get("panels")))
    c.check(len(panels) > 0, "dashboard: no panels")
    for p in panels:
        title = p.get("title", "?")
        pid = p.get("id")
        c.check(pid not in ids, f"dashboard: duplicate panel id {pid} ({title})")
        ids.add(pid)
        c.check(isinstance(p.get("gridPos"), dict), f"dashboard: panel `{title}` has no gridPos")
        if p.get("type") == "row":
            continue
        targets = p.get("targets") or []
        if not c.check(len(targets) > 0, f"dashboard: panel `{title}` has no targets"):
            continue
        ds = p.get("datasource") or {}
        c.check(ds.get("uid") == "prometheus", f"dashboard: panel `{title}` must use datasource uid prometheus")
        refs = set()
        for t in targets:
            expr = (t.get("expr") or "").strip()
            if c.check(bool(expr), f"dashboard: panel `{title}` target {t.get('refId')} has no expr"):
                exprs.append(expr)
            c.check(t.get("refId") not in refs, f"dashboard: panel `{title}` repeats refId {t.get('refId')}")
            refs.add(t.get("refId"))
            tds = t.get("datasource")
            if tds is not None:
                c.check(tds.get("uid") == "prometheus",
                        f"dashboard: panel `{title}` target {t.get('refId')} must use datasource uid prometheus")
    # Panels the operators rely on.
    all_exprs = "\n".join(exprs)
    for needle in ("drift_features_drifting", "drift_share", "drift_last_detected_timestamp_seconds",
                   "drift_feature_p_value", "drift_monitor_alpha", "drift_feature_drifted",
                   "drift_detections_total", "drift_rows_ingested_total", "http_request_duration_seconds_bucket",
                   "drift_jobs_pending", "drift_worker_jobs_total", "drift_jobs_dead_letter_total",
                   "drift_redis_up"):
        c.check(needle in all_exprs, f"dashboard: no panel queries {needle}")
    for p in panels:
        for t in p.get("targets") or []:
            if "drift_last_detected_timestamp_seconds" in (t.get("expr") or ""):
                unit = ((p.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
                c.check(unit == "dateTimeFromNow",
                        "dashboard: last drift time panel must use unit dateTimeFromNow")
        if p.get("type") == "timeseries" and any("drift_feature_p_value" in (t.get("expr") or "")
                                                 and "drift_monitor_alpha" not in (t.get("expr") or "")
                                                 for t in p.get("targets") or []):
            custom = ((p.get("fieldConfig") or {}).get("defaults") or {}).get("custom") or {}
            c.check((custom.get("scaleDistribution") or {}).get("type") == "log",
                    f"dashboard: p-value panel `{p.get('title')}` must use a log scale")
    return exprs


def promql_for_promtool(expr: str) -> str:
    """Replaces Grafana variables so promtool can parse the expression."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m").replace("$__range", "5m")
    return re.sub(r"\$\{?(\w+)\}?", r"\1", expr)


def main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="*", metavar="compose|dashboard",
                    help="which checks to run (default: both)")
    ap.add_argument("--compose", default=os.path.join(ROOT, "docker-compose.yml"),
                    help="compose file to check (default: %(default)s)")
    ap.add_argument("--dashboard", default=os.path.join(ROOT, "grafana", "dashboards", "drift.json"),
                    help="dashboard JSON to check (default: %(default)s)")
    ap.add_argument("--emit-rules", metavar="FILE",
                    help="write the dashboard's PromQL as recording rules to FILE "
                         "(for `promtool check rules`)")
    args = ap.parse_args(argv[1:])
    what = set(args.what) or {"compose", "dashboard"}
    unknown = what - {"compose", "dashboard"}
    if unknown:
        ap.error(f"unknown check(s): {', '.join(sorted(unknown))}")
    c = Checker()
    if "compose" in what:
        check_compose(c, args.compose)
    if "dashboard" in what:
        exprs = check_dashboard(c, args.dashboard)
        if args.emit_rules:
            # Every dashboard query as a recording rule, so that `promtool check rules`
            # parses its PromQL.
            rules = [{"record": f"dashboard:query_{i}", "expr": promql_for_promtool(e)}
                     for i, e in enumerate(exprs)]
            with open(args.emit_rules, "w", encoding="utf-8") as f:
                yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f)
    for p in c.problems:
        print(f"FAIL {p}")
    if c.problems:
        print(f"check_compose: {len(c.problems)} problem(s)")
        return 1
    print(f"check_compose: OK ({', '.join(sorted(what))})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
