"""The Grafana dashboard (grafana/dashboards/drift.json) and its provisioning: the structure
Grafana needs to load it, the panels operators rely on, PromQL that Prometheus parses, and
PromQL that returns data from the series the drift monitor publishes (both checked by
promtool, so a typo does not wait for someone to open the dashboard)."""
from __future__ import annotations

import json
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
    # The alarm (rule ert, alarm episodes).
    "drift_feature_threshold",
    "drift_feature_alarm",
    "drift_alarm_episodes_total",
    "drift_monitor_ert_rounds",
    "drift_evaluation_rounds_total",
    # Mixed feature kinds: missing values, unseen categories, effect sizes.
    "drift_feature_info",
    "drift_feature_missing_share",
    "drift_feature_unseen_share",
    "drift_feature_effect",
    "drift_feature_signal_fired",
]

# Sample series for evaluating every dashboard query (test_dashboard_queries_return_data),
# in promtool's input_series notation, sampled every 15 s for 10 minutes, with the labels
# Prometheus adds when scraping. They stand for what the exporter, the API replicas and the
# workers publish (../shared/ARCHITECTURE.md, "Metrics"); a panel on a metric missing here
# returns no data and fails the test: add the metric here when the components publish it.
# The end-to-end counterpart, against the real stack, is tests/stack (its last test).
SAMPLE_MONITOR = "breast_cancer"
SAMPLE_FEATURES = ["mean_radius", "mean_texture"]
SAMPLE_STEPS = 40  # 41 samples: 0s .. 10m
_EXPORTER = 'job="exporter",instance="exporter:9102"'
_MONITOR_SERIES = {
    "drift_features_drifting": "1x{n}",
    "drift_share": "0.5x{n}",
    "drift_dataset_drifted": "1x{n}",
    "drift_last_detected_timestamp_seconds": "1700000000x{n}",
    "drift_monitor_alpha": "0.05x{n}",
    "drift_monitor_ert_rounds": "10000x{n}",
    "drift_evaluation_rounds_total": "0+1x{n}",
    "drift_rows_ingested_total": "0+100x{n}",
    "drift_window_rows": "500x{n}",
    "drift_jobs_pending": "0x{n}",
    "drift_jobs_dead_letter_total": "0x{n}",
    "drift_jobs_superseded_total": "0+5x{n}",
}
_FEATURE_SERIES = {
    "drift_feature_p_value": "0.2x{n}",
    "drift_feature_p_value_threshold": "0.0017x{n}",
    "drift_feature_statistic": "0.08x{n}",
    "drift_feature_threshold": "0.12x{n}",
    "drift_feature_drifted": "0x{n}",
    "drift_feature_alarm": "0x{n}",
    "drift_feature_last_evaluated_timestamp_seconds": "1700000000+15x{n}",
    "drift_evaluations_total": "0+1x{n}",
    "drift_detections_total": "0x{n}",
    "drift_alarm_episodes_total": "0x{n}",
    "drift_feature_result_age_seconds": "0.4x{n}",
    "drift_feature_result_lag_rows": "60x{n}",
    "drift_feature_missing_share": "0.05x{n}",
    "drift_feature_reference_missing_share": "0.04x{n}",
    "drift_feature_unseen_share": "0.01x{n}",
}
# Feature series with one more label: (metric, label, values of the label, samples).
_LABELLED_FEATURE_SERIES = [
    ("drift_feature_info", "kind", ["numeric"], "1x{n}"),
    ("drift_feature_effect", "measure", ["wasserstein_normed", "psi", "jensen_shannon"], "0.03x{n}"),
    ("drift_feature_signal_statistic", "signal", ["distribution", "missing"], "0.02x{n}"),
    ("drift_feature_signal_threshold", "signal", ["distribution", "missing"], "0.15x{n}"),
    ("drift_feature_signal_fired", "signal", ["distribution", "missing"], "0x{n}"),
]
_OTHER_SERIES = [
    (f"drift_redis_up{{{_EXPORTER}}}", "1x{n}"),
    (f'up{{{_EXPORTER}}}', "1x{n}"),
    ('up{job="api",instance="127.0.0.1:18001"}', "1x{n}"),
    ('up{job="worker",instance="127.0.0.1:19111"}', "1x{n}"),
    ('http_requests_total{job="api",instance="127.0.0.1:18001",route="/v1/monitors/{monitor}/rows",'
     'method="POST",status="202"}', "0+10x{n}"),
    ('drift_rows_dropped_total{job="api",instance="127.0.0.1:18001",reason="redis_unavailable"}',
     "0+1x{n}"),
    ('drift_worker_jobs_total{job="worker",instance="127.0.0.1:19111",outcome="evaluated"}',
     "0+30x{n}"),
] + [
    ('http_request_duration_seconds_bucket{job="api",instance="127.0.0.1:18001",'
     f'route="/v1/monitors/{{monitor}}/rows",method="POST",le="{le}"}}', f"0+{inc}x{{n}}")
    for le, inc in (("0.001", 2), ("0.01", 9), ("0.1", 10), ("+Inf", 10))
] + [
    (f'drift_worker_job_duration_seconds_bucket{{job="worker",instance="127.0.0.1:19111",le="{le}"}}',
     f"0+{inc}x{{n}}")
    for le, inc in (("0.001", 10), ("0.01", 28), ("0.1", 30), ("+Inf", 30))
]


def sample_series() -> list[dict]:
    out = []
    for metric, values in _MONITOR_SERIES.items():
        out.append((f'{metric}{{{_EXPORTER},monitor="{SAMPLE_MONITOR}"}}', values))
    for feature in SAMPLE_FEATURES:
        for metric, values in _FEATURE_SERIES.items():
            out.append((f'{metric}{{{_EXPORTER},monitor="{SAMPLE_MONITOR}",feature="{feature}"}}',
                        values))
        for metric, label, label_values, values in _LABELLED_FEATURE_SERIES:
            for lv in label_values:
                out.append((f'{metric}{{{_EXPORTER},monitor="{SAMPLE_MONITOR}",'
                            f'feature="{feature}",{label}="{lv}"}}', values))
    out += _OTHER_SERIES
    return [{"series": s, "values": v.format(n=SAMPLE_STEPS)} for s, v in out]


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


def promql_with_values(expr: str, feature: str) -> str:
    """Replaces Grafana variables with the values a user would select (the sample monitor,
    `feature` as All (its allValue) or one feature) so that the query can be evaluated."""
    values = {"monitor": SAMPLE_MONITOR, "feature": feature, "__rate_interval": "1m",
              "__interval": "15s", "__range_s": "300", "__range": "5m"}
    for k, v in values.items():
        expr = re.sub(r"\$\{" + k + r"(:[a-z]+)?\}|\[\[" + k + r"\]\]|\$" + k + r"\b", v, expr)
    left = re.findall(r"\$\{?\w+", expr)
    assert not left, f"dashboard: unknown variable(s) {left} in {expr}"
    return expr


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


def test_dashboard_queries_return_data(dashboard, require_tool, yaml_lib, tmp_path):
    """Every query, with `feature` at All and at one feature, evaluated by Prometheus's engine
    (promtool test rules) on SAMPLE_SERIES, must return at least one finite sample: a
    misspelt metric or label, a join that matches nothing (`on (monitor)` across series
    without that label) or a division by zero leaves a panel empty or at NaN/Inf."""
    all_value = variable(dashboard, "feature").get("allValue") or ".+"
    cases = []  # (panel title, refId, expression as evaluated)
    for p in query_panels(dashboard):
        for t in p.get("targets") or []:
            raw = (t.get("expr") or "").strip()
            if not raw:
                continue
            for feature in (all_value, SAMPLE_FEATURES[0]):
                expr = promql_with_values(raw, feature)
                if expr not in (c[2] for c in cases):
                    cases.append((p.get("title", "?"), t.get("refId"), expr))
    assert cases, "dashboard: no PromQL expressions to evaluate"
    eval_time = f"{SAMPLE_STEPS * 15}s"
    # absent(q) is empty exactly when q has a sample; comparing with -Inf and +Inf keeps
    # the finite ones only (NaN compares false).
    tests = [{"expr": f"absent(({expr}) > -Inf < +Inf)", "eval_time": eval_time,
              "exp_samples": []} for _, _, expr in cases]
    (tmp_path / "no-rules.yml").write_text("groups: []\n", encoding="utf-8")
    path = tmp_path / "dashboard-data.yml"
    with open(path, "w", encoding="utf-8") as f:
        yaml_lib.safe_dump({
            "rule_files": ["no-rules.yml"],
            "evaluation_interval": "15s",
            "tests": [{"interval": "15s", "input_series": sample_series(),
                       "promql_expr_test": tests}],
        }, f, sort_keys=False)
    proc = subprocess.run([require_tool("promtool"), "test", "rules", str(path)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    if proc.returncode != 0:
        # promtool quotes each failing expression (Go %q, as JSON for these ASCII strings).
        empty = [f"    panel `{title}` target {ref}: {expr}" for title, ref, expr in cases
                 if json.dumps(f"absent(({expr}) > -Inf < +Inf)") in proc.stdout]
        output = "\n".join("    | " + line for line in proc.stdout.rstrip().splitlines())
        pytest.fail("dashboard: queries without finite data on the sample series "
                    "(if a component publishes the metric, add its series to the sample series above):\n"
                    + ("\n".join(empty) or "    (see promtool's output)")
                    + f"\npromtool test rules said:\n{output}", pytrace=False)


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
