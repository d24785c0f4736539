"""Framework-aware dependency profiles: Flask's synchronous core needs blocking drivers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import make_kit, replace_once

from session_kit.engine.context import requirements_for
from session_kit.engine.kit import Kit
from session_kit.engine.vet import vet

ASYNC_ONLY = ("greenlet", "aiosqlite", "asyncpg", "asyncmy", "aiomysql")


def _requirements(framework: str, **options: Any) -> list[str]:
    values = {"framework": framework, "stores": ["memory"], "audit": "none", "token_format": "opaque", **options}
    runtime, _ = requirements_for(Kit().manifest, values)
    return runtime


def _names(requirements: list[str]) -> set[str]:
    return {requirement.split(">")[0].split("[")[0].lower() for requirement in requirements}


@pytest.mark.parametrize(("option", "value"), [("stores", ["sql"]), ("audit", "sql")])
def test_flask_gets_blocking_sql_drivers(option: str, value: Any) -> None:
    runtime = _requirements("flask", **{option: value})
    assert "flask>=3.0" in runtime
    assert {"sqlalchemy", "psycopg", "pymysql"} <= _names(runtime)
    assert any(requirement.startswith("psycopg[binary]") for requirement in runtime)
    assert not _names(runtime) & set(ASYNC_ONLY)


def test_flask_redis_uses_redis_py_and_lists_each_requirement_once() -> None:
    runtime = _requirements("flask", stores=["memory", "sql", "redis"], audit="sql")
    assert "redis" in _names(runtime)
    assert len(runtime) == len(set(runtime))


def test_the_async_frameworks_keep_the_async_drivers() -> None:
    runtime = _requirements("fastapi", stores=["sql"])
    assert {"sqlalchemy", "greenlet", "aiosqlite"} <= _names(runtime)
    assert not {"psycopg", "pymysql"} & _names(runtime)


def test_vet_checks_the_framework_profiles(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    manifest = kit.root / "module.yaml"
    manifest.write_text(
        replace_once(
            manifest.read_text(),
            "  framework_options:\n    flask:\n",
            "  framework_options:\n    flask:\n"
            "      colour:\n        blue: []\n"
            "      token_format:\n        tape: []\n",
        )
    )
    problems = vet(Kit(kit.root)).problems
    where = "module.yaml: dependencies.framework_options.flask"
    assert f"{where}.colour: no such option in config/base.yaml" in problems
    assert f"{where}.token_format.tape: not a choice of token_format" in problems


def test_vet_passes_the_real_profiles() -> None:
    assert "dependency profiles cover every choice" in vet(Kit()).passed
