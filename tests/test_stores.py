"""Every generated store passes one conformance suite, on the real servers of this machine.

memory, file, SQLite, PostgreSQL, MariaDB and Redis; each server-backed run uses its own
table or key prefix (random suffix) and removes it afterwards. A missing server skips its
runs with the reason, or fails them when SESSION_KIT_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from services import MARIADB_URL, POSTGRES_URL, REDIS_URL, require_server
from store_suite import StoreSuite, Subject, dumps, generate_project, imported, record


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


# Store-specific behaviour, beyond the shared suite.


@pytest.mark.anyio
async def test_an_anonymous_flood_never_evicts_a_signed_in_session(sessions: ModuleType, clock: Any) -> None:
    reported: list[tuple[str, str]] = []
    store = sessions.MemoryStore.from_url(
        "memory://?max_sessions=100",
        clock=clock,
        on_evict=lambda record, reason: reported.append((record.session_id, reason)),
    )
    ada = sessions.SessionPrincipal("user", "ada")
    signed_in = [f"ada{index}" for index in range(10)]
    for session_id in signed_in:
        await store.create(record(sessions, clock, session_id, ada))
    for index in range(120):
        visitor = record(sessions, clock, f"visitor{index:03}")
        await store.create(visitor)
        assert (await store.save(replace(visitor, data={"seen": index}), expected_version=1)).saved
    for session_id in signed_in:
        assert await store.load(session_id) is not None
    assert await store.count_by_principal("user", "ada") == 10
    assert len(store) == 100
    # The least recently used anonymous sessions went, and each was reported.
    assert reported == [(f"visitor{index:03}", "capacity") for index in range(30)]


@pytest.mark.anyio
async def test_memory_eviction_is_least_recently_used_within_each_class(sessions: ModuleType, clock: Any) -> None:
    reported: list[str] = []
    store = sessions.MemoryStore(4, clock=clock, on_evict=lambda evicted, _: reported.append(evicted.session_id))
    ada = sessions.SessionPrincipal("user", "ada")
    for session_id in ("s1", "s2"):
        await store.create(record(sessions, clock, session_id, ada))
    for session_id in ("a1", "a2"):
        await store.create(record(sessions, clock, session_id))
    await store.load("a1")
    await store.load("s1")
    await store.create(record(sessions, clock, "s3", ada))  # a signed-in newcomer still evicts anonymous first
    await store.create(record(sessions, clock, "s4", ada))
    assert reported == ["a2", "a1"]
    await store.create(record(sessions, clock, "s5", ada))  # no anonymous left: least recent signed in
    assert reported == ["a2", "a1", "s2"]
    assert sorted(store.dump()) == ["s1", "s3", "s4", "s5"]
    # The index agrees with the records after every eviction.
    assert [r.session_id for r in await store.list_by_principal("user", "ada")] == ["s1", "s3", "s4", "s5"]
    assert await store.delete_by_principal("user", "ada") == 4
    assert len(store) == 0


def file_store(sessions: ModuleType, root: Path, clock: Any) -> Any:
    return importlib_module(sessions, "stores.file").FileStore(root, clock=clock)


def leftovers(root: Path) -> list[str]:
    return sorted(path.name for path in (root / "sessions").iterdir() if path.name.endswith(".tmp"))


@pytest.mark.anyio
async def test_the_file_store_removes_temporary_files_left_by_a_crash(
    sessions: ModuleType, clock: Any, tmp_path: Path
) -> None:
    root = tmp_path / "sessions"
    await file_store(sessions, root, clock).create(record(sessions, clock, "kept"))
    for index in range(5):
        (root / "sessions" / f".{index:064x}.json.{index:016x}.tmp").write_text('{"half": ')
    assert len(leftovers(root)) == 5
    reopened = file_store(sessions, root, clock)
    assert await reopened.load("kept") is not None  # the first operation sweeps
    assert leftovers(root) == []
    # A leftover appearing later (another process crashed) goes with the next purge.
    (root / "sessions" / ".late.json.0123456789abcdef.tmp").write_text("")
    assert await reopened.purge_expired(clock.now) == 0
    assert leftovers(root) == []
    assert await reopened.load("kept") is not None


@pytest.mark.anyio
async def test_the_file_store_sweep_is_bounded(sessions: ModuleType, clock: Any, tmp_path: Path) -> None:
    module = importlib_module(sessions, "stores.file")
    root = tmp_path / "sessions"
    (root / "sessions").mkdir(parents=True)
    for index in range(module.SWEEP_LIMIT + 7):
        (root / "sessions" / f".{index}.json.tmp").touch()
    store = file_store(sessions, root, clock)
    await store.ping()
    assert len(leftovers(root)) == 7
    await store.purge_expired(clock.now)
    assert leftovers(root) == []


KILLED_WRITER = """
import asyncio, sys, time
from datetime import timedelta
from kitstores.sessions import SessionPrincipal, SessionRecord
from kitstores.sessions.stores import file as file_module

def hang(descriptor: int) -> None:
    print("mid-write", flush=True)
    time.sleep(120)

async def main() -> None:
    store = file_module.FileStore(sys.argv[1])
    now = store._clock()
    record = SessionRecord(
        session_id="doomed", secret_hash="f" * 64, data={"k": 1},
        principal=SessionPrincipal("user", "ada"), created_at=now, last_seen_at=now,
        expires_at=now + timedelta(hours=1),
    )
    file_module.os.fsync = hang  # the write stops between the temporary file and the rename
    await store.create(record)

asyncio.run(main())
"""


def test_a_writer_killed_mid_write_leaves_no_session_and_no_lock(
    sessions: ModuleType, project: Path, tmp_path: Path
) -> None:
    import asyncio

    root = tmp_path / "sessions"
    clock = sessions.ManualClock(datetime.now(UTC))
    ada = sessions.SessionPrincipal("user", "ada")
    asyncio.run(file_store(sessions, root, clock).create(record(sessions, clock, "before", ada)))
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(root)],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        line = writer.stdout.readline()
        stuck = len(leftovers(root))
    finally:
        writer.send_signal(signal.SIGKILL)
        _, errors = writer.communicate(timeout=10)  # also closes the pipes
    assert line.strip() == "mid-write", errors
    assert stuck == 1  # killed with its temporary file written, not renamed
    assert writer.returncode == -signal.SIGKILL

    async def after() -> None:
        store = file_store(sessions, root, clock)
        # The lock died with the writer: this does not block, and sweeps its leftover.
        assert await asyncio.wait_for(store.load("doomed"), timeout=10) is None
        assert leftovers(root) == []
        assert [r.session_id for r in await store.list_by_principal("user", "ada")] == ["before"]
        assert await store.delete_by_principal("user", "ada") == 1

    asyncio.run(after())


CAS_WRITER = """
import asyncio, sys
from dataclasses import replace
from kitstores.sessions.stores.file import FileStore

async def main() -> None:
    store = FileStore(sys.argv[1])
    name = sys.argv[2]
    for step in range(10):
        current = await store.load("shared")
        while True:
            changed = replace(current, data={**current.data, f"{name}-{step}": True})
            result = await store.save(changed, expected_version=current.version)
            if result.saved:
                break
            current = result.current

asyncio.run(main())
"""


def test_file_store_writes_from_four_processes_lose_nothing(
    sessions: ModuleType, project: Path, tmp_path: Path
) -> None:
    import asyncio

    root = tmp_path / "sessions"
    clock = sessions.ManualClock(datetime.now(UTC))
    asyncio.run(file_store(sessions, root, clock).create(record(sessions, clock, "shared", data={})))
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", CAS_WRITER, str(root), f"p{index}"],
            cwd=project,
            env={**os.environ, "PYTHONPATH": str(project)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(4)
    ]
    for writer in writers:
        _, errors = writer.communicate(timeout=120)
        assert writer.returncode == 0, errors
    final = asyncio.run(file_store(sessions, root, clock).load("shared"))
    assert final.data == {f"p{index}-{step}": True for index in range(4) for step in range(10)}
    assert final.version == 41
    assert leftovers(root) == []


@pytest.mark.anyio
async def test_open_store_hands_the_eviction_hook_to_the_memory_store(sessions: ModuleType, clock: Any) -> None:
    reported: list[tuple[str, str]] = []
    store = sessions.open_store(
        "memory://?max_sessions=1",
        clock=clock,
        on_evict=lambda evicted, reason: reported.append((evicted.session_id, reason)),
    )
    await store.create(record(sessions, clock, "first"))
    await store.create(record(sessions, clock, "second"))
    assert reported == [("first", "capacity")]


@pytest.mark.anyio
async def test_a_failing_eviction_hook_does_not_fail_the_create(sessions: ModuleType, clock: Any) -> None:
    def broken(evicted: Any, reason: str) -> None:
        raise RuntimeError("listener bug")

    store = sessions.MemoryStore(1, clock=clock, on_evict=broken)
    await store.create(record(sessions, clock, "first"))
    await store.create(record(sessions, clock, "second"))
    assert await store.load("second") is not None
    assert await store.load("first") is None


def test_120_anonymous_requests_that_write_never_sign_a_user_out(sessions: ModuleType, clock: Any) -> None:
    """The reported attack, over HTTP: with max_sessions=100, anonymous writers used to evict a signed-in user."""
    from fastapi.testclient import TestClient
    from runtime_support import BASE_URL, build_app, cookie_of, holding

    store = sessions.open_store("memory://?max_sessions=100", clock=clock)
    app, manager = build_app(sessions, clock, store)
    events: list[Any] = []
    manager.on_event(events.append)
    with TestClient(app, base_url=BASE_URL) as client:
        token = cookie_of(client.post("/login/ada"))
        assert token is not None
        for index in range(120):
            client.cookies.clear()  # a new anonymous visitor every time
            assert client.post(f"/put/visitor{index}").status_code == 200
        assert holding(client, token).get("/me").json() == {"id": "ada"}
    assert len(store) == 100
    evicted = [event for event in events if event.name == "evicted"]
    assert len(evicted) == 21
    assert all(event.detail.get("authenticated") is False for event in evicted)
