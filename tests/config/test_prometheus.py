"""Prometheus configs and alerting rules, validated by promtool: the compose config
(prometheus/prometheus.yml), the local template the demo and the stack test render
(prometheus/local.yml.template), the alerts and their unit tests."""
from __future__ import annotations

import re


def test_compose_config_is_valid(root, require_tool, run_tool):
    # The compose config names alerts.yml relative to itself: it is checked in place.
    run_tool([require_tool("promtool"), "check", "config", root / "prometheus" / "prometheus.yml"],
             "promtool check config prometheus/prometheus.yml")


def test_alert_rules_are_valid(root, require_tool, run_tool):
    run_tool([require_tool("promtool"), "check", "rules", root / "prometheus" / "alerts.yml"],
             "promtool check rules prometheus/alerts.yml")


def test_alert_rules_pass_their_unit_tests(root, require_tool, run_tool):
    run_tool([require_tool("promtool"), "test", "rules", root / "prometheus" / "alerts_test.yml"],
             "promtool test rules prometheus/alerts_test.yml")


def alert_rules(root, load_yaml) -> dict:
    doc = load_yaml(root / "prometheus" / "alerts.yml") or {}
    return {r["alert"]: r for g in doc.get("groups") or [] for r in g.get("rules") or []
            if "alert" in r}


def test_every_alert_is_unit_tested_firing_and_silent(root, load_yaml):
    doc = load_yaml(root / "prometheus" / "alerts_test.yml") or {}
    firing, silent = set(), set()
    for t in doc.get("tests") or []:
        for a in t.get("alert_rule_test") or []:
            (firing if a.get("exp_alerts") else silent).add(a.get("alertname"))
    rules = alert_rules(root, load_yaml)
    assert rules, "prometheus/alerts.yml: no alert rules"
    missing = []
    for name in rules:
        untested = [what for what, seen in (("firing", firing), ("silent", silent)) if name not in seen]
        if untested:
            missing.append(f"{name} (never {' nor '.join(untested)})")
    assert not missing, f"prometheus/alerts_test.yml: alert(s) not tested: {missing}"


def test_drift_alert_follows_alarm_episodes(root, load_yaml):
    # One firing per alarm episode: the alert is the exporter's drift_feature_alarm (which
    # rises once per episode), not the per-evaluation flag drift_feature_drifted, and fires
    # at once (with a `for`, an episode whose alarm ends sooner would not alert at all).
    rule = alert_rules(root, load_yaml).get("DriftDetected")
    assert rule, "prometheus/alerts.yml: no DriftDetected alert"
    expr = rule.get("expr", "")
    assert "drift_feature_alarm" in expr and "drift_feature_drifted" not in expr, (
        f"DriftDetected must be based on drift_feature_alarm, not drift_feature_drifted: {expr}"
    )
    assert rule.get("for", "0m") in ("0m", "0s", "0"), (
        f"DriftDetected must fire at the episode's start (for: 0m), has for: {rule.get('for')}"
    )


def render_local(root, render, tmp_path) -> tuple[str, object]:
    out = tmp_path / "prometheus-local.yml"
    text = render(root / "prometheus" / "local.yml.template", {
        "EXPORTER": '["127.0.0.1:19102"]',
        "APIS": '["127.0.0.1:18001", "127.0.0.1:18002"]',
        "WORKERS": '["127.0.0.1:19111", "127.0.0.1:19112"]',
        "RULES": str(root / "prometheus" / "alerts.yml"),
    }, out)
    return text, out


def test_local_template_has_no_unknown_placeholders(root, render, tmp_path):
    text, _ = render_local(root, render, tmp_path)
    left = sorted(set(re.findall(r"@[A-Z_]*@", text)))
    assert not left, f"prometheus/local.yml.template: unknown placeholder(s): {' '.join(left)}"


def test_local_template_renders_to_a_valid_config(root, render, require_tool, run_tool, tmp_path):
    _, out = render_local(root, render, tmp_path)
    run_tool([require_tool("promtool"), "check", "config", out],
             "promtool check config prometheus/local.yml.template (rendered)")
