"""Runtime, events and audit: event names, salted hashes, handler isolation, and the three audit sinks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from runtime_support import BASE_URL, START, build_app, cookie_of, generated_package, holding


@pytest.fixture(scope="module")
def project_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rt_events")


@pytest.fixture(scope="module")
def sessions(project_root: Path) -> Iterator[ModuleType]:
    with generated_package(project_root / "logger", "rt_events_logger", ["audit=logger"]) as package:
        yield package


def _clock(sessions: ModuleType) -> Any:
    return sessions.ManualClock(START)


def test_every_event_is_emitted_with_hashed_ids(sessions: ModuleType, caplog: pytest.LogCaptureFixture) -> None:
    clock = _clock(sessions)
    app, manager = build_app(sessions, clock, max_sessions_per_principal=1)
    seen: list[Any] = []
    manager.on_event(seen.append)
    with caplog.at_level(logging.DEBUG), TestClient(app, base_url=BASE_URL) as client:
        client.post("/put/a")  # created, committed
        first = cookie_of(client.post("/login/ada"))  # loaded, rotated, committed
        client.post("/put/b")  # loaded, committed
        with TestClient(app, base_url=BASE_URL) as other:
            other.post("/login/ada")  # created, limit_evicted
        holding(client, "garbage").get("/get")  # invalid
        client.cookies.clear()
        second = cookie_of(client.post("/login/bob"))
        clock.advance(manager.policy.idle_timeout)
        holding(client, second or "").get("/get")  # idle_timeout, expired
        client.cookies.clear()
        client.post("/login/carol")
        client.post("/logout")  # destroyed
        asyncio.run(manager.revoke_all())  # revoked
    names = {event.name for event in seen}
    # These have tests of their own: a clock jump, an outage, a full memory store, and
    # concurrent writers (the generated test_session_policies.py).
    own = {"absolute_timeout", "store_unavailable", "evicted", "write_conflict"}
    assert names == set(sessions.EVENT_NAMES) - own
    for event in seen:
        assert event.session is None or len(event.session) == 12
    assert first
    session_id = first.split(".")[0]
    assert session_id not in repr(seen)
    assert session_id not in caplog.text


def test_an_anonymous_flood_evicts_only_anonymous_sessions_and_says_so(sessions: ModuleType) -> None:
    clock = _clock(sessions)
    app, manager = build_app(sessions, clock, store=sessions.MemoryStore(10, clock=clock))
    # setup_sessions wires a memory store's eviction hook to the manager's events.
    assert manager.store.on_evict == manager.note_evicted
    seen: list[Any] = []
    manager.on_event(seen.append)
    with TestClient(app, base_url=BASE_URL) as ada:
        ada.post("/login/ada")
        for n in range(30):
            with TestClient(app, base_url=BASE_URL) as visitor:
                visitor.post(f"/put/v{n}")
        assert ada.get("/get").json()["user"] == "ada"
    evicted = [event for event in seen if event.name == "evicted"]
    assert len(evicted) == 21  # 31 sessions into 10 places
    assert all(event.detail == {"reason": "capacity", "authenticated": False} for event in evicted)
    assert all(event.principal_id is None for event in evicted)


def test_absolute_timeout_event(sessions: ModuleType) -> None:
    clock = _clock(sessions)
    _, manager = build_app(sessions, clock)
    seen: list[str] = []
    manager.on_event(lambda event: seen.append(event.name))

    async def scenario() -> None:
        _, token = await manager.create(sessions.SessionPrincipal(kind="user", id="ada"))
        manager.policy = sessions.SessionPolicy(
            ttl=manager.policy.idle_timeout * 2, idle_timeout=manager.policy.idle_timeout
        )
        for _ in range(3):
            clock.advance(manager.policy.idle_timeout * 0.9)
            await manager.commit(await manager.load(token))

    asyncio.run(scenario())
    assert "absolute_timeout" in seen


def test_sync_and_async_handlers_and_failures_never_break_a_request(
    sessions: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    app, manager = build_app(sessions, _clock(sessions))
    seen: list[str] = []

    def broken(event: Any) -> None:
        raise RuntimeError("boom")

    async def async_broken(event: Any) -> None:
        raise ValueError("async boom")

    async def collect(event: Any) -> None:
        seen.append(event.name)

    for handler in (broken, async_broken, collect):
        manager.on_event(handler)
    with caplog.at_level(logging.ERROR), TestClient(app, base_url=BASE_URL) as client:
        assert client.post("/login/ada").status_code == 200
        assert client.get("/me").status_code == 200
    assert seen[:2] == ["created", "committed"]
    assert "session event handler failed" in caplog.text


def test_the_logger_sink_writes_structured_records(sessions: ModuleType, caplog: pytest.LogCaptureFixture) -> None:
    app, _ = build_app(sessions, _clock(sessions))
    with (
        caplog.at_level(logging.INFO, logger="rt_events_logger.sessions.audit"),
        TestClient(app, base_url=BASE_URL) as client,
    ):
        client.post("/login/ada")
        client.get("/get")  # loaded: routine, DEBUG
    records = [r for r in caplog.records if r.name == "rt_events_logger.sessions.audit"]
    assert [r.session_event["event"] for r in records] == ["created"]  # type: ignore[attr-defined]
    assert records[0].session_event["principal_id"] == "ada"  # type: ignore[attr-defined]


def test_routine_events_are_logged_at_debug(sessions: ModuleType, caplog: pytest.LogCaptureFixture) -> None:
    app, _ = build_app(sessions, _clock(sessions))
    with (
        caplog.at_level(logging.DEBUG, logger="rt_events_logger.sessions.audit"),
        TestClient(app, base_url=BASE_URL) as client,
    ):
        client.post("/login/ada")
        client.get("/get")
    records = [r for r in caplog.records if r.name == "rt_events_logger.sessions.audit"]
    levels = {r.session_event["event"]: r.levelno for r in records}  # type: ignore[attr-defined]
    assert levels == {"created": logging.INFO, "committed": logging.DEBUG, "loaded": logging.DEBUG}


def test_the_metrics_sink(project_root: Path) -> None:
    from prometheus_client import CollectorRegistry

    with generated_package(project_root / "metrics", "rt_events_metrics", ["audit=metrics"]) as sessions:
        registry = CollectorRegistry()
        metrics = sessions.audit.SessionMetrics(registry)
        clock = _clock(sessions)
        app, manager = build_app(sessions, clock, max_sessions_per_principal=1)
        # setup_sessions attached the default registry's metrics; use a private registry instead.
        manager.events._handlers.clear()
        manager.store = manager.store.inner
        sessions.audit.attach_audit(manager, manager.settings, metrics=metrics)
        with TestClient(app, base_url=BASE_URL) as client:
            client.post("/login/ada")
            with TestClient(app, base_url=BASE_URL) as other:
                other.post("/login/ada")
            holding(client, "junk").get("/get")
            asyncio.run(manager.revoke_all())
            client.cookies.clear()
            client.post("/login/ada")
            clock.advance(manager.policy.idle_timeout)
            client.get("/me")

        def value(name: str, **labels: str) -> float:
            return registry.get_sample_value(name, labels) or 0.0

        assert value("session_issued_total") == 3
        assert value("session_evicted_total") == 1
        assert value("session_invalid_total") >= 1
        assert value("session_revoked_total") == 1
        assert value("session_expired_total") == 1
        assert value("session_store_seconds_count", operation="create") == 3
        assert isinstance(manager.store, sessions.audit.TimedStore)


def test_the_sql_sink(project_root: Path, tmp_path: Path) -> None:
    with generated_package(project_root / "sql", "rt_events_sql", ["audit=sql"]) as sessions:
        app, manager = build_app(sessions, _clock(sessions), audit_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
        with TestClient(app, base_url=BASE_URL) as client:
            client.post("/login/ada")
            client.post("/logout")
        sink = sessions.audit.SqlAuditSink.from_url(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")

        async def read() -> list[str]:
            try:
                return await sink.events()
            finally:
                await sink.close()
                await manager.close()

        assert asyncio.run(read()) == ["created", "committed", "loaded", "destroyed"]


def test_invalid_events_carry_the_client_address(sessions: ModuleType) -> None:
    app, manager = build_app(sessions, _clock(sessions))
    seen: list[Any] = []
    manager.on_event(seen.append)
    with TestClient(app, base_url=BASE_URL, client=("203.0.113.9", 5000)) as client:
        holding(client, "garbage").get("/get")
    invalid = [event for event in seen if event.name == "invalid"]
    assert [event.detail for event in invalid] == [{"reason": "malformed", "ip": "203.0.113.9"}]
