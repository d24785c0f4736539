"""The store conformance suite, run against every generated store on real servers.

`generate_project()` renders the session module with every store into a temporary project;
`StoreSuite` holds the tests, and a test module subclasses it with a `store` fixture that
yields a `Subject` (the store plus how to read it raw and how to corrupt one record).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

PACKAGE = "kitstores.sessions"
ALL_STORES = "memory,file,sql,redis"
SECRET = "store-suite-secret-key-0123456789abcdefghijkl"
START = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_KIT_")}
    return subprocess.run(
        [sys.executable, "-m", "session_kit", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
    )


def generate_project(root: Path, stores: str = ALL_STORES, package: str = PACKAGE) -> subprocess.CompletedProcess[str]:
    top = package.split(".")[0]
    (root / top).mkdir(parents=True)
    (root / top / "__init__.py").write_text("")
    result = cli(
        "add", "module", "session", "--yes", "--package", package, "--project-dir", str(root),
        "--set", f"stores={stores}", cwd=root,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@contextmanager
def imported(root: Path, package: str = PACKAGE) -> Iterator[ModuleType]:
    """The generated package, imported from `root`, and forgotten afterwards."""
    top = package.split(".")[0]
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(package)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            del sys.modules[name]


@dataclass
class Subject:
    """A store under test, with store-specific ways to look inside it."""

    name: str
    store: Any
    raw_dump: Callable[[], Awaitable[str]]
    corrupt: Callable[[str], Awaitable[None]] | None  # None: the store cannot hold corrupt data


def submodule(sessions: ModuleType, name: str) -> Any:
    """A module of the generated package, e.g. `stores.base`."""
    return importlib.import_module(f"{sessions.__name__}.{name}")


def touch(sessions: ModuleType, at: datetime, *, due_before: datetime, idle_since: datetime) -> Any:
    return submodule(sessions, "stores.base").Touch(at=at, due_before=due_before, idle_since=idle_since)


def record(sessions: ModuleType, clock: Any, session_id: str, principal: Any = None, **changes: Any) -> Any:
    base = sessions.SessionRecord(
        session_id=session_id,
        secret_hash="f" * 64,
        data={"cart": ["apple"], "empty": [], "nested": {}},
        principal=principal,
        created_at=clock.now,
        last_seen_at=clock.now,
        expires_at=clock.now + timedelta(hours=1),
    )
    return replace(base, **changes)


class StoreSuite:
    """Behaviour every store must have. Subclasses provide `sessions`, `clock` and `store` fixtures."""

    pytestmark = pytest.mark.anyio

    async def test_an_unknown_id_gives_nothing_and_creates_nothing(self, sessions: ModuleType, store: Subject) -> None:
        s = store.store
        assert await s.load("unknown-id") is None
        due = touch(sessions, START, due_before=START, idle_since=START - timedelta(hours=1))
        assert await s.load("unknown-id", touch=due) is None
        result = await s.save(record(sessions, _Clock(), "unknown-id"), expected_version=1)
        assert not result.saved
        assert result.current is None
        assert not await s.delete("unknown-id")
        assert await s.load("unknown-id") is None
        assert await s.delete_all() == 0
        assert not hasattr(s, "touch")  # activity is recorded by load(touch=...) only

    async def test_create_load_delete(self, sessions: ModuleType, clock: Any, store: Subject) -> None:
        s = store.store
        ada = sessions.SessionPrincipal("user", "ada", {"name": "Ada"})
        original = record(sessions, clock, "a", ada, auth_time=clock.now)
        assert await s.create(original) == []
        assert await s.load("a") == original
        with pytest.raises(sessions.SessionIdCollision):
            await s.create(original)
        assert await s.delete("a")
        assert await s.load("a") is None
        assert not await s.delete("a")

    async def test_compare_and_set(self, sessions: ModuleType, clock: Any, store: Subject) -> None:
        s = store.store
        await s.create(record(sessions, clock, "a"))
        first = await s.load("a")
        results = await asyncio.gather(
            *(s.save(replace(first, data={"n": n}), expected_version=first.version) for n in range(20))
        )
        winners = [n for n, result in enumerate(results) if result.saved]
        assert len(winners) == 1
        latest = await s.load("a")
        assert latest.version == first.version + 1
        assert latest.data == {"n": winners[0]}
        for result in results:
            if not result.saved:
                # The loser gets the record as it is stored now, in the same answer.
                assert result.current == latest

    async def test_20_concurrent_writers_lose_nothing(self, sessions: ModuleType, clock: Any, store: Subject) -> None:
        s = store.store
        await s.create(record(sessions, clock, "a", data={}))
        start = await s.load("a")
        won_with: list[int] = []

        async def writer(name: str) -> None:
            current = start
            for _ in range(100):
                changed = replace(current, data={**current.data, name: True})
                result = await s.save(changed, expected_version=current.version)
                if result.saved:
                    won_with.append(current.version)
                    return
                assert result.current is not None
                assert result.current.version > current.version
                current = result.current
            raise AssertionError(f"{name} never saved")

        await asyncio.gather(*(writer(f"w{n}") for n in range(20)))
        final = await s.load("a")
        assert final.data == {f"w{n}": True for n in range(20)}
        assert final.version == start.version + 20
        # Exactly one save succeeded per version.
        assert sorted(won_with) == list(range(start.version, start.version + 20))

    async def test_a_save_of_a_deleted_record_reports_it_gone(
        self, sessions: ModuleType, clock: Any, store: Subject
    ) -> None:
        s = store.store
        await s.create(record(sessions, clock, "a"))
        loaded = await s.load("a")
        assert await s.delete("a")
        result = await s.save(loaded, expected_version=loaded.version)
        assert (result.saved, result.current) == (False, None)
        assert await s.load("a") is None

    async def test_a_save_that_drops_the_principal_and_shortens_expiry_is_indexed(
        self, sessions: ModuleType, clock: Any, store: Subject
    ) -> None:
        s = store.store
        ada = sessions.SessionPrincipal("user", "ada")
        await s.create(record(sessions, clock, "a", ada))
        loaded = await s.load("a")
        renewed = replace(loaded, principal=None, expires_at=clock.now + timedelta(minutes=1))
        assert (await s.save(renewed, expected_version=loaded.version)).saved
        assert await s.count_by_principal("user", "ada") == 0
        assert await s.list_by_principal("user", "ada") == []
        assert (await s.load("a")).principal is None
        signed_in = replace(await s.load("a"), principal=ada)
        assert (await s.save(signed_in, expected_version=signed_in.version)).saved
        assert await s.count_by_principal("user", "ada") == 1
        clock.advance(timedelta(minutes=1))
        assert await s.load("a") is None
        assert await s.count_by_principal("user", "ada") == 0

    async def test_no_resurrection_after_a_concurrent_delete(
        self, sessions: ModuleType, clock: Any, store: Subject
    ) -> None:
        s = store.store
        for round_ in range(5):
            session_id = f"r{round_}"
            await s.create(record(sessions, clock, session_id))
            loaded = await s.load(session_id)
            late = replace(loaded, data={"late": True})
            later = clock.now + timedelta(seconds=1)
            due = touch(sessions, later, due_before=later, idle_since=later - timedelta(hours=1))
            await asyncio.gather(
                s.delete(session_id),
                s.save(late, expected_version=loaded.version),
                s.load(session_id, touch=due),
            )
            # Whatever the interleaving, a deleted session stays deleted.
            assert await s.load(session_id) is None
            assert not (await s.save(late, expected_version=loaded.version)).saved
            assert await s.load(session_id, touch=due) is None
            assert await s.load(session_id) is None

    async def test_absolute_expiry_is_honoured(self, sessions: ModuleType, clock: Any, store: Subject) -> None:
        s = store.store
        await s.create(record(sessions, clock, "short", expires_at=clock.now + timedelta(minutes=10)))
        clock.advance(timedelta(minutes=10))
        assert await s.load("short") is None
        due = touch(sessions, clock.now, due_before=clock.now, idle_since=clock.now - timedelta(hours=1))
        assert await s.load("short", touch=due) is None

    async def test_a_due_touch_records_activity_in_the_load(
        self, sessions: ModuleType, clock: Any, store: Subject
    ) -> None:
        s = store.store
        ada = sessions.SessionPrincipal("user", "ada")
        created = record(sessions, clock, "a", ada)
        await s.create(created)
        clock.advance(timedelta(minutes=10))
        due = touch(
            sessions,
            clock.now,
            due_before=clock.now - timedelta(minutes=1),
            idle_since=clock.now - timedelta(minutes=30),
        )
        touched = await s.load("a", touch=due)
        assert touched.last_seen_at == clock.now
        assert touched.version == created.version  # a touch is not a save
        assert touched.data == created.data
        assert (await s.load("a")).last_seen_at == clock.now
        # The touch does not disturb compare-and-set or the principal index.
        assert (await s.save(replace(touched, data={"k": 1}), expected_version=created.version)).saved
        assert [r.session_id for r in await s.list_by_principal("user", "ada")] == ["a"]

    async def test_a_touch_that_is_not_due_changes_nothing(
        self, sessions: ModuleType, clock: Any, store: Subject
    ) -> None:
        s = store.store
        await s.create(record(sessions, clock, "a"))
        clock.advance(timedelta(seconds=30))
        # Last seen exactly at due_before: not before it, so not due.
        not_due = touch(sessions, clock.now, due_before=START, idle_since=START - timedelta(minutes=30))
        loaded = await s.load("a", touch=not_due)
        assert loaded.last_seen_at == START
        assert (await s.load("a")).last_seen_at == START
        assert loaded.version == 1

    async def test_an_idle_expired_record_is_returned_untouched(
        self, sessions: ModuleType, clock: Any, store: Subject
    ) -> None:
        s = store.store
        await s.create(record(sessions, clock, "a"))
        clock.advance(timedelta(minutes=31))
        # Last seen at (not only before) idle_since: idle too long, for the manager to end.
        idle = touch(sessions, clock.now, due_before=clock.now - timedelta(minutes=1), idle_since=START)
        loaded = await s.load("a", touch=idle)
        assert loaded is not None
        assert loaded.last_seen_at == START
        assert (await s.load("a")).last_seen_at == START

    async def test_the_idle_timeout_is_honoured_through_the_manager(
        self, sessions: ModuleType, clock: Any, store: Subject
    ) -> None:
        settings = sessions.SessionSettings(secret_key=SECRET, idle_timeout=timedelta(minutes=30))
        manager = sessions.SessionManager(store.store, settings, clock=clock)
        ada = sessions.SessionPrincipal("user", "ada")
        session, token = await manager.create(principal=ada)
        clock.advance(timedelta(minutes=29))
        assert (await manager.load(token)).principal == ada
        clock.advance(timedelta(minutes=31))
        assert (await manager.load(token)).principal is None
        assert await store.store.load(session.id) is None

    async def test_purge_removes_only_expired(self, sessions: ModuleType, clock: Any, store: Subject) -> None:
        s = store.store
        ada = sessions.SessionPrincipal("user", "ada")
        for minutes in (5, 10, 15):
            await s.create(
                record(sessions, clock, f"m{minutes}", ada, expires_at=clock.now + timedelta(minutes=minutes))
            )
        await s.create(record(sessions, clock, "long"))
        assert await s.purge_expired(clock.now + timedelta(minutes=10)) == 2
        clock.advance(timedelta(minutes=1))
        assert await s.load("m15") is not None
        assert await s.load("long") is not None
        assert await s.count_by_principal("user", "ada") == 1

    async def test_principal_queries(self, sessions: ModuleType, clock: Any, store: Subject) -> None:
        s = store.store
        ada = sessions.SessionPrincipal("user", "ada")
        for index, session_id in enumerate(("laptop", "phone", "tablet")):
            await s.create(record(sessions, clock, session_id, ada, created_at=clock.now + timedelta(seconds=index)))
        await s.create(record(sessions, clock, "bob", sessions.SessionPrincipal("user", "bob")))
        await s.create(record(sessions, clock, "svc", sessions.SessionPrincipal("service", "ada")))
        await s.create(record(sessions, clock, "anonymous"))
        listed = await s.list_by_principal("user", "ada")
        assert [r.session_id for r in listed] == ["laptop", "phone", "tablet"]
        assert await s.count_by_principal("user", "ada") == 3
        assert await s.count_by_principal("user", "nobody") == 0
        assert await s.delete_by_principal("user", "ada", keep="phone") == 2
        assert [r.session_id for r in await s.list_by_principal("user", "ada")] == ["phone"]
        for survivor in ("phone", "bob", "svc", "anonymous"):
            assert await s.load(survivor) is not None

    @pytest.mark.parametrize("behavior", ["reject", "evict_oldest", "evict_all"])
    async def test_the_limit_is_exact_under_100_concurrent_logins(
        self, sessions: ModuleType, clock: Any, store: Subject, behavior: str
    ) -> None:
        s = store.store
        limit = sessions.PrincipalLimit(5, behavior)
        ada = sessions.SessionPrincipal("user", "ada")

        async def login(index: int) -> list[str] | None:
            new = record(sessions, clock, f"login{index:03}", ada, created_at=clock.now + timedelta(microseconds=index))
            try:
                return list(await s.create(new, limit=limit))
            except sessions.SessionLimitReached:
                return None

        results = await asyncio.gather(*(login(index) for index in range(100)))
        live = await s.list_by_principal("user", "ada")
        expected = {"reject": 5, "evict_oldest": 5, "evict_all": 1}[behavior]
        assert len(live) == expected
        assert await s.count_by_principal("user", "ada") == expected
        loadable = [sid for sid in (f"login{i:03}" for i in range(100)) if await s.load(sid) is not None]
        assert sorted(loadable) == sorted(r.session_id for r in live)
        if behavior == "reject":
            assert sum(result is not None for result in results) == 5
        else:
            assert all(result is not None for result in results)
            evicted = [sid for result in results if result for sid in result]
            assert len(evicted) == 100 - expected
            assert len(set(evicted)) == len(evicted)

    async def test_rotation_is_atomic_and_cannot_undo_a_logout(
        self, sessions: ModuleType, clock: Any, store: Subject
    ) -> None:
        s = store.store
        ada = sessions.SessionPrincipal("user", "ada")
        limit = sessions.PrincipalLimit(1, "reject")
        await s.create(record(sessions, clock, "old", ada), limit=limit)
        # The replaced session does not count against the limit.
        assert await s.create(record(sessions, clock, "new", ada), limit=limit, replaces="old") == []
        assert await s.load("old") is None
        assert await s.count_by_principal("user", "ada") == 1
        assert await s.delete("new")
        with pytest.raises(sessions.SessionNotFound):
            await s.create(record(sessions, clock, "newer", ada), replaces="new")
        assert await s.load("newer") is None
        assert await s.count_by_principal("user", "ada") == 0

    async def test_rotation_checks_the_version_of_the_replaced_record(
        self, sessions: ModuleType, clock: Any, store: Subject
    ) -> None:
        s = store.store
        conflict = submodule(sessions, "errors").SessionConflict
        ada = sessions.SessionPrincipal("user", "ada")
        await s.create(record(sessions, clock, "old", ada))
        loaded = await s.load("old")
        assert (await s.save(replace(loaded, data={"k": 1}), expected_version=loaded.version)).saved
        with pytest.raises(conflict):
            await s.create(record(sessions, clock, "new", ada), replaces="old", replaces_version=loaded.version)
        assert await s.load("new") is None
        assert (await s.load("old")).version == loaded.version + 1
        assert [r.session_id for r in await s.list_by_principal("user", "ada")] == ["old"]
        assert (
            await s.create(record(sessions, clock, "new", ada), replaces="old", replaces_version=loaded.version + 1)
            == []
        )
        assert await s.load("old") is None
        assert [r.session_id for r in await s.list_by_principal("user", "ada")] == ["new"]

    @pytest.mark.parametrize("grace_minutes", [5, 120])
    async def test_rotation_with_grace_leaves_a_pointer(
        self, sessions: ModuleType, clock: Any, store: Subject, grace_minutes: int
    ) -> None:
        s = store.store
        ada = sessions.SessionPrincipal("user", "ada")
        old = record(sessions, clock, "old", ada, auth_time=clock.now)
        await s.create(old)
        grace_until = clock.now + timedelta(minutes=grace_minutes)
        limit = sessions.PrincipalLimit(1, "reject")
        assert (
            await s.create(record(sessions, clock, "new", ada), limit=limit, replaces="old", grace_until=grace_until)
            == []
        )
        pointer = await s.load("old")
        assert pointer.replaced_by == "new"
        assert pointer.data == {}
        assert pointer.principal is None
        assert pointer.version == old.version + 1
        assert pointer.expires_at == min(old.expires_at, grace_until)
        # The pointer is no session of the principal: not listed, counted or revoked.
        assert [r.session_id for r in await s.list_by_principal("user", "ada")] == ["new"]
        assert await s.count_by_principal("user", "ada") == 1
        assert await s.delete_by_principal("user", "ada") == 1
        assert await s.load("new") is None
        assert (await s.load("old")).replaced_by == "new"
        clock.advance(pointer.expires_at - clock.now)
        assert await s.load("old") is None

    async def test_a_deleted_session_leaves_the_index(self, sessions: ModuleType, clock: Any, store: Subject) -> None:
        s = store.store
        ada = sessions.SessionPrincipal("user", "ada")
        for index in range(3):
            await s.create(record(sessions, clock, f"s{index}", ada, created_at=clock.now + timedelta(seconds=index)))
        assert await s.delete("s1")
        assert [r.session_id for r in await s.list_by_principal("user", "ada")] == ["s0", "s2"]
        assert await s.count_by_principal("user", "ada") == 2
        assert await s.delete_by_principal("user", "ada") == 2
        assert await s.count_by_principal("user", "ada") == 0

    async def test_evicted_sessions_are_gone_from_records_and_index(
        self, sessions: ModuleType, clock: Any, store: Subject
    ) -> None:
        s = store.store
        ada = sessions.SessionPrincipal("user", "ada")
        limit = sessions.PrincipalLimit(2, "evict_oldest")
        evicted: list[str] = []
        for index in range(5):
            new = record(sessions, clock, f"s{index}", ada, created_at=clock.now + timedelta(seconds=index))
            evicted += await s.create(new, limit=limit)
        assert evicted == ["s0", "s1", "s2"]
        for session_id in evicted:
            assert await s.load(session_id) is None
        assert [r.session_id for r in await s.list_by_principal("user", "ada")] == ["s3", "s4"]
        assert await s.count_by_principal("user", "ada") == 2
        assert await s.delete_by_principal("user", "ada") == 2
        assert await s.count_by_principal("user", "ada") == 0

    async def test_150_sessions_of_one_principal_are_listed_and_revoked(
        self, sessions: ModuleType, clock: Any, store: Subject
    ) -> None:
        s = store.store
        ada = sessions.SessionPrincipal("user", "ada")
        ids = [f"s{index:03}" for index in range(150)]
        for index, session_id in enumerate(ids):
            await s.create(record(sessions, clock, session_id, ada, created_at=clock.now + timedelta(seconds=index)))
        await s.create(record(sessions, clock, "bob", sessions.SessionPrincipal("user", "bob")))
        assert [r.session_id for r in await s.list_by_principal("user", "ada")] == ids
        assert await s.count_by_principal("user", "ada") == 150
        assert await s.delete_by_principal("user", "ada") == 150
        assert await s.list_by_principal("user", "ada") == []
        assert await s.count_by_principal("user", "ada") == 0
        for session_id in (ids[0], ids[75], ids[-1]):
            assert await s.load(session_id) is None
        assert await s.load("bob") is not None

    @pytest.mark.parametrize("behavior", ["reject", "evict_oldest"])
    async def test_the_limit_holds_under_1000_concurrent_creates(
        self, sessions: ModuleType, clock: Any, store: Subject, behavior: str
    ) -> None:
        s = store.store
        limit = sessions.PrincipalLimit(3, behavior)
        ada = sessions.SessionPrincipal("user", "ada")

        async def login(index: int) -> bool:
            new = record(sessions, clock, f"c{index:04}", ada, created_at=clock.now + timedelta(microseconds=index))
            try:
                await s.create(new, limit=limit)
            except sessions.SessionLimitReached:
                return False
            return True

        results = await asyncio.gather(*(login(index) for index in range(1000)))
        live = await s.list_by_principal("user", "ada")
        assert len(live) == 3
        assert await s.count_by_principal("user", "ada") == 3
        if behavior == "reject":
            assert sum(results) == 3
        else:
            assert all(results)
        survivors = [r.session_id for r in live]
        for session_id in (f"c{index:04}" for index in range(1000)):
            assert (await s.load(session_id) is not None) == (session_id in survivors)

    async def test_no_shared_live_objects(self, sessions: ModuleType, clock: Any, store: Subject) -> None:
        s = store.store
        original = record(sessions, clock, "a")
        await s.create(original)
        original.data["cart"].append("stolen")
        loaded = await s.load("a")
        loaded.data["cart"].append("pear")
        assert (await s.load("a")).data["cart"] == ["apple"]
        assert (await s.load("a")) is not (await s.load("a"))

    async def test_a_dump_of_the_store_holds_no_usable_token(
        self, sessions: ModuleType, clock: Any, store: Subject
    ) -> None:
        settings = sessions.SessionSettings(secret_key=SECRET)
        manager = sessions.SessionManager(store.store, settings, clock=clock)
        tokens = [(await manager.create(principal=sessions.SessionPrincipal("user", f"u{i}")))[1] for i in range(3)]
        dump = await store.raw_dump()
        assert dump  # the sessions are in there
        for token in tokens:
            _, secret = token.split(".", 1)
            assert token not in dump
            assert secret not in dump

    async def test_corrupt_data_gives_a_fresh_session_never_a_crash(
        self, sessions: ModuleType, clock: Any, store: Subject
    ) -> None:
        if store.corrupt is None:
            pytest.skip(f"the {store.name} store cannot hold corrupt data")
        settings = sessions.SessionSettings(secret_key=SECRET)
        manager = sessions.SessionManager(store.store, settings, clock=clock)
        seen: list[tuple[str, dict[str, Any]]] = []

        def record_event(event: Any) -> None:
            seen.append((event.name, dict(event.detail)))

        manager.on_event(record_event)
        session, token = await manager.create(principal=sessions.SessionPrincipal("user", "ada"), data={"k": 1})
        await store.corrupt(session.id)
        with pytest.raises(sessions.CorruptSessionData):
            await store.store.load(session.id)
        fresh = await manager.load(token)
        assert fresh.principal is None
        assert fresh.id != session.id
        assert await store.store.load(session.id) is None
        assert ("invalid", {"reason": "corrupt", "ip": None}) in seen  # the security event (no client here)


class _Clock:
    now = START


def dumps(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)
