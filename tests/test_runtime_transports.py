"""Runtime, transports: header transport, no tokens from query or form, CSRF, cookie rules, client facts."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from runtime_support import BASE_URL, SECRET, START, build_app, cookie_of, generated_package, holding


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("rt_transports")
    with generated_package(root, "rt_transports", ["transport=header", "management_routes=true"]) as package:
        yield package


@pytest.fixture
def clock(sessions: ModuleType) -> Any:
    return sessions.ManualClock(START)


def _header_app(sessions: ModuleType, clock: Any, **extra: Any) -> Any:
    from fastapi import FastAPI

    app = FastAPI()
    settings = sessions.SessionSettings(secret_key=SECRET, **extra)
    manager = sessions.setup_sessions(app, settings, clock=clock)
    app.include_router(sessions.session_router())

    @app.post("/token/{user}")
    async def token(user: str) -> dict[str, str]:
        _, raw = await manager.create(sessions.SessionPrincipal(kind="user", id=user))
        return {"token": raw}

    return app


def test_the_generated_default_transport_is_the_header(sessions: ModuleType, clock: Any) -> None:
    app = _header_app(sessions, clock)
    with TestClient(app, base_url=BASE_URL) as api:
        token = api.post("/token/ada").json()["token"]
        listing = api.get("/sessions", headers={"Authorization": f"Bearer {token}"})
        assert listing.status_code == 200
        assert "set-cookie" not in listing.headers
        assert api.get("/sessions", headers={"Authorization": f"bearer {token}"}).status_code == 200
        assert api.get("/sessions", headers={"Authorization": f"Basic {token}"}).status_code == 401


def test_a_configured_header(sessions: ModuleType, clock: Any) -> None:
    app = _header_app(sessions, clock, header_name="X-Session-Token", header_scheme="")
    with TestClient(app, base_url=BASE_URL) as api:
        token = api.post("/token/ada").json()["token"]
        assert api.get("/sessions", headers={"X-Session-Token": token}).status_code == 200
        assert api.get("/sessions", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_header_client_follows_rotation_renewal_and_sign_out(sessions: ModuleType, clock: Any) -> None:
    app, _ = build_app(sessions, clock, transport="header", renewal_interval=600, renewal_grace=0)
    with TestClient(app, base_url=BASE_URL) as api:
        signed_in = api.post("/login/ada")
        token = signed_in.headers["session-token"]
        assert signed_in.headers["cache-control"] == "no-store"
        bearer = {"Authorization": f"Bearer {token}"}
        elevated = api.post("/elevate", headers=bearer)
        rotated = elevated.headers["session-token"]
        assert rotated != token
        assert api.get("/me", headers=bearer).status_code == 401  # the old token died with the rotation
        clock.advance(timedelta(minutes=11))
        renewed = api.get("/me", headers={"Authorization": f"Bearer {rotated}"})
        assert renewed.json() == {"id": "ada"}
        latest = renewed.headers["session-token"]
        assert api.get("/me", headers={"Authorization": f"Bearer {latest}"}).json() == {"id": "ada"}
        unchanged = api.get("/me", headers={"Authorization": f"Bearer {latest}"})
        assert "session-token" not in unchanged.headers  # nothing new to hand out
        signed_out = api.post("/logout", headers={"Authorization": f"Bearer {latest}"})
        assert signed_out.headers["session-token"] == ""
        assert "set-cookie" not in signed_out.headers


def test_the_response_header_is_configurable(sessions: ModuleType, clock: Any) -> None:
    app, _ = build_app(sessions, clock, transport="header", header_response_name="X-New-Token")
    with TestClient(app, base_url=BASE_URL) as api:
        response = api.post("/login/ada")
        assert "session-token" not in response.headers
        assert api.get("/me", headers={"Authorization": f"Bearer {response.headers['x-new-token']}"}).status_code == 200


def test_tokens_in_query_or_form_are_never_accepted(sessions: ModuleType, clock: Any) -> None:
    header_app = _header_app(sessions, clock)
    cookie_app, _ = build_app(sessions, clock)
    with TestClient(header_app, base_url=BASE_URL) as api:
        token = api.post("/token/ada").json()["token"]
        for name in ("token", "session", "access_token", "__Host-session", "Authorization"):
            assert api.get("/sessions", params={name: token}).status_code == 401
            assert api.request("GET", "/sessions", data={name: token}).status_code == 401
    with TestClient(cookie_app, base_url=BASE_URL) as browser:
        cookie = cookie_of(browser.post("/login/ada"))
        browser.cookies.clear()
        assert cookie is not None
        assert browser.get("/me", params={"__Host-session": cookie}).status_code == 401
        # Had the form's token been taken, these would have written to, then ended, ada's session.
        browser.post("/put/stolen", data={"__Host-session": cookie}, headers={"Origin": BASE_URL})
        browser.post("/logout", data={"__Host-session": cookie}, headers={"Origin": BASE_URL})
        browser.cookies.clear()
        assert holding(browser, cookie).get("/get").json() == {"value": None, "user": "ada"}


class TestCsrf:
    def test_cross_origin_unsafe_requests_get_a_clear_403(self, sessions: ModuleType, clock: Any) -> None:
        app, _ = build_app(sessions, clock)
        with TestClient(app, base_url=BASE_URL) as browser:
            no_cookie = browser.post("/login/ada", headers={"Origin": "https://evil.example"})
            assert no_cookie.status_code == 200  # no session cookie yet: nothing to forge
            refused = browser.post("/login/ada", headers={"Origin": "https://evil.example"})
            fetch_refused = browser.post("/login/ada", headers={"Sec-Fetch-Site": "cross-site"})
            same_origin = browser.post("/login/ada", headers={"Origin": BASE_URL})
            fetch_same = browser.post("/put/x", headers={"Sec-Fetch-Site": "same-origin"})
            safe = browser.get("/get", headers={"Origin": "https://evil.example"})
        assert refused.status_code == 403
        assert refused.json() == {
            "error": {"code": "session.csrf_failed", "message": refused.json()["error"]["message"]}
        }
        assert fetch_refused.status_code == 403
        assert (same_origin.status_code, fetch_same.status_code, safe.status_code) == (200, 200, 200)

    def test_trusted_origins(self, sessions: ModuleType, clock: Any) -> None:
        app, _ = build_app(sessions, clock, csrf_trusted_origins=["https://admin.example"])
        with TestClient(app, base_url=BASE_URL) as browser:
            browser.post("/login/ada")
            assert browser.post("/login/ada", headers={"Origin": "https://admin.example"}).status_code == 200
            assert browser.post("/login/ada", headers={"Origin": "https://evil.example"}).status_code == 403

    def test_double_submit(self, sessions: ModuleType, clock: Any) -> None:
        app, _ = build_app(sessions, clock, csrf_double_submit=True)
        with TestClient(app, base_url=BASE_URL) as browser:
            login = browser.post("/login/ada")
            token = cookie_of(login, "__Host-csrf")
            assert token
            assert browser.post("/put/x").status_code == 403
            assert browser.post("/put/x", headers={"X-CSRF-Token": token}).status_code == 200

    def test_header_sessions_need_no_csrf_check(self, sessions: ModuleType, clock: Any) -> None:
        app = _header_app(sessions, clock)
        with TestClient(app, base_url=BASE_URL) as api:
            response = api.post("/token/ada", headers={"Origin": "https://elsewhere.example"})
        assert response.status_code == 200


class TestCookieRules:
    def test_host_prefix_by_default(self, sessions: ModuleType) -> None:
        settings = sessions.SessionSettings(secret_key=SECRET)
        assert settings.cookie_name.startswith("__Host-")

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"cookie_samesite": "none", "cookie_secure": False, "cookie_name": "sid"}, "SAMESITE=none"),
            ({"cookie_domain": "example.com"}, "DOMAIN"),
            ({"cookie_path": "/app"}, "COOKIE_PATH"),
        ],
    )
    def test_unsafe_cookie_settings_are_refused_at_startup(
        self, sessions: ModuleType, overrides: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(sessions.SessionConfigurationError, match=message):
            sessions.load_settings(secret_key=SECRET, **overrides)

    def test_a_domain_is_warned_about(self, sessions: ModuleType, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING):
            sessions.load_settings(secret_key=SECRET, cookie_name="sid", cookie_domain="example.com")
        assert "SESSION_COOKIE_DOMAIN" in caplog.text

    def test_cookies_over_4096_bytes_are_refused(self, sessions: ModuleType) -> None:
        with pytest.raises(sessions.TokenTooLarge):
            sessions.CookieTransport("__Host-session").write("t" * 4085, 60)

    def test_set_or_cleared_cookies_are_not_cached(self, sessions: ModuleType, clock: Any) -> None:
        app, _ = build_app(sessions, clock)
        with TestClient(app, base_url=BASE_URL) as browser:
            assert browser.post("/login/ada").headers["cache-control"] == "no-store"
            assert browser.post("/logout").headers["cache-control"] == "no-store"


class TestClientFacts:
    def _listing(self, sessions: ModuleType, clock: Any, peer: str, **settings: Any) -> dict[str, Any]:
        app, _ = build_app(sessions, clock, **settings)
        app.include_router(sessions.session_router())
        headers = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7", "User-Agent": "Mozilla/5.0 (iPhone) Safari/604.1"}
        with TestClient(app, base_url=BASE_URL, client=(peer, 5000)) as browser:
            browser.post("/login/ada", headers=headers)
            [entry] = browser.get("/sessions").json()
        return dict(entry)

    def test_forwarded_for_is_ignored_from_untrusted_peers(self, sessions: ModuleType, clock: Any) -> None:
        entry = self._listing(sessions, clock, "192.0.2.10")
        assert entry["ip"] == "192.0.2.10"
        assert entry["device"] == "Safari on iOS"
        assert entry["current"] is True

    def test_forwarded_for_is_honoured_from_trusted_proxies(self, sessions: ModuleType, clock: Any) -> None:
        entry = self._listing(sessions, clock, "10.1.2.3", trusted_proxies=["10.0.0.0/8"])
        assert entry["ip"] == "203.0.113.7"
