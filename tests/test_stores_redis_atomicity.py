"""The Redis store's operations are single round trips and leave nothing half done.

Against the real Redis of this machine (own key prefix per test), through a loopback proxy
(tests/tcp_proxy.py) that counts the client's RESP commands and breaks the connection at
any one of them: dropped before Redis gets it, dropped after Redis ran it, or stalled past
the client's timeout and delivered late. A second set of runs kills (SIGKILL) a child
process doing the operation at that command. After every fault: each record that still
loads is listed under its principal and removed by `delete_by_principal`, and no principal
has more live sessions than its limit.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
from services import REDIS_URL, require_server
from store_suite import generate_project, imported, record, submodule
from tcp_proxy import Fault, FaultProxy, RespSplitter

pytestmark = pytest.mark.anyio

PACKAGE = "redisatomic.sessions"
LIMIT = 3


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("redis-atomic")
    generate_project(root, stores="memory,redis", package=PACKAGE)
    return root


@pytest.fixture(scope="module")
def sessions(project: Path) -> Iterator[ModuleType]:
    with imported(project, PACKAGE) as package:
        yield package


@pytest.fixture
def redis_url() -> str:
    return require_server("Redis", REDIS_URL)


@pytest.fixture
def proxy(redis_url: str) -> Iterator[FaultProxy]:
    parts = urlsplit(redis_url)
    fault_proxy = FaultProxy((parts.hostname or "127.0.0.1", parts.port or 6379), RespSplitter)
    try:
        yield fault_proxy
    finally:
        fault_proxy.close()


@pytest.fixture
def prefix() -> str:
    return f"skatomic{secrets.token_hex(6)}"


def store_url(port: int, prefix: str, **options: Any) -> str:
    query = "&".join(f"{key}={value}" for key, value in {"prefix": prefix, **options}.items())
    return f"redis://127.0.0.1:{port}/0?{query}"


@pytest.fixture
async def direct(sessions: ModuleType, redis_url: str, prefix: str, clock: Any) -> AsyncIterator[Any]:
    """The store talking to Redis directly: to set up and inspect."""
    port = urlsplit(redis_url).port or 6379
    store = submodule(sessions, "stores.redis").RedisStore.from_url(store_url(port, prefix), clock=clock)
    try:
        yield store
    finally:
        await store.delete_all()
        await store.close()


@pytest.fixture(params=["one-script"])
async def proxied(
    request: pytest.FixtureRequest, sessions: ModuleType, proxy: FaultProxy, prefix: str, clock: Any
) -> AsyncIterator[Any]:
    """The same store through the fault proxy, with a short timeout."""
    store = submodule(sessions, "stores.redis").RedisStore.from_url(
        store_url(proxy.port, prefix, timeout=0.5), clock=clock, idle_timeout=timedelta(minutes=30)
    )
    if request.param == "ordered-steps":
        # The cluster's sequence of single-slot scripts, driven on one Redis so the proxy
        # sees every step (a real cluster redirects clients to each node's own address).
        store._cluster = True
        store._touch_mode = "anon"
    try:
        yield store
    finally:
        await store.close()


def ada(sessions: ModuleType) -> Any:
    return sessions.SessionPrincipal("user", "ada")


async def seed(sessions: ModuleType, store: Any, clock: Any) -> list[str]:
    """Ada at her limit (a0 oldest .. a2), Bob with one session, one anonymous session."""
    for index in range(LIMIT):
        created = clock.now + timedelta(seconds=index)
        await store.create(record(sessions, clock, f"a{index}", ada(sessions), created_at=created))
    await store.create(record(sessions, clock, "b0", sessions.SessionPrincipal("user", "bob")))
    await store.create(record(sessions, clock, "anon"))
    return [*(f"a{index}" for index in range(LIMIT)), "b0", "anon"]


# --- round trips ---------------------------------------------------------------------------


async def test_every_operation_is_one_round_trip(
    sessions: ModuleType, proxied: Any, proxy: FaultProxy, clock: Any
) -> None:
    s = proxied
    limit = sessions.PrincipalLimit(LIMIT, "evict_oldest")
    touch = submodule(sessions, "stores.base").Touch
    await seed(sessions, s, clock)  # also loads every script into Redis's cache

    async def commands(operation: Awaitable[Any]) -> int:
        proxy.reset()
        await operation
        return proxy.commands

    assert await commands(s.load("a0")) == 1
    clock.advance(timedelta(minutes=5))
    due = touch(at=clock.now, due_before=clock.now - timedelta(minutes=1), idle_since=clock.now - timedelta(minutes=30))
    proxy.reset()
    touched = await s.load("a1", touch=due)
    assert (proxy.commands, touched.last_seen_at) == (1, clock.now)
    loaded = await s.load("a2")
    assert await commands(s.save(replace(loaded, data={"n": 1}), expected_version=loaded.version)) == 1
    stale = await commands(s.save(replace(loaded, data={"n": 2}), expected_version=loaded.version))
    assert stale == 1  # the loser's current record comes back in the same answer
    sign_in = record(sessions, clock, "a3", ada(sessions), created_at=clock.now)
    assert await commands(s.create(sign_in, limit=limit)) == 1
    assert await s.load("a0") is None  # evicted in that same round trip
    rotated = record(sessions, clock, "a4", ada(sessions), created_at=clock.now)
    assert await commands(s.create(rotated, limit=limit, replaces="a3", replaces_version=1)) == 1
    renewed = record(sessions, clock, "a5", ada(sessions), created_at=clock.now)
    grace = clock.now + timedelta(minutes=1)
    assert await commands(s.create(renewed, limit=limit, replaces="a4", grace_until=grace)) == 1
    assert await commands(s.delete("b0")) == 1
    assert await commands(s.list_by_principal("user", "ada")) == 1
    assert await commands(s.count_by_principal("user", "ada")) == 1
    assert await commands(s.delete_by_principal("user", "ada", keep="a5")) == 1


async def test_150_sessions_are_listed_and_revoked_in_one_round_trip_each(
    sessions: ModuleType, proxied: Any, direct: Any, proxy: FaultProxy, clock: Any
) -> None:
    ids = [f"s{index:03}" for index in range(150)]
    for index, session_id in enumerate(ids):
        created = clock.now + timedelta(seconds=index)
        await direct.create(record(sessions, clock, session_id, ada(sessions), created_at=created))
    await proxied.ping()
    proxy.reset()
    listed = await proxied.list_by_principal("user", "ada")
    assert ([r.session_id for r in listed], proxy.commands) == (ids, 1)
    proxy.reset()
    assert (await proxied.delete_by_principal("user", "ada"), proxy.commands) == (150, 1)
    assert await proxied.delete_by_principal("user", "ada") == 0
    for session_id in ids:
        assert await direct.load(session_id) is None


# --- the pool --------------------------------------------------------------------------------


async def test_300_concurrent_loads_with_the_default_pool_all_succeed(
    sessions: ModuleType, direct: Any, clock: Any
) -> None:
    redis_module = submodule(sessions, "stores.redis")
    assert direct.client.connection_pool.max_connections == redis_module.DEFAULT_MAX_CONNECTIONS
    for index in range(30):
        await direct.create(record(sessions, clock, f"r{index}"))
    results = await asyncio.gather(*(direct.load(f"r{index % 30}") for index in range(300)), return_exceptions=True)
    errors = [result for result in results if isinstance(result, BaseException)]
    assert errors == []
    assert [result.session_id for result in results] == [f"r{index % 30}" for index in range(300)]


async def test_waiting_too_long_for_a_connection_is_store_unavailable(
    sessions: ModuleType, proxy: FaultProxy, prefix: str, clock: Any
) -> None:
    redis_module = submodule(sessions, "stores.redis")
    url = store_url(proxy.port, prefix, max_connections=1, pool_timeout=0.3, timeout=5)
    store = redis_module.RedisStore.from_url(url, clock=clock)
    try:
        await store.ping()
        stalled = proxy.arm(1, Fault.STALL, stall_seconds=1.5)
        holder = asyncio.ensure_future(store.load("x"))  # holds the only connection
        await asyncio.sleep(0.1)
        with pytest.raises(sessions.StoreUnavailable):
            await store.load("y")  # waits 0.3 s for it, then gives up
        assert not holder.done()
        await holder
        assert await asyncio.to_thread(stalled.wait, 5)
    finally:
        await store.close()


@pytest.mark.parametrize("query", ["max_connections=0", "max_connections=many", "pool_timeout=-1", "timeout=soon"])
def test_bad_pool_options_are_a_configuration_error(sessions: ModuleType, query: str) -> None:
    redis_module = submodule(sessions, "stores.redis")
    with pytest.raises(sessions.SessionConfigurationError):
        redis_module.RedisStore.from_url(f"redis://127.0.0.1:6379/0?{query}")


async def test_1000_concurrent_sign_ins_under_a_limit_of_3_leave_exactly_3(
    sessions: ModuleType, direct: Any, clock: Any
) -> None:
    limit = sessions.PrincipalLimit(3, "evict_oldest")

    async def sign_in(index: int) -> list[str]:
        new = record(
            sessions, clock, f"c{index:04}", ada(sessions), created_at=clock.now + timedelta(microseconds=index)
        )
        return list(await direct.create(new, limit=limit))

    evicted = [sid for result in await asyncio.gather(*(sign_in(i) for i in range(1000))) for sid in result]
    live = [sid for sid in (f"c{i:04}" for i in range(1000)) if await direct.load(sid) is not None]
    assert live == ["c0997", "c0998", "c0999"]
    assert sorted(evicted) == [f"c{i:04}" for i in range(997)]
    assert [r.session_id for r in await direct.list_by_principal("user", "ada")] == live
    index = direct._index_keys(submodule(sessions, "stores._support").principal_digest("user", "ada"))
    assert [await direct.client.zcard(key) for key in index] == [3, 3, 0]


# --- faults --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[ModuleType, Any, Any], Awaitable[Any]]
    # Given which seeded ids still load afterwards: None if that state is not all or nothing.
    outcome: Callable[[set[str]], bool]


async def sign_in_at_limit(sessions: ModuleType, store: Any, clock: Any) -> Any:
    new = record(sessions, clock, "new", ada(sessions), created_at=clock.now + timedelta(minutes=1))
    return await store.create(new, limit=sessions.PrincipalLimit(LIMIT, "evict_oldest"))


async def rotation(sessions: ModuleType, store: Any, clock: Any) -> Any:
    new = record(sessions, clock, "new", ada(sessions), created_at=clock.now)
    limit = sessions.PrincipalLimit(LIMIT, "reject")
    return await store.create(new, limit=limit, replaces="a1", replaces_version=1)


async def renewal(sessions: ModuleType, store: Any, clock: Any) -> Any:
    new = record(sessions, clock, "new", ada(sessions), created_at=clock.now)
    limit = sessions.PrincipalLimit(LIMIT, "reject")
    return await store.create(new, limit=limit, replaces="a1", grace_until=clock.now + timedelta(minutes=1))


async def logout(sessions: ModuleType, store: Any, clock: Any) -> Any:
    return await store.delete("a1")


async def sign_out_everywhere(sessions: ModuleType, store: Any, clock: Any) -> Any:
    return await store.delete_by_principal("user", "ada", keep="a2")


async def revoke_all(sessions: ModuleType, store: Any, clock: Any) -> Any:
    return await store.delete_all()


ALL = {"a0", "a1", "a2", "b0", "anon"}
SCENARIOS = [
    Scenario("sign-in-with-limit", sign_in_at_limit, lambda live: live in (ALL, ALL - {"a0"} | {"new"})),
    Scenario("rotation", rotation, lambda live: live in (ALL, ALL - {"a1"} | {"new"})),
    # During the grace period the old id is a pointer, which still loads.
    Scenario("renewal", renewal, lambda live: live in (ALL, ALL | {"new"})),
    Scenario("logout", logout, lambda live: live in (ALL, ALL - {"a1"})),
    Scenario("sign-out-everywhere", sign_out_everywhere, lambda live: live in (ALL, ALL - {"a0", "a1"})),
    Scenario("revoke-all", revoke_all, lambda live: live in (ALL, set())),
]


async def check_consistent(sessions: ModuleType, direct: Any, scenario: Scenario, *, atomic: bool = True) -> None:
    """Every loadable signed-in record is indexed, revocable and within its limit.

    `atomic`: the operation was one script, so its effect is all or nothing.
    """
    live: dict[str, Any] = {}
    for session_id in [*ALL, "new"]:
        loaded = await direct.load(session_id)
        if loaded is not None:
            live[session_id] = loaded
    assert not atomic or scenario.outcome(set(live)), sorted(live)
    for kind, principal_id in (("user", "ada"), ("user", "bob")):
        mine = sorted(sid for sid, r in live.items() if r.principal and r.principal.id == principal_id)
        listed = [r.session_id for r in await direct.list_by_principal(kind, principal_id)]
        assert sorted(listed) == mine
        assert await direct.count_by_principal(kind, principal_id) == len(mine) <= LIMIT
        assert await direct.delete_by_principal(kind, principal_id) == len(mine)
        for session_id in mine:
            assert await direct.load(session_id) is None


async def commands_of(
    sessions: ModuleType, scenario: Scenario, proxied: Any, direct: Any, proxy: FaultProxy, clock: Any
) -> int:
    await seed(sessions, direct, clock)
    await proxied.ping()
    proxy.reset()
    await scenario.run(sessions, proxied, clock)
    count = proxy.commands
    await direct.delete_all()
    return count


@pytest.mark.parametrize("proxied", ["one-script", "ordered-steps"], indirect=True)
@pytest.mark.parametrize("fault", list(Fault), ids=lambda fault: fault.value)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
async def test_a_broken_connection_at_any_command_leaves_no_live_orphan(
    sessions: ModuleType, proxied: Any, direct: Any, proxy: FaultProxy, clock: Any, scenario: Scenario, fault: Fault
) -> None:
    total = await commands_of(sessions, scenario, proxied, direct, proxy, clock)
    assert total >= 1
    for at in range(1, total + 1):
        await seed(sessions, direct, clock)
        await proxied.ping()
        fired = proxy.arm(at, fault, stall_seconds=1.0)
        with pytest.raises(sessions.StoreUnavailable):
            await scenario.run(sessions, proxied, clock)
        await asyncio.to_thread(fired.wait, 5)
        await check_consistent(sessions, direct, scenario, atomic=not proxied._cluster)
        await direct.delete_all()


CHILD = textwrap.dedent(
    """
    import asyncio, importlib, json, sys
    from datetime import datetime
    root, package, url, name, now = sys.argv[1:]
    sys.path.insert(0, root)
    sessions = importlib.import_module(package)
    redis_store = importlib.import_module(package + ".stores.redis")
    scenarios = importlib.import_module("test_stores_redis_atomicity")

    async def main():
        clock = sessions.ManualClock(datetime.fromisoformat(now))
        store = redis_store.RedisStore.from_url(url, clock=clock)
        await store.ping()
        print("ready", flush=True)
        sys.stdin.readline()
        scenario = next(s for s in scenarios.SCENARIOS if s.name == name)
        await scenario.run(sessions, store, clock)
        print("done", flush=True)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("fault", [Fault.DROP_REQUEST, Fault.DROP_REPLY], ids=lambda fault: fault.value)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
async def test_a_process_killed_at_any_command_leaves_no_live_orphan(
    sessions: ModuleType,
    project: Path,
    proxied: Any,
    direct: Any,
    proxy: FaultProxy,
    prefix: str,
    clock: Any,
    scenario: Scenario,
    fault: Fault,
) -> None:
    total = await commands_of(sessions, scenario, proxied, direct, proxy, clock)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    for at in range(1, total + 1):
        await seed(sessions, direct, clock)
        args = [str(project), PACKAGE, store_url(proxy.port, prefix), scenario.name, clock.now.isoformat()]
        with subprocess.Popen(
            [sys.executable, "-c", CHILD, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        ) as child:  # fmt: skip
            try:
                assert child.stdout is not None
                assert child.stdin is not None
                ready = await asyncio.to_thread(child.stdout.readline)
                assert ready == "ready\n", ready + (child.stderr.read() if child.stderr else "")
                fired = proxy.arm(at, fault, hook=lambda: os.kill(child.pid, signal.SIGKILL))
                child.stdin.write("go\n")
                child.stdin.flush()
                assert await asyncio.to_thread(child.wait, 30) == -signal.SIGKILL
                assert await asyncio.to_thread(fired.wait, 5)
            finally:
                if child.poll() is None:
                    child.kill()
        await check_consistent(sessions, direct, scenario)
        await direct.delete_all()


def test_the_resp_splitter_counts_commands_across_packets() -> None:
    splitter = RespSplitter()
    get = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    assert splitter.feed(get + get[:5]) == [len(get)]
    assert splitter.feed(get[5:] + get) == [len(get) - 5, 2 * len(get) - 5]
    assert splitter.feed(json.dumps("not resp").encode() + b"\r\n") == [12]
