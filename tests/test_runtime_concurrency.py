"""Many requests at once, through the manager and the HTTP middleware, on every real store.

The store conformance suite checks each store call on its own; these scenarios check what a
user sees when hundreds of requests share one app process: no errors on a healthy store,
concurrent writers that lose nothing, and a per-principal limit that holds under a sign-in race.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from runtime_support import BASE_URL, build_app
from services import MARIADB_URL, POSTGRES_URL, REDIS_URL, require_server
from store_suite import generate_project, imported

pytestmark = pytest.mark.anyio

STORES = ["memory", "file", "sqlite", "postgresql", "mariadb", "redis"]


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("concurrency")
    generate_project(root, package="kitconc.sessions")
    with imported(root, package="kitconc.sessions") as package:
        yield package


def _store_url(kind: str, tmp_path: Path) -> str:
    suffix = secrets.token_hex(6)
    if kind == "memory":
        return "memory://?max_sessions=100000"
    if kind == "file":
        return f"file://{tmp_path / 'sessions'}"
    if kind == "sqlite":
        # One file, one writer at a time: 1,000 sign-ins queue behind each other, so on a busy
        # CI machine the wait for the write lock needs more than the 5 s default.
        return f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}?session_table=sk_conc_{suffix}&timeout=60"
    if kind == "postgresql":
        return f"{require_server('PostgreSQL', POSTGRES_URL)}?session_table=sk_conc_{suffix}"
    if kind == "mariadb":
        return f"{require_server('MariaDB', MARIADB_URL)}?session_table=sk_conc_{suffix}"
    return f"{require_server('Redis', REDIS_URL)}?prefix=skconc{suffix}"


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, sessions: ModuleType, tmp_path: Path) -> AsyncIterator[Any]:
    opened = sessions.open_store(_store_url(request.param, tmp_path))
    if hasattr(opened, "create_tables"):
        await opened.create_tables()
    try:
        yield opened
    finally:
        try:
            if hasattr(opened, "drop_tables"):
                await opened.drop_tables()
            else:
                await opened.delete_all()
        finally:
            await opened.close()


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)


async def test_300_concurrent_reads_of_one_session_all_succeed(sessions: ModuleType, store: Any) -> None:
    app, _ = build_app(sessions, sessions.utc_now, store=store)
    async with _client(app) as client:
        assert (await client.post("/login/ada")).status_code == 200
        assert (await client.post("/put/blue")).status_code == 200

        async def read() -> tuple[int, Any]:
            # An unchanged read sets no cookie, so the shared jar stays as it is.
            response = await client.get("/get")
            assert "set-cookie" not in response.headers
            return response.status_code, response.json()

        for _ in range(3):  # three waves, as a busy page would send them
            answers = await asyncio.gather(*(read() for _ in range(300)))
            assert [status for status, _ in answers].count(200) == 300
            assert {body["value"] for _, body in answers} == {"blue"}
            assert {body["user"] for _, body in answers} == {"ada"}


async def test_twenty_concurrent_writers_to_one_session_lose_nothing(sessions: ModuleType, store: Any) -> None:
    _, manager = build_app(sessions, sessions.utc_now, store=store)
    _, token = await manager.create(sessions.SessionPrincipal(kind="user", id="ada"), {"start": True})

    async def write(n: int) -> None:
        session = await manager.load(token)
        session.data[f"key{n}"] = n
        result = await manager.commit(session)
        assert not result.clear

    await asyncio.gather(*(write(n) for n in range(20)))

    stored = (await manager.load(token)).data
    assert stored == {"start": True, **{f"key{n}": n for n in range(20)}}


async def test_concurrent_sign_ins_of_one_principal_leave_exactly_the_limit(sessions: ModuleType, store: Any) -> None:
    _, manager = build_app(sessions, sessions.utc_now, store=store, max_sessions_per_principal=3)
    ada = sessions.SessionPrincipal(kind="user", id="ada")

    await asyncio.gather(*(manager.create(ada) for _ in range(1000)))

    assert len(await manager.list_sessions(ada)) == 3
    assert await manager.revoke_principal(ada) == 3
    assert await manager.list_sessions(ada) == []


async def test_150_sessions_of_one_principal_are_listed_and_revoked_at_once(sessions: ModuleType, store: Any) -> None:
    _, manager = build_app(sessions, sessions.utc_now, store=store, max_sessions_per_principal=None)
    ada = sessions.SessionPrincipal(kind="user", id="ada")
    tokens = [token for _, token in await asyncio.gather(*(manager.create(ada) for _ in range(150)))]

    assert len(await manager.list_sessions(ada)) == 150
    assert await manager.revoke_principal(ada) == 150
    for token in tokens[:10] + tokens[-10:]:
        assert (await manager.load(token)).principal is None
    assert await manager.revoke_principal(ada) == 0
