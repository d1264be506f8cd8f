"""The Grafana dashboard (grafana/dashboards/drift.json) and its provisioning: the structure
Grafana needs to load it, the panels operators rely on, and PromQL that Prometheus parses
(checked by promtool, so a typo does not wait for someone to open the dashboard)."""
from __future__ import annotations

import re
import subprocess

import pytest

# Metrics some panel must query: what operators look at first.
NEEDED_METRICS = [
    "drift_features_drifting",
    "drift_share",
    "drift_last_detected_timestamp_seconds",
    "drift_feature_p_value",
    "drift_monitor_alpha",
    "drift_feature_drifted",
    "drift_detections_total",
    "drift_rows_ingested_total",
    "http_request_duration_seconds_bucket",
    "drift_jobs_pending",
    "drift_worker_jobs_total",
    "drift_jobs_dead_letter_total",
    "drift_redis_up",
]


def iter_panels(panels):
    for p in panels or []:
        yield p
        # Collapsed rows keep their panels inside.
        yield from iter_panels(p.get("panels"))


def variables(dash: dict) -> dict:
    return {v.get("name"): v for v in (dash.get("templating") or {}).get("list", [])}


def var_query(v: dict) -> str:
    q = v.get("query")
    return q.get("query", "") if isinstance(q, dict) else str(q or "")


def variable(dash: dict, name: str) -> dict:
    found = variables(dash)
    assert name in found, f"dashboard: template variable `{name}` is missing"
    return found[name]


def query_panels(dash: dict) -> list[dict]:
    """Panels that show data (rows only group others)."""
    return [p for p in iter_panels(dash.get("panels")) if p.get("type") != "row"]


def exprs(dash: dict) -> list[str]:
    return [
        (t.get("expr") or "").strip()
        for p in query_panels(dash)
        for t in p.get("targets") or []
        if (t.get("expr") or "").strip()
    ]


def defaults(panel: dict) -> dict:
    return (panel.get("fieldConfig") or {}).get("defaults") or {}


def promql_for_promtool(expr: str) -> str:
    """Replaces Grafana variables so promtool can parse the expression."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m").replace("$__range", "5m")
    return re.sub(r"\$\{?(\w+)\}?", r"\1", expr)


# ---- dashboard identity and variables -----------------------------------------------------

def test_dashboard_uid(dashboard):
    assert dashboard.get("uid") == "drift-monitor", (
        f"dashboard: uid must be drift-monitor (is {dashboard.get('uid')!r})"
    )


@pytest.mark.parametrize("name", ["monitor", "feature"])
def test_template_variable_exists(dashboard, name):
    variable(dashboard, name)


def test_monitor_variable_lists_monitors(dashboard):
    q = var_query(variable(dashboard, "monitor")).replace(" ", "")
    assert "label_values(drift_features_drifting" in q, (
        "dashboard: `monitor` must come from label_values(drift_features_drifting, monitor)"
    )


def test_feature_variable_lists_the_monitors_features(dashboard):
    q = var_query(variable(dashboard, "feature"))
    assert "drift_feature_p_value" in q and "$monitor" in q, (
        'dashboard: `feature` must come from label_values(drift_feature_p_value{monitor="$monitor"}, feature)'
    )


def test_feature_variable_is_multi_value_with_all(dashboard):
    fv = variable(dashboard, "feature")
    assert fv.get("multi") is True and fv.get("includeAll") is True, (
        "dashboard: `feature` must be multi-value with All"
    )


# ---- panels -------------------------------------------------------------------------------

def test_dashboard_has_panels(dashboard):
    assert list(iter_panels(dashboard.get("panels"))), "dashboard: no panels"


def test_panel_ids_are_unique(dashboard):
    seen, dupes = set(), []
    for p in iter_panels(dashboard.get("panels")):
        pid = p.get("id")
        if pid in seen:
            dupes.append(f"{pid} ({p.get('title', '?')})")
        seen.add(pid)
    assert not dupes, f"dashboard: duplicate panel id(s): {', '.join(dupes)}"


def test_every_panel_has_a_grid_position(dashboard):
    missing = [p.get("title", "?") for p in iter_panels(dashboard.get("panels"))
               if not isinstance(p.get("gridPos"), dict)]
    assert not missing, f"dashboard: panel(s) without gridPos: {missing}"


def test_every_panel_has_targets(dashboard):
    empty = [p.get("title", "?") for p in query_panels(dashboard) if not p.get("targets")]
    assert not empty, f"dashboard: panel(s) without targets: {empty}"


def test_every_panel_uses_the_prometheus_datasource(dashboard):
    wrong = [p.get("title", "?") for p in query_panels(dashboard)
             if p.get("targets") and (p.get("datasource") or {}).get("uid") != "prometheus"]
    assert not wrong, f"dashboard: panel(s) not on datasource uid prometheus: {wrong}"


def test_every_target_has_an_expression(dashboard):
    empty = [f"`{p.get('title', '?')}` target {t.get('refId')}"
             for p in query_panels(dashboard) for t in p.get("targets") or []
             if not (t.get("expr") or "").strip()]
    assert not empty, f"dashboard: target(s) without expr: {'; '.join(empty)}"


def test_target_ref_ids_are_unique_per_panel(dashboard):
    dupes = []
    for p in query_panels(dashboard):
        refs = set()
        for t in p.get("targets") or []:
            if t.get("refId") in refs:
                dupes.append(f"`{p.get('title', '?')}` repeats refId {t.get('refId')}")
            refs.add(t.get("refId"))
    assert not dupes, f"dashboard: {'; '.join(dupes)}"


def test_targets_with_a_datasource_use_prometheus(dashboard):
    wrong = [f"`{p.get('title', '?')}` target {t.get('refId')}"
             for p in query_panels(dashboard) for t in p.get("targets") or []
             if t.get("datasource") is not None and t["datasource"].get("uid") != "prometheus"]
    assert not wrong, f"dashboard: target(s) not on datasource uid prometheus: {'; '.join(wrong)}"


@pytest.mark.parametrize("metric", NEEDED_METRICS)
def test_some_panel_queries(dashboard, metric):
    assert metric in "\n".join(exprs(dashboard)), f"dashboard: no panel queries {metric}"


def test_last_drift_time_is_shown_relative_to_now(dashboard):
    wrong = [p.get("title", "?") for p in query_panels(dashboard)
             if any("drift_last_detected_timestamp_seconds" in (t.get("expr") or "")
                    for t in p.get("targets") or [])
             and defaults(p).get("unit") != "dateTimeFromNow"]
    assert not wrong, (
        f"dashboard: last drift time panel(s) {wrong} must use unit dateTimeFromNow"
    )


def test_p_value_time_series_use_a_log_scale(dashboard):
    wrong = []
    for p in query_panels(dashboard):
        shows_p_values = any("drift_feature_p_value" in (t.get("expr") or "")
                             and "drift_monitor_alpha" not in (t.get("expr") or "")
                             for t in p.get("targets") or [])
        if p.get("type") == "timeseries" and shows_p_values:
            custom = defaults(p).get("custom") or {}
            if (custom.get("scaleDistribution") or {}).get("type") != "log":
                wrong.append(p.get("title"))
    assert not wrong, f"dashboard: p-value panel(s) {wrong} must use a log scale"


def test_dashboard_promql_parses(dashboard, require_tool, yaml_lib, tmp_path):
    queries = [(p.get("title", "?"), t.get("refId"), (t.get("expr") or "").strip())
               for p in query_panels(dashboard) for t in p.get("targets") or []
               if (t.get("expr") or "").strip()]
    assert queries, "dashboard: no PromQL expressions to check"
    # Every dashboard query as a recording rule, so that `promtool check rules` parses it.
    rules = [{"record": f"dashboard:query_{i}", "expr": promql_for_promtool(e)}
             for i, (_, _, e) in enumerate(queries)]
    path = tmp_path / "dashboard-queries.yml"
    with open(path, "w", encoding="utf-8") as f:
        yaml_lib.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f)
    proc = subprocess.run([require_tool("promtool"), "check", "rules", str(path)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    if proc.returncode != 0:
        # promtool names the generated rule; name the panel and the query instead.
        bad = sorted({int(i) for i in re.findall(r"dashboard:query_(\d+)", proc.stdout)})
        where = "\n".join(f"    panel `{queries[i][0]}` target {queries[i][1]}: {queries[i][2]}"
                          for i in bad)
        output = "\n".join("    | " + line for line in proc.stdout.rstrip().splitlines())
        pytest.fail(f"dashboard: PromQL that Prometheus cannot parse:\n{where}\n"
                    f"promtool check rules said:\n{output}", pytrace=False)


# ---- provisioning -------------------------------------------------------------------------

def test_prometheus_datasource_is_provisioned(root, load_yaml):
    ds = load_yaml(root / "grafana" / "provisioning" / "datasources" / "prometheus.yml") or {}
    uids = [d.get("uid") for d in ds.get("datasources", [])]
    assert "prometheus" in uids, f"grafana provisioning: datasource uid prometheus missing: {uids}"


def test_prometheus_datasource_points_at_the_compose_service(root, load_yaml):
    ds = load_yaml(root / "grafana" / "provisioning" / "datasources" / "prometheus.yml") or {}
    found = [d for d in ds.get("datasources", []) if d.get("uid") == "prometheus"]
    assert found, "grafana provisioning: datasource uid prometheus missing"
    url = found[0].get("url")
    assert url == "http://prometheus:9090", (
        f"grafana provisioning: datasource url is {url}, not http://prometheus:9090"
    )


def test_dashboards_are_provisioned_from_the_mounted_directory(root, load_yaml):
    prov = load_yaml(root / "grafana" / "provisioning" / "dashboards" / "dashboards.yml") or {}
    paths = [p.get("options", {}).get("path") for p in prov.get("providers", [])]
    assert "/etc/grafana/dashboards" in paths, (
        f"grafana provisioning: no dashboard provider reads /etc/grafana/dashboards: {paths}"
    )
