"""Runtime, policies: session limits, privilege changes, recent sign-in, renewal, presets.

A real package is generated with the kit and a real FastAPI app is driven through httpx with a manual clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from runtime_support import BASE_URL, SECRET, START, build_app, cookie_of, generated_package, holding


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("rt_policies")
    with generated_package(root, "rt_policies", ["session_limit=3", "limit_behavior=reject"]) as package:
        yield package


@pytest.fixture
def clock(sessions: ModuleType) -> Any:
    return sessions.ManualClock(START)


def _client(app: Any) -> TestClient:
    return TestClient(app, base_url=BASE_URL)


def test_the_generated_limit_is_the_default(sessions: ModuleType, clock: Any) -> None:
    app, manager = build_app(sessions, clock)
    assert manager.policy.concurrency == sessions.ConcurrencyPolicy(3, "reject")
    statuses = []
    for _ in range(4):
        with _client(app) as device:
            statuses.append(device.post("/login/ada").status_code)
    assert statuses == [200, 200, 200, 409]


def test_reject_answers_409_with_a_clear_body_and_stores_nothing(sessions: ModuleType, clock: Any) -> None:
    app, manager = build_app(sessions, clock, max_sessions_per_principal=1)
    with _client(app) as first:
        first.post("/login/ada")
    with _client(app) as second:
        second.post("/put/cart")
        response = second.post("/login/ada")
        assert second.get("/get").json() == {"value": "cart", "user": None}  # the anonymous session survives
    assert response.status_code == 409
    assert response.json() == {
        "error": {"code": "session.limit_reached", "message": sessions.SessionLimitReached.default_message}
    }
    assert cookie_of(response) is None
    assert len(manager.store) == 2


@pytest.mark.parametrize("behavior", ["evict_oldest", "reject", "evict_all"])
def test_the_limit_is_exact_under_concurrent_logins(sessions: ModuleType, clock: Any, behavior: str) -> None:
    _, manager = build_app(sessions, clock, max_sessions_per_principal=3, behavior_on_limit=behavior)
    ada = sessions.SessionPrincipal(kind="user", id="ada")

    async def race() -> list[Any]:
        return await asyncio.gather(*(manager.create(ada) for _ in range(25)), return_exceptions=True)

    outcomes = asyncio.run(race())
    live = asyncio.run(manager.store.list_by_principal("user", "ada"))
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if behavior == "reject":
        assert len(live) == 3
        assert len(errors) == 22
        assert all(isinstance(e, sessions.SessionLimitReached) for e in errors)
    else:
        assert not errors
        assert len(live) == (3 if behavior == "evict_oldest" else 1)


def test_evict_oldest_ends_the_oldest_session(sessions: ModuleType, clock: Any) -> None:
    app, _ = build_app(sessions, clock, max_sessions_per_principal=2, behavior_on_limit="evict_oldest")
    tokens = []
    for _ in range(3):
        with _client(app) as device:
            tokens.append(cookie_of(device.post("/login/ada")))
        clock.advance(timedelta(seconds=1))
    with _client(app) as replay:
        assert [holding(replay, t).get("/me").status_code for t in tokens] == [401, 200, 200]


def test_elevate_and_sign_out_rotate(sessions: ModuleType, clock: Any) -> None:
    app, _ = build_app(sessions, clock)
    with _client(app) as client:
        before = cookie_of(client.post("/login/ada"))
        after = cookie_of(client.post("/elevate"))
        assert before
        assert after
        assert before != after
        with _client(app) as replay:
            assert holding(replay, before).get("/me").status_code == 401
            assert holding(replay, after).get("/me").status_code == 200


def test_require_recent_auth(sessions: ModuleType, clock: Any) -> None:
    app, _ = build_app(sessions, clock)
    with _client(app) as client:
        client.post("/login/ada")
        assert client.post("/sensitive").status_code == 200
        clock.advance(timedelta(minutes=5, seconds=1))
        stale = client.post("/sensitive")
        assert stale.status_code == 401
        assert stale.json()["detail"]["code"] == "session.reauthentication_required"
        assert "older than 300 seconds" in stale.json()["detail"]["reason"]
        client.post("/elevate")  # a role change is not a fresh sign-in
        assert client.post("/sensitive").status_code == 401
        client.post("/reauthenticate")  # a fresh step-up
        assert client.post("/sensitive").status_code == 200


def test_auth_time_is_recorded(sessions: ModuleType, clock: Any) -> None:
    _, manager = build_app(sessions, clock)
    session, _ = asyncio.run(manager.create(sessions.SessionPrincipal(kind="user", id="ada")))
    assert session.auth_time == START


def test_renewal_with_a_grace_window(sessions: ModuleType, clock: Any) -> None:
    app, _ = build_app(sessions, clock, renewal_interval=600, renewal_grace=20)
    with _client(app) as client:
        old = cookie_of(client.post("/login/ada"))
        clock.advance(timedelta(minutes=9))
        assert cookie_of(client.get("/me")) is None
        clock.advance(timedelta(minutes=1))
        new = cookie_of(client.get("/me"))
    assert old
    assert new
    assert new != old
    with _client(app) as in_flight:
        assert holding(in_flight, old).get("/me").status_code == 200
        clock.advance(timedelta(seconds=21))
        assert holding(in_flight, old).get("/me").status_code == 401
        assert holding(in_flight, new).get("/me").status_code == 200


def test_renewal_is_off_by_default(sessions: ModuleType, clock: Any) -> None:
    app, manager = build_app(sessions, clock)
    assert manager.policy.renewal_interval is None
    with _client(app) as client:
        client.post("/login/ada")
        for _ in range(20):
            clock.advance(timedelta(minutes=20))
            assert cookie_of(client.get("/me")) is None


def test_expiry_slides_with_activity_and_last_seen_writes_are_throttled(sessions: ModuleType, clock: Any) -> None:
    app, manager = build_app(sessions, clock)
    touches: list[Any] = []
    original = manager.store.load

    async def counting_load(session_id: str, *, touch: Any = None) -> Any:
        before = await original(session_id)
        found = await original(session_id, touch=touch)
        if before is not None and found is not None and found.last_seen_at != before.last_seen_at:
            touches.append(found.last_seen_at)
        return found

    manager.store.load = counting_load
    with _client(app) as client:
        client.post("/login/ada")
        for _ in range(10):
            clock.advance(timedelta(seconds=5))
            client.get("/me")
        assert len(touches) == 0  # throttled: under the one-minute touch interval
        for _ in range(8):
            clock.advance(timedelta(minutes=25))
            assert client.get("/me").status_code == 200  # the idle deadline slides
        assert len(touches) == 8


def test_browser_session_persistence_omits_max_age(sessions: ModuleType, clock: Any) -> None:
    app, _ = build_app(sessions, clock, persistence="browser_session")
    with _client(app) as client:
        [cookie] = client.post("/login/ada").headers.get_list("set-cookie")
    assert "Max-Age" not in cookie


def test_concurrent_writes_merge_by_key_and_the_later_write_of_a_key_wins(sessions: ModuleType, clock: Any) -> None:
    _, manager = build_app(sessions, clock)

    async def scenario() -> Any:
        _, token = await manager.create(None, {"n": 0, "a": 0})
        first, second = await manager.load(token), await manager.load(token)
        first.data["n"], second.data["n"] = 1, 2
        first.data["a"] = "first"
        second.data["b"] = "second"
        await manager.commit(first)
        await manager.commit(second)
        return (await manager.load(token)).data

    assert asyncio.run(scenario()) == {"n": 2, "a": "first", "b": "second"}


def test_a_slow_request_cannot_undo_a_logout(sessions: ModuleType, clock: Any) -> None:
    _, manager = build_app(sessions, clock)

    async def scenario() -> tuple[Any, Any]:
        _, token = await manager.create(sessions.SessionPrincipal(kind="user", id="ada"))
        slow = await manager.load(token)
        await manager.revoke(slow.id)
        slow.data["late"] = True
        result = await manager.commit(slow)
        return result, await manager.load(token)

    result, reloaded = asyncio.run(scenario())
    assert result.clear
    assert reloaded.principal is None


def test_presets(sessions: ModuleType) -> None:
    assert sessions.DEFAULT_USER_POLICY.summary() == {
        "ttl_seconds": 604800,
        "idle_timeout_seconds": 1800,
        "rotate_on_privilege_change": True,
        "rotate_on_use": False,
        "renewal_interval_seconds": None,
        "persistence": "persistent",
        "transport": "cookie",
        "max_sessions_per_principal": 10,
        "behavior_on_limit": "evict_oldest",
    }
    assert sessions.API_TOKEN_POLICY.transport == "header"
    assert sessions.EPHEMERAL_POLICY.persistence == "browser_session"
    assert sessions.ADMIN_POLICY.concurrency.behavior_on_limit == "evict_all"


def test_a_preset_policy_can_be_passed_to_setup(sessions: ModuleType, clock: Any) -> None:
    from fastapi import FastAPI

    app = FastAPI()
    settings = sessions.SessionSettings(secret_key=SECRET)
    manager = sessions.setup_sessions(app, settings, clock=clock, policy=sessions.ADMIN_POLICY)
    assert manager.policy is sessions.ADMIN_POLICY


def test_the_secret_key_rotates_without_signing_anyone_out(sessions: ModuleType, clock: Any) -> None:
    old_key = "old-oQd49b8SKP7nvu6GHraWgq9rT27XbzthrMbsjhcC8yA"
    new_key = "new-4XJECDKTuwy1HFrLG0TVZPyXP_AtGEp19jK-pVj-V5M"
    store = sessions.MemoryStore(100, clock=clock)
    before, _ = build_app(sessions, clock, store, secret_key=old_key)
    with _client(before) as client:
        token = cookie_of(client.post("/login/ada"))
    assert token is not None
    session_id = token.split(".")[0]
    old_hash = asyncio.run(store.load(session_id)).secret_hash

    without_fallback, _ = build_app(sessions, clock, store, secret_key=new_key)
    with _client(without_fallback) as client:
        assert holding(client, token).get("/me").status_code == 401

    after, _ = build_app(sessions, clock, store, secret_key=new_key, secret_key_fallbacks=[old_key])
    with _client(after) as client:
        assert holding(client, token).get("/me").json() == {"id": "ada"}
    assert asyncio.run(store.load(session_id)).secret_hash != old_hash  # moved to the new key

    dropped, _ = build_app(sessions, clock, store, secret_key=new_key)
    with _client(dropped) as client:
        assert holding(client, token).get("/me").json() == {"id": "ada"}  # the old key is no longer needed


def test_fallback_keys_must_be_as_long_as_the_secret_key(sessions: ModuleType) -> None:
    with pytest.raises(sessions.SessionConfigurationError, match="SESSION_SECRET_KEY_FALLBACKS key 1 is too short"):
        sessions.load_settings(secret_key=SECRET, secret_key_fallbacks=["short"])
