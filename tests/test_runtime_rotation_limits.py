"""Runtime: rotations and renewals never count as sign-ins against a session limit.

Only a sign-in adds a session. Renewing a token, rotating it on use or on a role change replaces one, so
it must never evict the principal's other sessions, nor the session itself, nor be refused with 409.
A real package is generated and a real FastAPI app driven through httpx with a manual clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from runtime_support import BASE_URL, SECRET, START, build_app, cookie_of, generated_package, holding

BEHAVIORS = ["evict_oldest", "reject", "evict_all"]


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("rt_rotation_limits")
    with generated_package(root, "rt_rotation_limits", ["stores=memory,redis"]) as package:
        yield package


@pytest.fixture
def clock(sessions: ModuleType) -> Any:
    return sessions.ManualClock(START)


def sign_in_twice(client: TestClient) -> tuple[str, str]:
    """Two sessions of the same principal, oldest first."""
    first = cookie_of(client.post("/login/ada"))
    client.cookies.clear()
    second = cookie_of(client.post("/login/ada"))
    assert first is not None
    assert second is not None
    return first, second


@pytest.mark.parametrize("behavior", BEHAVIORS)
def test_renewal_at_the_limit_keeps_every_session(sessions: ModuleType, clock: Any, behavior: str) -> None:
    app, _ = build_app(
        sessions,
        clock,
        renewal_interval=600,
        renewal_grace=20,
        max_sessions_per_principal=2,
        behavior_on_limit=behavior,
    )
    with TestClient(app, base_url=BASE_URL) as client:
        first, second = sign_in_twice(client)
        first_alive = holding(client, first).get("/me").status_code == 200
        assert first_alive is (behavior != "evict_all")  # evict_all: the second sign-in ended it
        clock.advance(timedelta(minutes=11))
        renewed = holding(client, second).get("/me")
        assert renewed.status_code == 200
        token = cookie_of(renewed)
        assert token is not None  # a renewed token was issued
        assert (holding(client, first).get("/me").status_code == 200) is first_alive
        assert holding(client, token).get("/me").json() == {"id": "ada"}


@pytest.mark.parametrize("behavior", BEHAVIORS)
def test_rotation_on_every_use_at_the_limit_keeps_the_user_signed_in(
    sessions: ModuleType, clock: Any, behavior: str
) -> None:
    app, _ = build_app(sessions, clock, rotate_on_use=True, max_sessions_per_principal=1, behavior_on_limit=behavior)
    with TestClient(app, base_url=BASE_URL) as client:
        assert client.post("/login/ada").status_code == 200
        for _ in range(3):
            assert client.get("/me").json() == {"id": "ada"}


def test_a_sign_in_still_applies_the_limit(sessions: ModuleType, clock: Any) -> None:
    app, _ = build_app(sessions, clock, max_sessions_per_principal=1, behavior_on_limit="evict_oldest")
    with TestClient(app, base_url=BASE_URL) as client:
        first, second = sign_in_twice(client)
        assert holding(client, first).get("/me").status_code == 401
        assert holding(client, second).get("/me").json() == {"id": "ada"}


def test_the_admin_preset_keeps_an_active_admin_signed_in(sessions: ModuleType, clock: Any) -> None:
    app = FastAPI()
    settings = sessions.SessionSettings(secret_key=SECRET, transport="cookie")
    store = sessions.MemoryStore(100, clock=clock)
    sessions.setup_sessions(app, settings, store=store, clock=clock, policy=sessions.ADMIN_POLICY)
    principal_dep = Depends(sessions.require_principal)
    session_dep = Depends(sessions.get_session)

    @app.post("/login")
    async def login(session: Any = session_dep) -> dict[str, bool]:
        session.mark_authenticated(sessions.SessionPrincipal(kind="user", id="root"))
        return {"ok": True}

    @app.get("/me")
    async def me(principal: Any = principal_dep) -> dict[str, str]:
        return {"id": principal.id}

    with TestClient(app, base_url=BASE_URL) as client:
        client.post("/login")
        for _ in range(8):  # two hours of activity, a renewal every 15 minutes
            clock.advance(timedelta(minutes=14))
            assert client.get("/me").json() == {"id": "root"}


def test_a_role_change_alone_is_not_a_fresh_sign_in(sessions: ModuleType, clock: Any) -> None:
    session = sessions.Session(None, clock=clock)
    session.mark_authenticated(sessions.SessionPrincipal(kind="user", id="ada"))
    signed_in_at = session.auth_time
    clock.advance(timedelta(minutes=20))
    session.elevate(roles=["admin"])
    assert session.auth_time == signed_in_at
    assert not session.authenticated_within(timedelta(minutes=5))
    session.elevate(reauthenticated=True)
    assert session.authenticated_within(timedelta(minutes=5))


def test_the_redis_store_expires_idle_keys_with_the_policys_idle_timeout(sessions: ModuleType, clock: Any) -> None:
    app = FastAPI()
    settings = sessions.SessionSettings(secret_key=SECRET, store_url="redis://127.0.0.1:6379/0")
    policy = replace(sessions.API_TOKEN_POLICY, concurrency=None)
    manager = sessions.setup_sessions(app, settings, clock=clock, policy=policy)
    assert manager.store.idle_timeout == timedelta(days=7)
    assert settings.idle_timeout != timedelta(days=7)
