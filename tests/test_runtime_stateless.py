"""Runtime, stateless JWT mode: the token carries the session, revocation is by cutoff.

Driven through a real generated FastAPI app. The store is the generated memory store with its calls
counted, which is how "verified without a store round trip" is checked.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from types import ModuleType
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from runtime_support import BASE_URL, SECRET, START, build_app, cookie_of, generated_package, holding

KEY = "runtime-stateless-hmac-key-with-more-than-256-bits-0123"


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("rt_stateless")
    with generated_package(root, "rt_stateless", ["token_format=jwt"]) as package:
        yield package


@pytest.fixture
def clock(sessions: ModuleType) -> Any:
    return sessions.ManualClock(START)


def counting_store(sessions: ModuleType, clock: Any) -> Any:
    """The generated memory store, counting every call made to it."""

    class CountingStore(sessions.MemoryStore):  # type: ignore[name-defined,misc]
        calls: Counter[str]

        def __getattribute__(self, name: str) -> Any:
            attribute = super().__getattribute__(name)
            if name in {"load", "create", "save", "delete", "touch", "list_by_principal", "delete_by_principal"}:
                super().__getattribute__("calls")[name] += 1
            return attribute

    store = CountingStore(1000, clock=clock)
    store.calls = Counter()
    return store


def stateless_app(sessions: ModuleType, clock: Any, store: Any = None, **settings: Any) -> tuple[Any, Any]:
    return build_app(sessions, clock, store, jwt_secrets=[KEY], jwt_stateless=True, **settings)


def test_the_manager_is_stateless_and_the_token_carries_the_session(sessions: ModuleType, clock: Any) -> None:
    app, manager = stateless_app(sessions, clock)
    assert isinstance(manager, sessions.StatelessSessionManager)
    with TestClient(app, base_url=BASE_URL) as client:
        client.post("/login/ada")
        token = cookie_of(client.post("/put/blue"))
    assert token is not None
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["typ"] == "session-state+jwt"
    assert claims["ses"]["data"] == {"value": "blue"}
    assert claims["ses"]["principal"]["id"] == "ada"
    assert asyncio.run(manager.store.count_by_principal("user", "ada")) == 0


def test_another_process_with_an_empty_store_reads_the_session(sessions: ModuleType, clock: Any) -> None:
    first, _ = stateless_app(sessions, clock)
    with TestClient(first, base_url=BASE_URL) as client:
        client.post("/login/ada")
        token = cookie_of(client.post("/put/green"))
    assert token is not None
    second, _ = stateless_app(sessions, clock)  # a fresh store: nothing in common but the key
    with TestClient(second, base_url=BASE_URL) as client:
        assert holding(client, token).get("/get").json() == {"value": "green", "user": "ada"}


def test_reads_make_no_store_round_trip_within_the_check_interval(sessions: ModuleType, clock: Any) -> None:
    store = counting_store(sessions, clock)
    app, _ = stateless_app(sessions, clock, store)
    with TestClient(app, base_url=BASE_URL) as client:
        client.post("/login/ada")
        client.get("/get")  # reads the cutoffs once
        store.calls.clear()
        for _ in range(20):
            assert client.get("/get").json()["user"] == "ada"
        assert store.calls == Counter()
        clock.advance(timedelta(seconds=11))  # past the 10 s default check interval
        client.get("/get")
        assert store.calls["load"] == 2  # the global and the principal's cutoff
        assert sum(store.calls.values()) == 2


def test_check_interval_zero_reads_the_cutoffs_on_every_request(sessions: ModuleType, clock: Any) -> None:
    store = counting_store(sessions, clock)
    app, _ = stateless_app(sessions, clock, store, jwt_revocation_check=timedelta(0))
    with TestClient(app, base_url=BASE_URL) as client:
        client.post("/login/ada")
        store.calls.clear()
        for _ in range(3):
            client.get("/get")
        assert store.calls["load"] == 6


def test_revoking_a_principal_refuses_its_earlier_tokens(sessions: ModuleType, clock: Any) -> None:
    app, manager = stateless_app(sessions, clock)
    with TestClient(app, base_url=BASE_URL) as client:
        ada = cookie_of(client.post("/login/ada"))
        client.cookies.clear()
        bob = cookie_of(client.post("/login/bob"))
        assert ada is not None
        assert bob is not None
        clock.advance(timedelta(seconds=1))
        asyncio.run(manager.revoke_principal(sessions.SessionPrincipal(kind="user", id="ada")))
        assert holding(client, ada).get("/me").status_code == 401
        assert holding(client, bob).get("/me").json() == {"id": "bob"}
        clock.advance(timedelta(seconds=1))
        client.cookies.clear()
        again = cookie_of(client.post("/login/ada"))  # a sign-in after the cutoff works
        assert again is not None
        assert holding(client, again).get("/me").json() == {"id": "ada"}


def test_revocation_reaches_another_process_within_the_check_interval(sessions: ModuleType, clock: Any) -> None:
    shared = sessions.MemoryStore(1000, clock=clock)
    first, revoker = stateless_app(sessions, clock, shared)
    second, _ = stateless_app(sessions, clock, shared)
    with TestClient(first, base_url=BASE_URL) as one, TestClient(second, base_url=BASE_URL) as two:
        token = cookie_of(one.post("/login/ada"))
        assert token is not None
        assert holding(two, token).get("/me").status_code == 200  # `two` caches "no cutoff"
        clock.advance(timedelta(seconds=1))
        asyncio.run(revoker.revoke_principal(sessions.SessionPrincipal(kind="user", id="ada")))
        assert holding(one, token).get("/me").status_code == 401  # at once where it was revoked
        clock.advance(timedelta(seconds=10))
        assert holding(two, token).get("/me").status_code == 401  # elsewhere, after the interval


def test_revoke_principal_can_spare_the_current_session(sessions: ModuleType, clock: Any) -> None:
    app, manager = stateless_app(sessions, clock)
    with TestClient(app, base_url=BASE_URL) as client:
        laptop = cookie_of(client.post("/login/ada"))
        client.cookies.clear()
        phone = cookie_of(client.post("/login/ada"))
        assert laptop is not None
        assert phone is not None
        current = jwt.decode(phone, options={"verify_signature": False})["sid"]
        clock.advance(timedelta(seconds=1))
        principal = sessions.SessionPrincipal(kind="user", id="ada")
        asyncio.run(manager.revoke_principal(principal, except_current=current))
        assert holding(client, laptop).get("/me").status_code == 401
        assert holding(client, phone).get("/me").json() == {"id": "ada"}


def test_revoke_all_refuses_every_earlier_token_anonymous_ones_too(sessions: ModuleType, clock: Any) -> None:
    app, manager = stateless_app(sessions, clock)
    with TestClient(app, base_url=BASE_URL) as client:
        anonymous = cookie_of(client.post("/put/red"))
        client.cookies.clear()
        ada = cookie_of(client.post("/login/ada"))
        assert anonymous is not None
        assert ada is not None
        clock.advance(timedelta(seconds=1))
        asyncio.run(manager.revoke_all())
        assert holding(client, ada).get("/me").status_code == 401
        assert holding(client, anonymous).get("/get").json() == {"value": None, "user": None}


def test_login_rotates_the_session_id(sessions: ModuleType, clock: Any) -> None:
    app, _ = stateless_app(sessions, clock)
    with TestClient(app, base_url=BASE_URL) as client:
        before = cookie_of(client.post("/put/x"))
        after = cookie_of(client.post("/login/ada"))
    assert before is not None
    assert after is not None
    sid = [jwt.decode(token, options={"verify_signature": False})["sid"] for token in (before, after)]
    assert sid[0] != sid[1]


def test_idle_and_absolute_timeouts_hold_without_a_store(sessions: ModuleType, clock: Any) -> None:
    app, _ = stateless_app(sessions, clock, idle_timeout=timedelta(minutes=30), ttl=timedelta(hours=2))
    with TestClient(app, base_url=BASE_URL) as client:
        token = cookie_of(client.post("/login/ada"))
        assert token is not None
        clock.advance(timedelta(minutes=31))
        assert holding(client, token).get("/me").status_code == 401  # idle
        client.cookies.clear()
        assert cookie_of(client.post("/login/ada")) is not None  # the jar keeps what responses set
        for _ in range(4):  # activity slides the idle timeout: each touch re-issues the token
            clock.advance(timedelta(minutes=25))
            assert client.get("/me").status_code == 200
        clock.advance(timedelta(minutes=25))  # 125 minutes after sign-in: past the absolute limit
        assert client.get("/me").status_code == 401


def test_unchanged_reads_within_the_touch_interval_send_no_new_token(sessions: ModuleType, clock: Any) -> None:
    app, _ = stateless_app(sessions, clock)
    with TestClient(app, base_url=BASE_URL) as client:
        client.post("/login/ada")
        assert cookie_of(client.get("/get")) is None
        clock.advance(timedelta(minutes=2))
        assert cookie_of(client.get("/get")) is not None  # "last seen" refreshed


def test_a_forged_or_stateful_token_is_refused(sessions: ModuleType, clock: Any) -> None:
    app, _ = stateless_app(sessions, clock)
    stored_app, _ = build_app(sessions, clock, jwt_secrets=[KEY])
    with TestClient(stored_app, base_url=BASE_URL) as client:
        stateful = cookie_of(client.post("/login/ada"))
    with TestClient(app, base_url=BASE_URL) as client:
        genuine = cookie_of(client.post("/login/ada"))
        assert genuine is not None
        assert stateful is not None
        claims = jwt.decode(genuine, options={"verify_signature": False})
        claims["ses"]["principal"]["id"] = "root"
        forged = jwt.encode(claims, "not-the-key-but-long-enough-for-hmac-0123456789", algorithm="HS256")
        for token in (stateful, forged, genuine[:-2]):
            assert holding(client, token).get("/me").status_code == 401


def test_logout_clears_the_client_copy(sessions: ModuleType, clock: Any) -> None:
    app, _ = stateless_app(sessions, clock)
    with TestClient(app, base_url=BASE_URL) as client:
        client.post("/login/ada")
        response = client.post("/logout")
        assert response.headers["set-cookie"].startswith("__Host-session=; Max-Age=0")
        assert client.get("/me").status_code == 401


def test_listing_and_single_revocation_are_refused_clearly(sessions: ModuleType, clock: Any) -> None:
    _, manager = stateless_app(sessions, clock)
    principal = sessions.SessionPrincipal(kind="user", id="ada")
    for call in (manager.list_sessions(principal), manager.revoke("x"), manager.revoke_handle(principal, "h")):
        with pytest.raises(sessions.StatelessUnsupported) as caught:
            asyncio.run(call)
        assert caught.value.http_status == 501
        assert caught.value.code == "session.stateless_unsupported"


def test_a_session_limit_is_refused_at_startup(sessions: ModuleType) -> None:
    with pytest.raises(sessions.SessionConfigurationError, match="SESSION_MAX_SESSIONS_PER_PRINCIPAL"):
        sessions.load_settings(secret_key=SECRET, jwt_stateless=True, max_sessions_per_principal=3)
    settings = sessions.load_settings(secret_key=SECRET, jwt_secrets=[KEY], jwt_stateless=True)
    limited = replace(sessions.SessionPolicy.from_settings(settings), concurrency=sessions.ConcurrencyPolicy(2))
    with pytest.raises(sessions.SessionConfigurationError, match="per-principal session limit"):
        sessions.create_manager(sessions.MemoryStore(10), settings, policy=limited)


def test_the_revocation_check_interval_is_bounded(sessions: ModuleType) -> None:
    with pytest.raises(sessions.SessionConfigurationError, match="SESSION_JWT_REVOCATION_CHECK"):
        sessions.load_settings(secret_key=SECRET, jwt_revocation_check=timedelta(minutes=10))


def test_settings_from_the_environment_choose_the_stateless_manager(
    sessions: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSION_SECRET_KEY", SECRET)
    monkeypatch.setenv("SESSION_JWT_STATELESS", "true")
    monkeypatch.setenv("SESSION_JWT_REVOCATION_CHECK", "5")
    settings = sessions.load_settings()
    assert settings.jwt_revocation_check == timedelta(seconds=5)
    manager = sessions.create_manager(sessions.MemoryStore(10), settings)
    assert isinstance(manager, sessions.StatelessSessionManager)
    monkeypatch.setenv("SESSION_JWT_STATELESS", "false")
    stored = sessions.create_manager(sessions.MemoryStore(10), sessions.load_settings())
    assert not isinstance(stored, sessions.StatelessSessionManager)


def test_cutoffs_survive_a_secret_key_rotation(sessions: ModuleType, clock: Any) -> None:
    old_key = "old-oQd49b8SKP7nvu6GHraWgq9rT27XbzthrMbsjhcC8yA"
    new_key = "new-4XJECDKTuwy1HFrLG0TVZPyXP_AtGEp19jK-pVj-V5M"
    store = sessions.MemoryStore(1000, clock=clock)
    before, manager = build_app(sessions, clock, store, secret_key=old_key, jwt_stateless=True)
    with TestClient(before, base_url=BASE_URL) as client:
        token = cookie_of(client.post("/login/ada"))
    assert token is not None
    clock.advance(timedelta(seconds=1))
    asyncio.run(manager.revoke_principal(sessions.SessionPrincipal(kind="user", id="ada")))
    after, _ = build_app(sessions, clock, store, secret_key=new_key, secret_key_fallbacks=[old_key], jwt_stateless=True)
    with TestClient(after, base_url=BASE_URL) as client:
        assert holding(client, token).get("/me").status_code == 401
