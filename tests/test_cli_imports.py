"""The CLI imports only what a command needs (behaviour checked in a fresh process, no timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import new_project

# Runs the CLI in-process with the given arguments, then prints the top-level modules loaded.
PROBE = """
import json, runpy, sys
sys.argv = ["session-kit", *json.loads(sys.argv[1])]
try:
    runpy.run_module("session_kit", run_name="__main__")
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def _run(*args: str) -> tuple[int, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))], capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


def test_help_imports_neither_jinja2_nor_yaml() -> None:
    code, modules = _run("--help")
    assert code == 0
    assert "typer" in modules  # the probe did run the CLI
    assert not modules & {"jinja2", "yaml"}


def test_generating_does_not_import_pydantic(tmp_path: Path) -> None:
    # Recent typer versions coerce parameters through pydantic unless the CLI does it itself.
    project = new_project(tmp_path / "p")
    args = ["add", "module", "session", "--yes", "--project-dir", str(project), "--set", "audit=none", "--dry-run"]
    code, modules = _run(*args, "--json")
    assert code == 0
    assert "jinja2" in modules  # it did render
    assert "pydantic" not in modules
