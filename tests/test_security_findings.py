"""The security review's findings (issue #13), each driven through a real generated package.

- Stateless JWT: logout, sign-out and ending one's own session refuse the old token everywhere
  (a denylist kept with the revocation cutoffs), and no route reports a revocation that did not
  happen.
- The JWT codec compares `iss` exactly, whatever PyJWT release is installed; every requirement
  line asks for PyJWT>=2.10.1 (CVE-2024-53861).
- Secret keys with too little entropy are refused with a message that says what is wrong; every
  fixture key the kit and the generated tests use passes.
- A touch interval the user did not set follows the idle timeout, so a one-second idle timeout works.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import re
import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt
import pytest
import yaml
from fastapi.testclient import TestClient
from runtime_support import BASE_URL, SECRET, START, build_app, cookie_of, generated_package, holding
from services import REDIS_URL, require_server

REPO = Path(__file__).resolve().parent.parent
KEY = "security-findings-hmac-key-7Hq2Lm9Xv4Rt8Np3Ks6Wd1Zb5Fj0Gc"


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("security_findings")
    options = ["token_format=jwt", "management_routes=true", "csrf=true", "stores=memory,redis"]
    with generated_package(root, "sec_findings", options) as package:
        yield package


@pytest.fixture
def clock(sessions: ModuleType) -> Any:
    return sessions.ManualClock(START)


def counting_store(sessions: ModuleType, clock: Any) -> Any:
    """The generated memory store, counting the reads made of it."""

    class CountingStore(sessions.MemoryStore):  # type: ignore[name-defined,misc]
        loads = 0

        async def load(self, session_id: str, **kwargs: Any) -> Any:
            type(self).loads += 1
            return await super().load(session_id, **kwargs)

    return CountingStore(1000, clock=clock)


def stateless_app(sessions: ModuleType, clock: Any, store: Any = None, **settings: Any) -> tuple[Any, Any]:
    app, manager = build_app(sessions, clock, store, jwt_secrets=[KEY], jwt_stateless=True, **settings)
    app.include_router(sessions.session_router())
    return app, manager


def _sign_in(client: TestClient, user: str = "ada") -> str:
    client.cookies.clear()
    token = cookie_of(client.post(f"/login/{user}"))
    assert token is not None
    return token


class TestStatelessRevocation:
    def test_after_logout_the_old_token_gets_401_and_a_fresh_anonymous_session(
        self, sessions: ModuleType, clock: Any
    ) -> None:
        app, _ = stateless_app(sessions, clock)
        with TestClient(app, base_url=BASE_URL) as client:
            token = _sign_in(client)
            client.post("/put/blue")
            token = client.cookies["__Host-session"]
            assert client.post("/logout").status_code == 200
            assert holding(client, token).get("/me").status_code == 401
            assert holding(client, token).get("/get").json() == {"value": None, "user": None}

    def test_a_logout_reaches_another_process_within_the_check_interval(self, sessions: ModuleType, clock: Any) -> None:
        shared = sessions.MemoryStore(1000, clock=clock)
        first, _ = stateless_app(sessions, clock, shared)
        second, _ = stateless_app(sessions, clock, shared)
        with TestClient(first, base_url=BASE_URL) as one, TestClient(second, base_url=BASE_URL) as two:
            token = _sign_in(one)
            assert holding(two, token).get("/me").status_code == 200  # `two` caches what it read
            holding(one, token).post("/logout")
            assert holding(one, token).get("/me").status_code == 401  # at once where it happened
            clock.advance(timedelta(seconds=11))
            assert holding(two, token).get("/me").status_code == 401  # elsewhere, after the interval

    def test_delete_sessions_including_current_counts_only_what_it_really_ended(
        self, sessions: ModuleType, clock: Any
    ) -> None:
        app, _ = stateless_app(sessions, clock)
        with TestClient(app, base_url=BASE_URL) as client:
            laptop = _sign_in(client)
            phone = _sign_in(client)
            clock.advance(timedelta(seconds=1))
            answer = client.delete("/sessions", params={"include_current": "true"})
            # The caller's own session is ended and counted; the laptop's token is refused by
            # a cutoff, which cannot count tokens, so it is not counted.
            assert answer.json() == {"revoked": 1}
            assert holding(client, phone).get("/me").status_code == 401
            assert holding(client, laptop).get("/me").status_code == 401

    def test_ending_ones_own_session_by_handle_takes_effect(self, sessions: ModuleType, clock: Any) -> None:
        app, manager = stateless_app(sessions, clock)
        with TestClient(app, base_url=BASE_URL) as client:
            other = _sign_in(client)
            token = _sign_in(client)
            sid = jwt.decode(token, options={"verify_signature": False})["sid"]
            answer = client.delete(f"/sessions/{manager.fingerprint(sid)}")
            assert answer.json() == {"revoked": 1}
            assert holding(client, token).get("/me").status_code == 401
            assert holding(client, other).get("/me").json() == {"id": "ada"}  # only that one
            unknown = holding(client, other).delete("/sessions/not-a-handle-of-ours")
            assert unknown.status_code == 501  # refused, never a made-up {"revoked": 1}

    def test_revoking_a_principal_or_everyone_claims_no_count(self, sessions: ModuleType, clock: Any) -> None:
        _, manager = stateless_app(sessions, clock)
        ada = sessions.SessionPrincipal(kind="user", id="ada")
        assert asyncio.run(manager.revoke_principal(ada)) == 0
        assert asyncio.run(manager.revoke_all()) == 0

    def test_signing_out_and_elevating_refuse_the_previous_token(self, sessions: ModuleType, clock: Any) -> None:
        app, _ = stateless_app(sessions, clock)
        with TestClient(app, base_url=BASE_URL) as client:
            before = _sign_in(client)
            client.post("/elevate")
            after = client.cookies["__Host-session"]
            assert after != before
            assert holding(client, before).get("/me").status_code == 401
            assert holding(client, after).get("/me").json() == {"id": "ada"}

    def test_a_denylist_costs_no_extra_store_read(self, sessions: ModuleType, clock: Any) -> None:
        store = counting_store(sessions, clock)
        app, _ = stateless_app(sessions, clock, store)
        with TestClient(app, base_url=BASE_URL) as client:
            for _ in range(3):  # three logouts of ada: her denylist holds three ids
                _sign_in(client)
                client.post("/logout")
            token = _sign_in(client)
            clock.advance(timedelta(seconds=11))
            before = type(store).loads
            for _ in range(5):
                assert holding(client, token).get("/me").status_code == 200
            # One read each of the global marker and ada's (cutoff and denylist together),
            # then nothing until the check interval passes again.
            assert type(store).loads - before == 2

    def test_the_denylist_expires_with_the_tokens_it_refuses(self, sessions: ModuleType, clock: Any) -> None:
        store = sessions.MemoryStore(1000, clock=clock)
        app, _ = stateless_app(sessions, clock, store, ttl=timedelta(hours=1), idle_timeout=timedelta(hours=1))
        with TestClient(app, base_url=BASE_URL) as client:
            _sign_in(client)
            client.post("/logout")
        assert len(store) == 1  # ada's marker
        clock.advance(timedelta(hours=1, minutes=1))
        asyncio.run(store.purge_expired(clock()))
        assert len(store) == 0

    def test_a_marker_outlives_the_idle_timeout_on_redis(self, sessions: ModuleType) -> None:
        # Redis drops a record by itself once it is idle too long; a marker must never be
        # idle, or a revoked token would come back after one idle timeout of quiet.
        url = require_server("Redis", REDIS_URL)
        clock = sessions.ManualClock(START)
        redis_store = importlib.import_module(f"{sessions.__name__}.stores.redis")
        store = redis_store.RedisStore.from_url(
            f"{url}?prefix=sksec{secrets.token_hex(6)}", clock=clock, idle_timeout=timedelta(seconds=1)
        )
        settings = sessions.SessionSettings(
            secret_key=SECRET, jwt_secrets=[KEY], jwt_stateless=True, idle_timeout=timedelta(seconds=1)
        )
        manager = sessions.create_manager(store, settings, clock=clock)
        principal = sessions.SessionPrincipal(kind="user", id="ada")

        async def scenario() -> tuple[Any, Any]:
            try:
                _, token = await manager.create(principal)
                session = await manager.load(token)
                session.destroy()
                await manager.commit(session)
                time.sleep(1.5)  # past the idle timeout in Redis's own time
                fresh = sessions.create_manager(store, settings, clock=clock)
                return (await fresh.load(token)).principal, await store.load(manager.cutoffs._marker_id("user:ada"))
            finally:
                await store.delete_all()
                await store.close()

        principal_after, marker = asyncio.run(scenario())
        assert principal_after is None
        assert marker is not None


class TestIssuer:
    @pytest.mark.parametrize("issuer", ["app", "sessions", "p.s", "", "app.sessions.evil", "APP.SESSIONS"])
    def test_a_token_with_another_issuer_is_refused(self, sessions: ModuleType, clock: Any, issuer: str) -> None:
        codec, genuine, forge = self._codec_and_forger(sessions, clock)
        assert codec.decode(genuine) is not None
        assert codec.decode(forge(issuer)) is None

    @pytest.mark.parametrize("issuer", ["app", "sessions", "p.s", ""])
    def test_refused_even_when_the_library_checks_iss_loosely(
        self, sessions: ModuleType, clock: Any, issuer: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # PyJWT 2.10.0 accepted a partial match of a string `iss` (CVE-2024-53861). Emulate such a
        # release by dropping the issuer from what the codec asks PyJWT to check.
        codec, genuine, forge = self._codec_and_forger(sessions, clock)
        real = jwt.decode

        def lenient(*args: Any, **kwargs: Any) -> Any:
            kwargs.pop("issuer", None)
            return real(*args, **kwargs)

        monkeypatch.setattr(importlib.import_module(f"{sessions.__name__}.codec").jwt, "decode", lenient)
        assert codec.decode(genuine) is not None
        assert codec.decode(forge(issuer)) is None

    @staticmethod
    def _codec_and_forger(sessions: ModuleType, clock: Any) -> tuple[Any, str, Any]:
        settings = sessions.SessionSettings(secret_key=SECRET, jwt_secrets=[KEY], jwt_issuer="app.sessions")
        codec = importlib.import_module(f"{sessions.__name__}.codec").codec_from_settings(settings, clock)
        token = sessions.tokens.issue_token()
        record = sessions.SessionRecord(
            session_id=token.session_id,
            secret_hash="",
            data={},
            principal=None,
            created_at=clock(),
            last_seen_at=clock(),
            expires_at=clock() + timedelta(hours=1),
        )
        genuine = codec.encode(token, record)
        header = jwt.get_unverified_header(genuine)
        claims = jwt.decode(genuine, options={"verify_signature": False})

        def forge(issuer: str) -> str:
            # Signed with the real key: only the issuer is wrong.
            return jwt.encode({**claims, "iss": issuer}, KEY.encode(), algorithm="HS256", headers=header)

        return codec, genuine, forge


def test_every_pyjwt_requirement_excludes_the_vulnerable_releases() -> None:
    lines = [
        *_strings(yaml.safe_load((REPO / "module.yaml").read_text())),
        *re.findall(r'"([^"]+)"', (REPO / "pyproject.toml").read_text()),
    ]
    pyjwt = [line for line in lines if line.lower().startswith("pyjwt")]
    assert pyjwt, "no PyJWT requirement found"
    for line in pyjwt:
        match = re.fullmatch(r"PyJWT(\[crypto\])?>=(\d+)\.(\d+)\.?(\d+)?", line)
        assert match, line
        assert tuple(int(part or 0) for part in match.groups()[1:]) >= (2, 10, 1), line


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


class TestSecretKeys:
    @pytest.mark.parametrize(
        ("key", "problem"),
        [
            ("a" * 32, "too few characters"),
            ("ab" * 20, "too few characters"),
            ("changeme" * 4, "placeholder"),
            ("changeme-" + "x" * 30, "placeholder"),
            ("secret" * 6, "placeholder"),
            ("your-secret-key", "too short"),
            ("your-secret-key-goes-here-please-change-it", "placeholder"),
            ("abcdefghijklmnopqrstuvwxyz0123456789", "runs"),
            ("x9x8x7x6x5x4x3x2x1x0" * 2, "bits of entropy"),
        ],
    )
    def test_weak_keys_are_refused_with_what_is_wrong_and_how_to_fix_it(
        self, sessions: ModuleType, key: str, problem: str
    ) -> None:
        with pytest.raises(sessions.SessionConfigurationError) as caught:
            sessions.load_settings(secret_key=key)
        message = caught.value.message
        assert "SESSION_SECRET_KEY" in message
        assert problem in message
        assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in message
        assert key not in message  # never echoed

    def test_weak_fallback_keys_are_refused_by_number(self, sessions: ModuleType) -> None:
        with pytest.raises(sessions.SessionConfigurationError, match="FALLBACKS key 2 looks like a placeholder"):
            sessions.load_settings(secret_key=SECRET, secret_key_fallbacks=[KEY, "change-me-" * 4])

    def test_generated_keys_always_pass(self, sessions: ModuleType) -> None:
        for _ in range(2000):
            assert sessions.settings.secret_key_problem(secrets.token_urlsafe(32)) is None
            assert sessions.settings.secret_key_problem(secrets.token_hex(32)) is None

    def test_every_fixture_key_of_the_kit_and_the_generated_tests_passes(self, sessions: ModuleType) -> None:
        keys = _fixture_keys()
        assert len(keys) >= 10, keys  # the scan finds them
        weak = {key: sessions.settings.secret_key_problem(key) for key in keys}
        assert {key: problem for key, problem in weak.items() if problem} == {}


def _fixture_keys() -> set[str]:
    """String constants named like keys or secrets in the kit's tests and benches."""
    found: set[str] = set()
    sources = [*REPO.glob("tests/*.py"), *REPO.glob("bench/*.py"), *REPO.glob("templates/tests/**/*.j2")]
    named = re.compile(r"^\s*(\w*(?:SECRET|KEY)\w*)\s*=\s*\"([^\"{}]+)\"\s*$", re.MULTILINE)
    for path in sources:
        text = path.read_text()
        for name, value in named.findall(text):
            if len(value) >= 32 and name.isupper() and "HEADER" not in name:
                found.add(value)
        if path.suffix == ".py":
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.keyword) and node.arg in {"secret_key", "secret_key_fallbacks"}:
                    for constant in ast.walk(node.value):
                        if isinstance(constant, ast.Constant) and isinstance(constant.value, str):
                            found.add(constant.value)
    return {key for key in found if len(key) >= 32}


class TestTouchInterval:
    def test_a_one_second_idle_timeout_works(self, sessions: ModuleType, clock: Any) -> None:
        settings = sessions.SessionSettings(secret_key=SECRET, idle_timeout=1)
        assert settings.touch_interval == timedelta(milliseconds=250)
        app, _ = build_app(sessions, clock, idle_timeout=timedelta(seconds=1))
        with TestClient(app, base_url=BASE_URL) as client:
            client.post("/login/ada")
            for _ in range(5):  # activity keeps it alive, touch by touch
                clock.advance(timedelta(milliseconds=600))
                assert client.get("/me").status_code == 200
            clock.advance(timedelta(seconds=1))
            assert client.get("/me").status_code == 401

    def test_from_the_environment_too(self, sessions: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SESSION_SECRET_KEY", SECRET)
        monkeypatch.setenv("SESSION_IDLE_TIMEOUT", "20")
        assert sessions.load_settings().touch_interval == timedelta(seconds=5)
        monkeypatch.setenv("SESSION_TOUCH_INTERVAL", "30")
        with pytest.raises(sessions.SessionConfigurationError) as caught:
            sessions.load_settings()
        assert "SESSION_TOUCH_INTERVAL (0:00:30) must be shorter than SESSION_IDLE_TIMEOUT (0:00:20)" in str(
            caught.value
        )

    def test_a_conflict_with_a_default_says_which_value_is_the_default(self, sessions: ModuleType) -> None:
        with pytest.raises(sessions.SessionConfigurationError) as caught:
            sessions.load_settings(secret_key=SECRET, idle_timeout=timedelta(days=400))
        assert "SESSION_IDLE_TIMEOUT (400 days, 0:00:00) must not exceed SESSION_TTL" in str(caught.value)
        assert "the default" in str(caught.value)
