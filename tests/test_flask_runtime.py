"""A generated Flask package at run time: the synchronous core behind Flask's test client,
on every store (memory, file, SQLite, PostgreSQL, MariaDB, Redis).

Server-backed stores skip with a reason when the server is absent (and fail when
SESSION_KIT_REQUIRE_SERVICES=1); each run uses its own table or key prefix and removes it.
"""

from __future__ import annotations

import importlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from runtime_support import SECRET, START, generated_package
from services import MARIADB_URL, POSTGRES_URL, REDIS_URL, free_port, require_server, sync_url

flask = pytest.importorskip("flask")

TOP = "flaskrt"
PACKAGE = f"{TOP}.sessions"
COOKIE = "__Host-session"
ORIGIN = {"Origin": "https://localhost"}  # what a browser sends on a same-site POST
STORES = ["memory", "file", "sqlite", "postgresql", "mariadb", "redis"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("flask-runtime")


@pytest.fixture(scope="module")
def sessions(project: Path) -> Iterator[ModuleType]:
    with generated_package(project, TOP, ["stores=memory,file,sql,redis"], framework="flask") as package:
        yield package


@pytest.fixture
def clock(sessions: ModuleType) -> Any:
    return sessions.ManualClock(START)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, sessions: ModuleType, clock: Any, tmp_path: Path) -> Iterator[Any]:
    kind = request.param
    if kind == "memory":
        yield sessions.MemoryStore(100, clock=clock)
    elif kind == "file":
        yield importlib.import_module(f"{PACKAGE}.stores.file").FileStore(tmp_path / "sessions", clock=clock)
    elif kind == "redis":
        url = require_server("Redis", REDIS_URL)
        redis_store = sessions.open_store(f"{url}?prefix=flaskrt{secrets.token_hex(4)}", clock=clock)
        try:
            yield redis_store
        finally:
            redis_store.delete_all()
            redis_store.close()
    else:
        urls = {
            "sqlite": lambda: f"sqlite:///{tmp_path / 'sessions.db'}",
            "postgresql": lambda: sync_url(require_server("PostgreSQL", POSTGRES_URL)),
            "mariadb": lambda: sync_url(require_server("MariaDB", MARIADB_URL)),
        }
        sql = importlib.import_module(f"{PACKAGE}.stores.sql")
        table = f"flask_sessions_{secrets.token_hex(4)}"
        sql_store = sql.SQLStore(sql.create_engine(urls[kind]()), table_name=table, clock=clock)
        sql_store.create_tables()
        try:
            yield sql_store
        finally:
            sql_store.drop_tables()
            sql_store.close()


def settings_for(sessions: ModuleType, **changes: Any) -> Any:
    return sessions.SessionSettings(secret_key=SECRET, transport="cookie", csrf_double_submit=False, **changes)


def build_app(sessions: ModuleType, settings: Any, store: Any, clock: Any) -> Any:
    """A Flask app with the views a session-backed site has."""
    app = flask.Flask(__name__)
    app.config["PREFERRED_URL_SCHEME"] = "https"  # Secure cookies round-trip
    sessions.Sessions(app, settings, store=store, clock=clock)

    @app.get("/data")
    def read() -> dict[str, Any]:
        session = sessions.get_session()
        return {"value": session.data.get("value"), "user": session.principal.id if session.principal else None}

    @app.post("/data/<value>")
    def write(value: str) -> dict[str, str]:
        sessions.get_session().data["value"] = value
        return {"value": value}

    @app.post("/login/<user>")
    def login(user: str) -> dict[str, str]:
        sessions.get_session().mark_authenticated(sessions.SessionPrincipal(kind="user", id=user))
        return {"user": user}

    @app.post("/logout")
    def logout() -> dict[str, bool]:
        sessions.get_session().destroy()
        return {"ok": True}

    @app.get("/me")
    @sessions.require_principal
    def me() -> dict[str, str]:
        return {"id": sessions.current_principal().id}

    return app


def token_of(client: Any) -> str | None:
    found = client.get_cookie(COOKIE, domain="localhost")
    return found.value if found is not None else None


def holding(client: Any, token: str) -> Any:
    client.set_cookie(COOKIE, token, domain="localhost")
    return client


def error_code(response: Any) -> str:
    return str(response.get_json()["error"]["code"])


def test_data_persists_across_requests(sessions: ModuleType, store: Any, clock: Any) -> None:
    client = build_app(sessions, settings_for(sessions), store, clock).test_client()
    assert client.post("/data/dark", headers=ORIGIN).status_code == 200
    token = token_of(client)
    assert token is not None
    assert client.get("/data").get_json() == {"value": "dark", "user": None}
    assert token_of(client) == token  # an unchanged session keeps its token


def test_sign_in_rotates_the_id_and_the_old_token_is_dead(sessions: ModuleType, store: Any, clock: Any) -> None:
    client = build_app(sessions, settings_for(sessions), store, clock).test_client()
    client.post("/data/cart", headers=ORIGIN)
    anonymous = str(token_of(client))
    response = client.post("/login/ada", headers=ORIGIN)
    signed_in = token_of(client)
    assert response.headers["Cache-Control"] == "no-store"
    assert signed_in not in (None, anonymous)
    assert client.get("/data").get_json() == {"value": "cart", "user": "ada"}

    holding(client, anonymous)
    assert client.get("/me").status_code == 401
    assert client.get("/data").get_json() == {"value": None, "user": None}


def test_sign_out_ends_the_session_everywhere(sessions: ModuleType, store: Any, clock: Any) -> None:
    client = build_app(sessions, settings_for(sessions), store, clock).test_client()
    client.post("/login/ada", headers=ORIGIN)
    token = str(token_of(client))
    response = client.post("/logout", headers=ORIGIN)
    assert response.status_code == 200
    assert token_of(client) is None
    assert response.headers["Cache-Control"] == "no-store"
    holding(client, token)  # a copy of the token taken before signing out
    assert client.get("/me").status_code == 401


def test_a_tampered_cookie_gets_a_fresh_anonymous_session(sessions: ModuleType, store: Any, clock: Any) -> None:
    client = build_app(sessions, settings_for(sessions), store, clock).test_client()
    client.post("/login/ada", headers=ORIGIN)
    token = str(token_of(client))
    holding(client, token[:-2] + ("xx" if not token.endswith("xx") else "yy"))
    response = client.get("/me")
    assert response.status_code == 401
    assert error_code(response) == "session.authentication_required"
    assert client.get("/data").get_json() == {"value": None, "user": None}


def test_the_idle_timeout_ends_the_session(sessions: ModuleType, store: Any, clock: Any) -> None:
    app = build_app(sessions, settings_for(sessions), store, clock)
    client = app.test_client()
    client.post("/login/ada", headers=ORIGIN)
    idle = sessions.Sessions.manager_for(app).policy.idle_timeout
    clock.advance(idle - timedelta(seconds=1))
    assert client.get("/me").status_code == 200  # activity keeps it alive
    clock.advance(idle + timedelta(seconds=1))
    assert client.get("/me").status_code == 401


def test_the_limit_on_concurrent_sessions_holds(sessions: ModuleType, store: Any, clock: Any) -> None:
    settings = settings_for(sessions, max_sessions_per_principal=1, behavior_on_limit="reject")
    app = build_app(sessions, settings, store, clock)
    laptop, phone = app.test_client(), app.test_client()
    assert laptop.post("/login/ada", headers=ORIGIN).status_code == 200

    refused = phone.post("/login/ada", headers=ORIGIN)
    assert refused.status_code == 409
    assert error_code(refused) == "session.limit_reached"
    assert laptop.get("/me").get_json() == {"id": "ada"}

    laptop.post("/logout", headers=ORIGIN)
    assert phone.post("/login/ada", headers=ORIGIN).status_code == 200
    assert phone.get("/me").get_json() == {"id": "ada"}


def test_a_cross_site_unsafe_request_is_refused(sessions: ModuleType, clock: Any) -> None:
    client = build_app(sessions, settings_for(sessions), sessions.MemoryStore(10, clock=clock), clock).test_client()
    client.post("/login/ada", headers=ORIGIN)
    response = client.post("/logout", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert error_code(response) == "session.csrf_failed"
    assert client.get("/me").status_code == 200  # the session survived


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:{port}/0?timeout=0.5",
        "postgresql+psycopg://postgres@127.0.0.1:{port}/test?timeout=0.5",
        "mysql+pymysql://root@127.0.0.1:{port}/test?timeout=0.5",
    ],
    ids=["redis", "postgresql", "mariadb"],
)
def test_a_store_that_cannot_be_reached_answers_503(sessions: ModuleType, clock: Any, url: str) -> None:
    port = free_port()  # nothing listens there
    app = flask.Flask(__name__)
    app.config["PREFERRED_URL_SCHEME"] = "https"
    sessions.Sessions(app, settings_for(sessions, store_url=url.format(port=port)), clock=clock)

    @app.post("/data/<value>")
    def write(value: str) -> str:
        sessions.get_session().data["value"] = value
        return value

    response = app.test_client().post("/data/x", headers=ORIGIN)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert error_code(response) == "session.store_unavailable"
    assert str(port) not in response.get_data(as_text=True)  # details stay in the log


@pytest.mark.slow
@pytest.mark.parametrize(("name", "server_url"), [("PostgreSQL", POSTGRES_URL), ("MariaDB", MARIADB_URL)])
def test_the_generated_tests_pass_against_the_servers(project: Path, sessions: ModuleType, name: str,
                                                      server_url: str) -> None:  # fmt: skip
    """The Flask project's own store tests (the contract, run synchronously) on the real servers."""
    require_server("Redis", REDIS_URL)
    require_server(name, server_url)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("SESSION_")}
    env["SESSION_TEST_REDIS_URL"] = REDIS_URL
    env["SESSION_TEST_SQL_URL"] = sync_url(server_url)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests/sessions"],
        cwd=project, capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped == [], skipped
