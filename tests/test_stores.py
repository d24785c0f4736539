"""Every generated store passes one conformance suite, on the real servers of this machine.

memory, file, SQLite, PostgreSQL, MariaDB and Redis; each server-backed run uses its own
table or key prefix (random suffix) and removes it afterwards. A missing server skips its
runs with the reason, or fails them when SESSION_KIT_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from services import MARIADB_URL, POSTGRES_URL, REDIS_URL, require_server
from store_suite import StoreSuite, Subject, dumps, generate_project, imported


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stores")
    generate_project(root)
    return root


@pytest.fixture(scope="module")
def sessions(project: Path) -> Iterator[ModuleType]:
    with imported(project) as package:
        yield package


async def sql_subject(name: str, sessions: ModuleType, url: str, clock: Any) -> AsyncIterator[Subject]:
    from sqlalchemy import text

    sql = importlib_module(sessions, "stores.sql")
    store = sql.SQLStore(sql.create_engine(url), table_name=f"sk_test_{secrets.token_hex(6)}", clock=clock)
    await store.create_tables()

    async def raw_dump() -> str:
        async with store.engine.connect() as connection:
            rows = (await connection.execute(store.table.select())).all()
        return dumps([list(row) for row in rows])

    async def corrupt(session_id: str) -> None:
        async with store.engine.begin() as connection:
            await connection.execute(
                text(f"UPDATE {store.table.name} SET payload = :bad WHERE session_id = :id"),
                {"bad": '{"format": 1, "data": "not a dict"}', "id": session_id},
            )

    try:
        yield Subject(name, store, raw_dump, corrupt)
    finally:
        await store.drop_tables()
        await store.close()


def importlib_module(sessions: ModuleType, name: str) -> Any:
    import importlib

    return importlib.import_module(f"{sessions.__name__}.{name}")


async def redis_subject(name: str, sessions: ModuleType, url: str, clock: Any) -> AsyncIterator[Subject]:
    redis_module = importlib_module(sessions, "stores.redis")
    separator = "&" if "?" in url else "?"
    store = redis_module.RedisStore.from_url(
        f"{url}{separator}prefix=sktest{secrets.token_hex(6)}", clock=clock, idle_timeout=timedelta(minutes=30)
    )

    async def raw_dump() -> str:
        return dumps(await store.dump())

    async def corrupt(session_id: str) -> None:
        await store.client.hset(store._session_key(session_id), "r", "[not json")

    try:
        yield Subject(name, store, raw_dump, corrupt)
    finally:
        await store.delete_all()
        await store.close()


STORES = ["memory", "file", "sqlite", "postgresql", "mariadb", "redis"]


@pytest.fixture(params=STORES)
async def store(
    request: pytest.FixtureRequest, sessions: ModuleType, clock: Any, tmp_path: Path
) -> AsyncIterator[Subject]:
    kind = request.param
    if kind == "memory":
        memory = sessions.MemoryStore(10_000, clock=clock)

        async def memory_dump() -> str:
            return dumps(memory.dump())

        # The memory store keeps records decoded from their own JSON: nothing can corrupt them.
        yield Subject(kind, memory, memory_dump, None)
    elif kind == "file":
        file_store = importlib_module(sessions, "stores.file").FileStore(tmp_path / "sessions", clock=clock)

        async def file_dump() -> str:
            return dumps(file_store.dump())

        async def file_corrupt(session_id: str) -> None:
            digest = importlib_module(sessions, "stores._support").digest(session_id)
            (tmp_path / "sessions" / "sessions" / f"{digest}.json").write_text('{"format": 99}')

        yield Subject(kind, file_store, file_dump, file_corrupt)
    elif kind == "sqlite":
        async for subject in sql_subject(kind, sessions, f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}", clock):
            yield subject
    elif kind == "postgresql":
        url = require_server("PostgreSQL", POSTGRES_URL)
        async for subject in sql_subject(kind, sessions, url, clock):
            yield subject
    elif kind == "mariadb":
        url = require_server("MariaDB", MARIADB_URL)
        async for subject in sql_subject(kind, sessions, url, clock):
            yield subject
    else:
        url = require_server("Redis", REDIS_URL)
        async for subject in redis_subject(kind, sessions, url, clock):
            yield subject


class TestStores(StoreSuite):
    pass
