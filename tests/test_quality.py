"""Lint and types are part of the tests: ruff and mypy --strict on the kit itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def test_ruff_check_passes() -> None:
    result = _run(sys.executable, "-m", "ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = _run(sys.executable, "-m", "ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_the_package(tmp_path: Path) -> None:
    # The repository root is the `session_kit` package; a link with that name lets mypy
    # see the real module names without installing anything.
    (tmp_path / "session_kit").symlink_to(REPO, target_is_directory=True)
    env = {**os.environ, "MYPYPATH": str(tmp_path)}
    result = _run(
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(REPO / "pyproject.toml"),
        "--cache-dir",
        str(tmp_path / ".mypy_cache"),
        "-p",
        "session_kit",
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout
