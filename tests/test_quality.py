"""Lint and types are part of the tests: ruff and mypy --strict on the kit itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


RUFF_RULES = "E,F,W,I,UP,B,SIM,RUF,C4,PT,RET"
# FastAPI projects get the same gates in test_end_to_end.py and test_runtime_matrix.py.
FRAMEWORK_VARIANTS = {
    "starlette": ["management_routes=true", "stores=memory,file,sql,redis"],
    "litestar": ["management_routes=true", "token_format=jwt", "audit=metrics"],
    # The synchronous core: every store, the management routes, the metrics sink.
    "flask": ["management_routes=true", "stores=memory,file,sql,redis", "audit=metrics"],
}


@pytest.mark.slow
@pytest.mark.parametrize("framework", sorted(FRAMEWORK_VARIANTS))
def test_a_generated_project_is_clean_typed_and_passes_its_tests(tmp_path: Path, framework: str) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "__init__.py").write_text("")
    sets = [arg for assignment in FRAMEWORK_VARIANTS[framework] for arg in ("--set", assignment)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSION_", "PYTHONPATH"))}
    generated = _run(
        sys.executable, "-m", "session_kit", "add", "module", "session", "--yes", "--framework", framework,
        "--package", "svc.sessions", "--project-dir", str(tmp_path), *sets, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert f"'{framework}>=" in generated.stdout

    targets = ["svc", "tests"]
    lint = _run(sys.executable, "-m", "ruff", "check", "--isolated", "--target-version", "py311",
                "--select", RUFF_RULES, *targets, cwd=tmp_path, env=env)  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run(sys.executable, "-m", "ruff", "format", "--isolated", "--check", *targets, cwd=tmp_path, env=env)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    types = _run(sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull,
                 *targets, cwd=tmp_path, env=env)  # fmt: skip
    assert types.returncode == 0, types.stdout + types.stderr
    tests = _run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/sessions",
                 cwd=tmp_path, env=env)  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout
