"""The timeline of tests/compose (image build, up, healthy, each fault and its recovery),
printed at the end of the run whatever its outcome, and written to
$DRIFT_COMPOSE_TIMELINE (default: compose-timeline.json in the system's temp dir)."""
from __future__ import annotations

import json
import os
import tempfile
import time

import pytest


class Timeline:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.entries: list[tuple[str, float, float]] = []  # (what, seconds, at)

    def add(self, what: str, seconds: float) -> None:
        self.entries.append((what, seconds, time.monotonic() - self.started))

    def lines(self) -> list[str]:
        out = [f"{'at (s)':>8}  {'took (s)':>9}  what"]
        for what, seconds, at in self.entries:
            out.append(f"{at:8.1f}  {seconds:9.1f}  {what}")
        out.append(f"{time.monotonic() - self.started:8.1f}  {'':>9}  end")
        return out


@pytest.fixture(scope="session")
def timeline(request) -> Timeline:
    t = Timeline()
    request.config._drift_compose_timeline = t
    return t


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each test's report on its item (rep_call), for fixtures that act on failures."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    t = getattr(config, "_drift_compose_timeline", None)
    if t is None or not t.entries:
        return
    terminalreporter.section("compose timeline")
    for line in t.lines():
        terminalreporter.write_line(line)
    path = os.environ.get("DRIFT_COMPOSE_TIMELINE") or os.path.join(
        tempfile.gettempdir(), "compose-timeline.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump([{"what": w, "seconds": round(s, 2), "at": round(a, 2)}
                   for w, s, a in t.entries], f, indent=1)
    terminalreporter.write_line(f"(written to {path})")
