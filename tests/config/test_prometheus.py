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
