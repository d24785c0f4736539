"""The SQL store's paths on the real servers: statements and round trips per operation, faults, purging.

Statement counts come from SQLAlchemy's `before_cursor_execute` event; PostgreSQL round trips are
counted on the wire by a loopback proxy that splits the client's stream into protocol messages,
and the same proxy drops the connection at every message of an operation to show that no crash
point leaves a live session outside its principal's index or beyond the limit. Each run uses its
own table (random suffix) and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import importlib
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import pytest
from services import MARIADB_URL, POSTGRES_URL, free_port, require_server
from sqlalchemy import event, text
from store_suite import generate_project, imported

pytestmark = pytest.mark.anyio

PACKAGE = "sqlpaths.sessions"
BACKENDS = ["sqlite", "postgresql", "mariadb"]


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("sqlpaths")
    generate_project(root, stores="memory,sql", package=PACKAGE)
    with imported(root, PACKAGE) as package:
        yield package


@pytest.fixture(scope="module")
def sql(sessions: ModuleType) -> Any:
    import importlib

    return importlib.import_module(f"{PACKAGE}.stores.sql")


def server_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}"
    if backend == "postgresql":
        return require_server("PostgreSQL", POSTGRES_URL)
    return require_server("MariaDB", MARIADB_URL)


@pytest.fixture
async def make_store(sql: Any, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Stores on fresh tables (one table per call unless `table_name` is given); all dropped afterwards."""
    owners: list[Any] = []
    guests: list[Any] = []

    async def make(url: str, *, table_name: str | None = None, **engine_options: Any) -> Any:
        name = table_name or f"sk_paths_{secrets.token_hex(6)}"
        store = sql.SQLStore(sql.create_engine(url, **engine_options), table_name=name)
        if table_name is None:
            await store.create_tables()
            owners.append(store)
        else:
            guests.append(store)
        return store

    yield make
    for store in guests:
        await store.close()
    for store in owners:
        await store.drop_tables()
        await store.close()


def record(sessions: ModuleType, session_id: str, principal: Any = None, **changes: Any) -> Any:
    now = datetime.now(UTC)
    base = sessions.SessionRecord(
        session_id=session_id,
        secret_hash="f" * 64,
        data={"cart": ["apple"]},
        principal=principal,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=1),
    )
    return replace(base, **changes)


class StatementLog:
    """Every statement an engine sends, and the transaction events SQLAlchemy reports."""

    def __init__(self, engine: Any) -> None:
        self.statements: list[str] = []
        sync_engine = engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", self._statement)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements.append(" ".join(statement.split()[:2]).upper())

    def take(self) -> list[str]:
        taken, self.statements = self.statements, []
        return taken


# --- a loopback proxy that sees the client's protocol messages -----------------------------------


class Splitter(Protocol):
    """Cuts one direction of a connection into protocol messages: (kind, bytes); kind None is not counted."""

    def feed(self, data: bytes) -> list[tuple[str | None, bytes]]: ...


class PostgresSplitter:
    """PostgreSQL frontend messages: untyped until the startup message, then a type byte and an int32 length."""

    _STARTUP_V3 = 196608

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False

    def feed(self, data: bytes) -> list[tuple[str | None, bytes]]:
        self._buffer += data
        messages: list[tuple[str | None, bytes]] = []
        while True:
            header = 4 if not self._started else 5
            if len(self._buffer) < header:
                return messages
            if self._started:
                size = 1 + int.from_bytes(self._buffer[1:5], "big")
            else:
                size = int.from_bytes(self._buffer[:4], "big")
            if len(self._buffer) < size:
                return messages
            message, self._buffer = self._buffer[:size], self._buffer[size:]
            if self._started:
                messages.append((chr(message[0]), message))
            else:
                # SSLRequest and GSSENCRequest come before the startup message, untyped too.
                self._started = int.from_bytes(message[4:8], "big") == self._STARTUP_V3
                messages.append((None, message))


class FaultProxy:
    """Forwards loopback connections to a server, counts the client's messages, and can drop at one."""

    def __init__(self, upstream: tuple[str, int], splitter: Callable[[], Splitter]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._splitter = splitter
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.kinds: list[str] = []
        self._drop_at: int | None = None
        self._forward_then_drop = False
        self._seen = 0
        self.dropped = False
        self.dropped_ports: list[int] = []  # our ends of dropped upstream connections
        self._upstream_ports: dict[socket.socket, int] = {}
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, k: int, *, forward: bool) -> None:
        """Drop every connection at the k-th client message from now (forwarding it first, or not)."""
        with self._lock:
            self._drop_at, self._forward_then_drop, self._seen, self.dropped = k, forward, 0, False

    def disarm(self) -> None:
        with self._lock:
            self._drop_at = None

    def take_kinds(self) -> list[str]:
        with self._lock:
            taken, self.kinds = self.kinds, []
        return taken

    def close(self) -> None:
        self._listener.close()
        self._drop_all()

    def _drop_all(self) -> None:
        with self._lock:
            doomed, self._sockets = self._sockets, []
            self.dropped_ports += [self._upstream_ports.pop(sock) for sock in doomed if sock in self._upstream_ports]
        for sock in doomed:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._sockets += [client, server]
                self._upstream_ports[server] = server.getsockname()[1]
            threading.Thread(target=self._client_to_server, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        splitter = self._splitter()
        try:
            while data := client.recv(65536):
                for kind, message in splitter.feed(data):
                    if kind is not None and self._should_drop(kind):
                        if self._forward_then_drop:
                            server.sendall(message)
                        self._drop_all()
                        return
                    server.sendall(message)
        except OSError:
            pass
        finally:
            _close_both(client, server)

    def _should_drop(self, kind: str) -> bool:
        with self._lock:
            self.kinds.append(kind)
            if self._drop_at is None:
                return False
            self._seen += 1
            if self._seen == self._drop_at:
                self._drop_at, self.dropped = None, True
                return True
            return False

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            _close_both(source, target)


def _close_both(*sockets: socket.socket) -> None:
    for sock in sockets:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def round_trips(kinds: list[str]) -> int:
    """PostgreSQL client messages that wait for the server: Sync (extended protocol) and Query (simple)."""
    return sum(kind in ("S", "Q") for kind in kinds)


@pytest.fixture
def pg_proxy() -> Iterator[FaultProxy]:
    require_server("PostgreSQL", POSTGRES_URL)
    proxy = FaultProxy(("127.0.0.1", 5432), PostgresSplitter)
    try:
        yield proxy
    finally:
        proxy.close()


def proxied_postgres_url(proxy: FaultProxy) -> str:
    # Plain TCP, so the proxy can read the protocol.
    return f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/test?ssl=disable"


# --- statements and round trips --------------------------------------------------------------------


async def _operations(sessions: ModuleType, store: Any, log: StatementLog) -> dict[str, list[str]]:
    """Run each operation once on a warmed-up connection; the statements each one sent."""
    ada = sessions.SessionPrincipal("user", f"ada-{secrets.token_hex(4)}")
    limit = sessions.PrincipalLimit(3)
    await store.create(record(sessions, "warm", ada))
    await store.load("warm")
    log.take()
    sent: dict[str, list[str]] = {}
    await store.create(record(sessions, "anon"))
    sent["create"] = log.take()
    loaded = await store.load("anon")
    sent["read"] = log.take()
    assert (await store.save(replace(loaded, data={"n": 1}), expected_version=loaded.version)).saved
    sent["write"] = log.take()
    now = datetime.now(UTC)
    touch = importlib.import_module(f"{PACKAGE}.stores.base").Touch(
        at=now + timedelta(minutes=2), due_before=now + timedelta(minutes=1), idle_since=now - timedelta(hours=1)
    )
    touched = await store.load("anon", touch=touch)
    sent["read that touches"] = log.take()
    assert touched.last_seen_at == touch.at
    await store.create(
        record(sessions, "signed-in", ada), limit=limit, replaces="anon", replaces_version=touched.version
    )
    sent["sign-in"] = log.take()
    await store.delete("signed-in")
    sent["delete"] = log.take()
    return sent


@pytest.mark.parametrize("backend", BACKENDS)
async def test_statements_per_operation(
    sessions: ModuleType, make_store: Any, tmp_path: Path, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = await make_store(server_url(backend, tmp_path))
    assert store.engine.sync_engine.pool._pre_ping is False
    log = StatementLog(store.engine)
    sent = await _operations(sessions, store, log)
    with capsys.disabled():
        print(
            f"\n{backend}: " + "; ".join(f"{name} {len(statements)} {statements}" for name, statements in sent.items())
        )
    assert [s.split()[0] for s in sent["read"]] == ["SELECT"]
    assert [s.split()[0] for s in sent["write"]] == ["UPDATE"]
    assert [s.split()[0] for s in sent["create"]] == ["INSERT"]
    assert [s.split()[0] for s in sent["read that touches"]] == ["SELECT", "UPDATE"]
    assert [s.split()[0] for s in sent["delete"]] == ["DELETE"]
    sign_in = [s.split()[0] for s in sent["sign-in"]]
    # One short transaction: the lock, the replaced row, the principal's rows, the new row.
    # MariaDB's GET_LOCK is taken before BEGIN and released after COMMIT.
    inside = sign_in[1:-1] if backend == "mariadb" else sign_in
    assert (inside[0], inside[-1]) == ("BEGIN", "COMMIT")
    assert sign_in.count("BEGIN") == 1
    # PostgreSQL takes an advisory lock inside; SQLite's BEGIN IMMEDIATE is the lock.
    assert len(inside) == (6 if backend == "postgresql" else 5)


async def test_postgresql_round_trips_on_the_wire(sessions: ModuleType, pg_proxy: FaultProxy, make_store: Any) -> None:
    store = await make_store(proxied_postgres_url(pg_proxy))
    log = StatementLog(store.engine)
    await _operations(sessions, store, log)  # prepares every statement on the one pooled connection
    ada = sessions.SessionPrincipal("user", "grace")
    await store.create(record(sessions, "w0", ada))
    pg_proxy.take_kinds()
    counted: dict[str, int] = {}
    await store.create(record(sessions, "anon2"))
    counted["create"] = round_trips(pg_proxy.take_kinds())
    loaded = await store.load("anon2")
    counted["read"] = round_trips(pg_proxy.take_kinds())
    await store.save(replace(loaded, data={"n": 2}), expected_version=loaded.version)
    counted["write"] = round_trips(pg_proxy.take_kinds())
    await store.create(record(sessions, "w1", ada), limit=sessions.PrincipalLimit(3), replaces="anon2")
    counted["sign-in"] = round_trips(pg_proxy.take_kinds())
    print(f"\nPostgreSQL round trips: {counted}")
    # No ping, no BEGIN/ROLLBACK around a read or a write: one round trip each.
    assert counted["read"] == 1
    assert counted["write"] == 1
    assert counted["create"] == 1
    # BEGIN, advisory lock, DELETE replaced, SELECT the principal's rows, INSERT, COMMIT.
    assert counted["sign-in"] == 6


# --- SQLite: WAL, readers never wait for the writer, few thread hops --------------------------------


async def test_sqlite_reads_in_wal_mode_beside_a_writer_and_with_few_thread_hops(
    sessions: ModuleType, make_store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    import aiosqlite.core

    store = await make_store(server_url("sqlite", tmp_path), timeout=1)
    await store.create(record(sessions, "a"))
    async with store.engine.connect() as connection:
        assert (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
    writer = sqlite3.connect(tmp_path / "sessions.db", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        started = time.monotonic()
        assert (await store.load("a")) is not None
        assert time.monotonic() - started < 0.5  # far below the 1 s busy timeout: it never waited
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    hops = 0
    original = aiosqlite.core.Connection._execute

    async def counted(self: Any, function: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal hops
        hops += 1
        return await original(self, function, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
    await store.load("a")
    print(f"\nSQLite hops to the driver thread per read: {hops}")
    assert hops <= 4  # cursor, execute, fetch, close; no BEGIN IMMEDIATE, no rollback


# --- faults on the wire ---------------------------------------------------------------------------


@dataclass
class Scenario:
    """An operation on a principal that has some sessions, and what must hold after any crash."""

    name: str
    existing: int
    run: Callable[[Any, Any, list[str], Any], Awaitable[Any]]
    new_ids: int = 0


def _scenarios(sessions: ModuleType) -> list[Scenario]:
    limit = sessions.PrincipalLimit(3)

    async def create_with_limit(store: Any, principal: Any, ids: list[str], _admin: Any) -> Any:
        return await store.create(record(sessions, ids[-1], principal), limit=limit)

    async def rotation(store: Any, principal: Any, ids: list[str], admin: Any) -> Any:
        old = await admin.load(ids[0])
        new = record(sessions, ids[-1], principal, created_at=old.created_at)
        return await store.create(new, limit=limit, replaces=ids[0], replaces_version=old.version)

    async def renewal(store: Any, principal: Any, ids: list[str], _admin: Any) -> Any:
        grace = datetime.now(UTC) + timedelta(minutes=1)
        return await store.create(record(sessions, ids[-1], principal), replaces=ids[0], grace_until=grace)

    async def delete(store: Any, _principal: Any, ids: list[str], _admin: Any) -> Any:
        return await store.delete(ids[0])

    async def delete_by_principal(store: Any, principal: Any, _ids: list[str], _admin: Any) -> Any:
        return await store.delete_by_principal(principal.kind, principal.id)

    return [
        Scenario("create with limit", 3, create_with_limit, new_ids=1),
        Scenario("rotation", 3, rotation, new_ids=1),
        Scenario("renewal", 1, renewal, new_ids=1),
        Scenario("delete", 2, delete),
        Scenario("delete_by_principal", 3, delete_by_principal),
    ]


async def _prepare(sessions: ModuleType, admin: Any, scenario: Scenario) -> tuple[Any, list[str]]:
    principal = sessions.SessionPrincipal("user", f"u-{secrets.token_hex(6)}")
    ids = [f"s-{secrets.token_hex(8)}" for _ in range(scenario.existing + scenario.new_ids)]
    start = datetime.now(UTC) - timedelta(minutes=10)
    for index, session_id in enumerate(ids[: scenario.existing]):
        await admin.create(record(sessions, session_id, principal, created_at=start + timedelta(seconds=index)))
    return principal, ids


async def _check_invariants(admin: Any, principal: Any, ids: list[str]) -> None:
    loaded = {session_id: await admin.load(session_id) for session_id in ids}
    live = {session_id for session_id, r in loaded.items() if r is not None and r.principal is not None}
    listed = {r.session_id for r in await admin.list_by_principal(principal.kind, principal.id)}
    if not live <= listed:
        async with admin.engine.connect() as connection:
            rows = (await connection.execute(admin.table.select().where(admin.table.c.session_id.in_(ids)))).all()
        raise AssertionError(f"live sessions missing from the principal's index: {live - listed}: {rows}")
    assert len(listed) <= 3, "the limit was exceeded"
    await admin.delete_by_principal(principal.kind, principal.id)
    for session_id in ids:
        survivor = await admin.load(session_id)
        if survivor is None:
            continue
        # Only a renewal's pointer may remain, and it points at a session that is gone.
        assert survivor.principal is None
        assert survivor.replaced_by is not None
        assert await admin.load(survivor.replaced_by) is None


async def _settled(admin: Any, ports: list[int]) -> None:
    """Wait until the server has finished with dropped connections (committed or rolled back).

    A statement that reached the server before the drop may still be committing when the
    client already saw the error; the invariants are checked once that outcome is decided.
    """
    query = text("SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY(:ports)")
    deadline = time.monotonic() + 10
    while True:
        async with admin.engine.connect() as connection:
            if not (await connection.execute(query, {"ports": ports})).scalar():
                return
        assert time.monotonic() < deadline, "the server kept a dropped connection"
        await asyncio.sleep(0.01)


@pytest.mark.slow
async def test_dropping_the_connection_at_every_message_leaves_no_session_outside_the_index(
    sessions: ModuleType, sql: Any, pg_proxy: FaultProxy, make_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql, "PURGE_EVERY", 10**9)  # no purge batch in the middle of a counted operation
    admin = await make_store(require_server("PostgreSQL", POSTGRES_URL))
    store = await make_store(proxied_postgres_url(pg_proxy), table_name=admin.table.name, timeout=5)
    report: dict[str, int] = {}
    for scenario in _scenarios(sessions):
        # Warm the pooled connection with the same statements, then count this operation's messages.
        principal, ids = await _prepare(sessions, admin, scenario)
        await scenario.run(store, principal, ids, admin)
        principal, ids = await _prepare(sessions, admin, scenario)
        pg_proxy.take_kinds()
        await scenario.run(store, principal, ids, admin)
        messages = len(pg_proxy.take_kinds())
        report[scenario.name] = messages
        await _check_invariants(admin, principal, ids)
        for k in range(1, messages + 1):
            for forward in (False, True):
                await store.ping()  # a live connection again after the previous drop
                warm_principal, warm_ids = await _prepare(sessions, admin, scenario)
                await scenario.run(store, warm_principal, warm_ids, admin)
                principal, ids = await _prepare(sessions, admin, scenario)
                pg_proxy.arm(k, forward=forward)
                with suppress(sessions.StoreUnavailable):
                    await scenario.run(store, principal, ids, admin)
                pg_proxy.disarm()
                assert pg_proxy.dropped, f"{scenario.name}: message {k} never came"
                await _settled(admin, pg_proxy.dropped_ports)
                try:
                    await _check_invariants(admin, principal, ids)
                except AssertionError as exc:
                    raise AssertionError(f"{scenario.name} k={k} forward={forward}: {exc}") from None
    print(f"\nPostgreSQL client messages per operation (each one dropped, before and after forwarding): {report}")


# --- stale connections and purging ---------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
async def test_a_read_on_a_connection_the_server_killed_is_retried_once(
    sessions: ModuleType, make_store: Any, tmp_path: Path, backend: str
) -> None:
    url = server_url(backend, tmp_path)
    store = await make_store(url)
    admin = await make_store(url, table_name=store.table.name)
    await store.create(record(sessions, "a"))
    assert await store.load("a") is not None
    own_id = "pg_backend_pid()" if backend == "postgresql" else "connection_id()"
    async with store.engine.connect() as connection:
        victim = (await connection.exec_driver_sql(f"SELECT {own_id}")).scalar()
    kill = f"SELECT pg_terminate_backend({int(victim)})" if backend == "postgresql" else f"KILL {int(victim)}"
    async with admin.engine.connect() as connection:
        await connection.exec_driver_sql(kill)
    await asyncio.sleep(0.2)
    log = StatementLog(store.engine)
    assert (await store.load("a")).session_id == "a"
    assert [s.split()[0] for s in log.take()] == ["SELECT", "SELECT"]  # the failed try and the retry
    async with store.engine.connect() as connection:
        assert (await connection.exec_driver_sql(f"SELECT {own_id}")).scalar() != victim


@pytest.mark.parametrize("backend", BACKENDS)
async def test_expired_rows_are_purged_by_creates_alone(
    sessions: ModuleType, sql: Any, make_store: Any, tmp_path: Path, backend: str
) -> None:
    store = await make_store(server_url(backend, tmp_path))
    past = datetime.now(UTC) - timedelta(days=1)
    expired = 3 * sql.PURGE_EVERY // 2
    for index in range(expired):
        await store.create(
            record(sessions, f"old{index}", created_at=past, last_seen_at=past, expires_at=past + timedelta(hours=1))
        )
    for index in range(sql.PURGE_EVERY):
        await store.create(record(sessions, f"new{index}"))
    count = f"SELECT count(*) FROM {store.table.name} WHERE session_id LIKE :prefix"
    async with store.engine.connect() as connection:
        left_expired = (await connection.execute(text(count), {"prefix": "old%"})).scalar()
        left_live = (await connection.execute(text(count), {"prefix": "new%"})).scalar()
    assert (left_expired, left_live) == (0, sql.PURGE_EVERY)
    assert expired <= 2 * sql.PURGE_BATCH  # what two purge batches can remove
