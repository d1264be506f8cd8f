"""Shared fixtures of the deployment-config tests (tests/config).

These tests read the deployment files of the checkout (docker-compose.yml, nginx/,
prometheus/, grafana/, scripts/) and run the real validators on them (promtool, nginx -t);
no Docker engine, network or running service is needed.

A missing tool or Python module fails the test that needs it, with the command that
installs it: a check that silently does not run would let a broken config through.

    python3 -m pytest -q tests/config            (`make check-config`; part of `make test`)

The helpers are fixtures rather than importable functions so that the test modules never
import `conftest` by name (which breaks once another test directory has one).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    yaml = None

ROOT = Path(__file__).resolve().parents[2]

# Debian package of each external tool (scripts/install-deps.sh installs the first two).
PACKAGES = {"promtool": "prometheus", "nginx": "nginx-light", "bash": "bash"}


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None and name == "nginx" and os.access("/usr/sbin/nginx", os.X_OK):
        # Debian installs nginx in /usr/sbin, which is not on every user's PATH.
        path = "/usr/sbin/nginx"
    if path is None:
        pkg = PACKAGES.get(name, name)
        pytest.fail(
            f"`{name}` is not installed; install it with: "
            f"apt-get update && apt-get install -y {pkg}   (or run scripts/install-deps.sh)",
            pytrace=False,
        )
    return path


def _run_tool(args: list, what: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        output = "\n".join("    | " + line for line in proc.stdout.rstrip().splitlines())
        pytest.fail(
            f"{what} failed (exit {proc.returncode}):\n"
            f"    $ {' '.join(str(a) for a in args)}\n{output}",
            pytrace=False,
        )
    return proc


def _render(template: Path, values: dict[str, str], out: Path) -> str:
    text = template.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    out.write_text(text, encoding="utf-8")
    return text


@pytest.fixture(scope="session")
def root() -> Path:
    """The checkout: every path the configs name is relative to it."""
    return ROOT


@pytest.fixture(scope="session")
def require_tool() -> Callable[[str], str]:
    """`require_tool(name)`: the tool's path, or a failed test saying how to install it.
    Called in the test body (not a fixture per tool) so that a missing tool is reported
    as that test's failure rather than a setup error."""
    return _require_tool


@pytest.fixture(scope="session")
def yaml_lib():
    if yaml is None:
        pytest.fail(
            "python3 has no PyYAML; install it with: python3 -m pip install pyyaml",
            pytrace=False,
        )
    return yaml


@pytest.fixture(scope="session")
def load_yaml(yaml_lib) -> Callable[[Path], object]:
    def load(path: Path):
        with open(path, encoding="utf-8") as f:
            return yaml_lib.safe_load(f)

    return load


@pytest.fixture(scope="session")
def run_tool() -> Callable[..., subprocess.CompletedProcess]:
    """`run_tool(args, what)`: runs a validator; a non-zero exit fails the test with the
    command line and the tool's own output (what it rejected and where)."""
    return _run_tool


@pytest.fixture(scope="session")
def render() -> Callable[[Path, dict, Path], str]:
    """`render(template, {"NAME": value}, out)`: replaces every @NAME@ placeholder the way
    the scripts' sed calls do, writes `out` and returns its text."""
    return _render


@pytest.fixture(scope="session")
def compose_path(root) -> Path:
    return root / "docker-compose.yml"


@pytest.fixture(scope="session")
def compose(load_yaml, compose_path) -> dict:
    doc = load_yaml(compose_path)
    if not (isinstance(doc, dict) and isinstance(doc.get("services"), dict)):
        pytest.fail(f"{compose_path}: no `services` mapping", pytrace=False)
    return doc


@pytest.fixture(scope="session")
def services(compose) -> dict:
    """Service name -> its mapping (an empty one for a service written as `name:`)."""
    return {name: (svc or {}) for name, svc in compose["services"].items()}


@pytest.fixture(scope="session")
def dashboard(root) -> dict:
    with open(root / "grafana" / "dashboards" / "drift.json", encoding="utf-8") as f:
        return json.load(f)
