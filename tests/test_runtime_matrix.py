"""Option matrix: each variant is generated with the real CLI, then must pass ruff, ruff format,
mypy --strict and its own generated tests, and print the right pip requirements."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RUFF_RULES = "E,F,W,I,UP,B,SIM,RUF,C4,PT,RET"
# (generator options, pip requirements printed, run-time settings the generated tests run under)
VARIANTS: dict[str, tuple[list[str], list[str], dict[str, str]]] = {
    "jwt_header_routes_metrics": (
        ["token_format=jwt", "transport=header", "management_routes=true", "audit=metrics"],
        ["'PyJWT>=2.10.1'", "'cryptography>=42'", "'prometheus-client>=0.20'"],
        {},
    ),
    "sql_audit_no_csrf_limit": (
        ["audit=sql", "csrf=false"],
        ["'sqlalchemy>=2.0' 'greenlet>=3' 'aiosqlite>=0.20'"],
        {"SESSION_MAX_SESSIONS_PER_PRINCIPAL": "5", "SESSION_BEHAVIOR_ON_LIMIT": "reject"},
    ),
    "jwt_cookie_routes_no_audit": (
        ["token_format=jwt", "management_routes=true", "audit=none"],
        ["'PyJWT>=2.10.1'"],
        {"SESSION_BEHAVIOR_ON_LIMIT": "evict_all"},
    ),
}


def _run(
    args: list[str], cwd: Path, timeout: int = 600, settings: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSION_", "PYTHONPATH"))}
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, env={**env, **(settings or {})}, timeout=timeout
    )


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_is_clean_typed_and_tested(tmp_path: Path, variant: str) -> None:
    assignments, requirements, settings = VARIANTS[variant]
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "__init__.py").write_text("")
    sets = [item for assignment in assignments for item in ("--set", assignment)]
    generated = _run(
        [
            sys.executable,
            "-m",
            "session_kit",
            "add",
            "module",
            "session",
            "--yes",
            "--project-dir",
            str(tmp_path),
            "--package",
            "svc.sessions",
            *sets,
        ],
        tmp_path,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    for requirement in requirements:
        assert requirement in generated.stdout
    if "csrf=false" in assignments:
        assert not (tmp_path / "svc" / "sessions" / "csrf.py").exists()
    if "management_routes=true" in assignments:
        assert (tmp_path / "svc" / "sessions" / "routes.py").is_file()

    targets = ["svc", "tests"]
    ruff = [sys.executable, "-m", "ruff"]
    lint = _run([*ruff, "check", "--isolated", "--target-version", "py311", "--select", RUFF_RULES, *targets], tmp_path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run([*ruff, "format", "--isolated", "--check", *targets], tmp_path)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    types = _run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull, *targets], tmp_path
    )
    assert types.returncode == 0, types.stdout + types.stderr
    tests = _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/sessions"], tmp_path, settings=settings
    )
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout
