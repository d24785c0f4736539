"""The generated store code: option matrix quality gates, requirements, open_store, migration."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from services import MARIADB_URL, POSTGRES_URL, REDIS_URL, listening, services_required
from store_suite import ALL_STORES, cli, generate_project, imported

PACKAGE = "matrixapp.sessions"
RUFF_RULES = "E,F,W,I,UP,B,SIM,RUF,C4,PT,RET"
# With every store generated, the generated "store not generated" test has nothing to refuse.
EXPECTED_SKIP = "every store is generated in this project"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("matrix")
    generate_project(root, stores=ALL_STORES, package=PACKAGE)
    return root


@pytest.fixture(scope="module")
def sessions(project: Path) -> Iterator[ModuleType]:
    with imported(project, PACKAGE) as package:
        yield package


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_every_store_passes_ruff_format_and_mypy_strict(project: Path) -> None:
    targets = ["matrixapp", "tests"]
    lint = _run(sys.executable, "-m", "ruff", "check", "--isolated", "--target-version", "py311",
                "--select", RUFF_RULES, *targets, cwd=project)  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run(sys.executable, "-m", "ruff", "format", "--isolated", "--check", *targets, cwd=project)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    types = _run(sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull,
                 *targets, cwd=project)  # fmt: skip
    assert types.returncode == 0, types.stdout + types.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "sql_url"), [("PostgreSQL", POSTGRES_URL), ("MariaDB", MARIADB_URL)], ids=["postgresql", "mariadb"]
)
def test_the_generated_store_tests_pass_against_the_servers(project: Path, name: str, sql_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("SESSION_")}
    missing = [n for n, url in (("Redis", REDIS_URL), (name, sql_url)) if not listening(url)]
    if missing and services_required():
        pytest.fail(f"{', '.join(missing)} not reachable (SESSION_KIT_REQUIRE_SERVICES=1)")
    if "Redis" not in missing:
        env["SESSION_TEST_REDIS_URL"] = REDIS_URL
    if name not in missing:
        env["SESSION_TEST_SQL_URL"] = sql_url
    result = _run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests/sessions",
                  cwd=project, env=env)  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    if not missing:
        skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
        assert all(EXPECTED_SKIP in line for line in skips), result.stdout[-2000:]


@pytest.mark.parametrize(
    ("stores", "present", "absent"),
    [
        ("memory", [], ["redis>=", "sqlalchemy>=", "aiosqlite"]),
        ("memory,redis", ["redis>="], ["sqlalchemy>="]),
        ("file,sql", ["sqlalchemy>=", "greenlet>=", "aiosqlite>=", "alembic>="], ["redis>="]),
    ],
)
def test_the_printed_requirements_follow_the_store_choice(
    tmp_path: Path, stores: str, present: list[str], absent: list[str]
) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    result = cli("add", "module", "session", "--yes", "--dry-run", "--project-dir", str(tmp_path),
                 "--set", f"stores={stores}", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if line.strip().startswith("pip install"))
    for requirement in present:
        assert requirement in line
    for requirement in absent:
        assert requirement not in line
    for module in ("file", "sql", "redis"):
        assert (f"stores/{module}.py" in result.stdout) == (module in stores.split(","))


def test_open_store_picks_the_store_by_url_and_never_falls_back(sessions: ModuleType, tmp_path: Path) -> None:
    error = sessions.SessionConfigurationError
    assert type(sessions.open_store("memory://?max_sessions=7")).__name__ == "MemoryStore"
    assert type(sessions.open_store(f"file://{tmp_path}")).__name__ == "FileStore"
    assert type(sessions.open_store(f"sqlite+aiosqlite:///{tmp_path}/s.db")).__name__ == "SQLStore"
    assert type(sessions.open_store("redis://127.0.0.1:1/0?prefix=x&timeout=0.5")).__name__ == "RedisStore"
    cluster = sessions.open_store("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/?prefix=app")
    assert type(cluster.client).__name__ == "RedisCluster"
    assert cluster.prefix == "app"
    for url, words in (
        ("mongodb://db/app", "not a known session store"),
        ("postgresql://u:hunter2@db/app", "postgresql+asyncpg"),
        ("sqlite:///x.db", "sqlite+aiosqlite"),
        ("no-scheme", "no scheme"),
        ("redis://:hunter2@h/0?prefix=a{b}", "prefix"),
        ("postgresql+asyncpg://u:hunter2@db/app?timeout=-1", "timeout"),
    ):
        with pytest.raises(error) as caught:
            sessions.open_store(url)
        assert words in caught.value.message
        assert "hunter2" not in caught.value.message


def test_a_store_that_was_not_generated_names_the_command_to_add_it(tmp_path: Path) -> None:
    generate_project(tmp_path, stores="redis", package="redisonly.sessions")
    with imported(tmp_path, "redisonly.sessions") as sessions:
        for url, store in (("memory://", "memory"), ("sqlite+aiosqlite:///x.db", "sql"), ("file:///x", "file")):
            with pytest.raises(sessions.SessionConfigurationError) as caught:
                sessions.open_store(url)
            assert f"session-kit upgrade --set stores=redis,{store}" in caught.value.message
        assert not (tmp_path / "redisonly" / "sessions" / "stores" / "sql.py").exists()


def test_an_app_without_the_redis_package_still_runs(project: Path) -> None:
    script = (
        "import sys\n"
        "sys.modules['redis'] = None  # as if redis were not installed\n"
        f"from {PACKAGE} import SessionConfigurationError, open_store\n"
        "open_store('memory://')\n"
        "try:\n"
        "    open_store('redis://localhost:6379/0')\n"
        "except SessionConfigurationError as exc:\n"
        "    print(exc.message)\n"
    )
    result = _run(sys.executable, "-c", script, cwd=project)
    assert result.returncode == 0, result.stderr
    assert "pip install redis" in result.stdout


def test_the_alembic_migration_creates_exactly_the_store_table(sessions: ModuleType, tmp_path: Path) -> None:
    import importlib

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from sqlalchemy import create_engine, inspect

    migration = importlib.import_module(f"{PACKAGE}.stores.sql_migration")
    sql = importlib.import_module(f"{PACKAGE}.stores.sql")
    engine = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    try:
        with engine.begin() as connection:
            context = MigrationContext.configure(connection)
            with Operations.context(context):
                migration.upgrade()
            metadata = sql.SQLStore(sql.create_engine("sqlite+aiosqlite://"), table_name=migration.TABLE).metadata
            assert compare_metadata(context, metadata) == []
            indexes = {index["name"] for index in inspect(connection).get_indexes(migration.TABLE)}
            assert indexes == {f"ix_{migration.TABLE}_principal", f"ix_{migration.TABLE}_expires_at"}
            with Operations.context(context):
                migration.downgrade()
            assert not inspect(connection).has_table(migration.TABLE)
    finally:
        engine.dispose()
