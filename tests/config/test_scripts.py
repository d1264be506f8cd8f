"""The scripts people and the Makefile run directly: they parse, and the ones run by path
are executable (`make demo` runs scripts/demo.sh, `make deps` scripts/install-deps.sh, the
README the benchmarks)."""
from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHELL_SCRIPTS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "scripts").glob("*.sh"))
PYTHON_FILES = ["locustfile.py"] + sorted(
    p.relative_to(ROOT).as_posix() for p in (ROOT / "scripts").glob("*.py"))
RUN_BY_PATH = [
    "scripts/demo.sh",
    "scripts/install-deps.sh",
    "scripts/bench_ingest.sh",
    "scripts/bench_gateway.sh",
]


@pytest.mark.parametrize("script", SHELL_SCRIPTS)
def test_shell_script_parses(script, require_tool, run_tool):
    run_tool([require_tool("bash"), "-n", ROOT / script], f"bash -n {script}")


@pytest.mark.parametrize("script", RUN_BY_PATH)
def test_script_is_executable(script):
    path = ROOT / script
    assert path.is_file(), f"{script} is missing"
    assert os.access(path, os.X_OK), f"{script} is not executable (chmod +x {script})"


@pytest.mark.parametrize("name", PYTHON_FILES)
def test_python_file_parses(name):
    path = ROOT / name
    try:
        ast.parse(path.read_text(encoding="utf-8"), str(path))
    except SyntaxError as e:
        pytest.fail(f"python3 cannot parse {name}: {e}", pytrace=False)
