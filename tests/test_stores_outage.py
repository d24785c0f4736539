"""A store outage answers 503 with Retry-After, a JSON error and a log line; never a 500.

When the server is back the same app serves the same sessions again, without a restart,
and nothing committed before the outage is lost. Redis: a redis-server this test starts
(with an append-only file) and stops. PostgreSQL: the real server behind a loopback TCP
proxy the test stops and starts, which makes the database unreachable and back.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
from services import POSTGRES_URL, RedisNode, TcpProxy, require_binary, require_server
from store_suite import SECRET, generate_project, imported

COOKIE = "__Host-session"


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("outage")
    generate_project(root, stores="memory,sql,redis", package="outageapp.sessions")
    with imported(root, "outageapp.sessions") as package:
        yield package


def build_app(sessions: ModuleType, store: Any) -> Any:
    from fastapi import Depends, FastAPI

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.session_manager.close()  # the pool's connections belong to this loop

    app = FastAPI(lifespan=lifespan)
    sessions.setup_sessions(app, sessions.SessionSettings(secret_key=SECRET), store=store)
    session_dep = Depends(sessions.get_session)
    principal_dep = Depends(sessions.require_principal)

    @app.post("/login/{user}")
    async def login(user: str, session: Any = session_dep) -> dict[str, str]:
        session.mark_authenticated(sessions.SessionPrincipal(kind="user", id=user))
        session.data["cart"] = ["apple"]
        return {"user": user}

    @app.get("/me")
    async def me(principal: Any = principal_dep, session: Any = session_dep) -> dict[str, Any]:
        return {"id": principal.id, "cart": session.data.get("cart")}

    return app


def check_outage_and_recovery(
    app: Any, stop: Callable[[], None], start: Callable[[], None], caplog: pytest.LogCaptureFixture
) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver") as client:
        assert client.post("/login/ada").status_code == 200
        assert client.get("/me").json() == {"id": "ada", "cart": ["apple"]}
        token = client.cookies.get(COOKIE)

        stop()
        with caplog.at_level(logging.WARNING):
            for method, path in (("GET", "/me"), ("POST", "/login/bob")):
                response = client.request(method, path)
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"].isdigit()
                assert response.headers["cache-control"] == "no-store"
                assert response.json()["error"]["code"] == "session.store_unavailable"
                assert "traceback" not in response.text.lower()
        assert any("store unavailable" in r.getMessage() for r in caplog.records)

        start()
        deadline = time.monotonic() + 10
        while True:
            client.cookies.clear()
            client.cookies.set(COOKIE, token)
            response = client.get("/me")
            assert response.status_code in (200, 503), response.text
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        # Back without a restart, and the session committed before the outage is intact.
        assert response.status_code == 200
        assert response.json() == {"id": "ada", "cart": ["apple"]}


def test_a_redis_outage_gives_503_and_the_app_recovers(
    sessions: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require_binary("redis-server")
    node = RedisNode(tmp_path / "redis", persistent=True)
    node.start()
    try:
        redis_store = __import__(f"{sessions.__name__}.stores.redis", fromlist=["RedisStore"])
        store = redis_store.RedisStore.from_url(f"{node.url}?timeout=1&prefix=outage{secrets.token_hex(4)}")
        check_outage_and_recovery(build_app(sessions, store), node.stop, node.start, caplog)
    finally:
        node.stop()


def test_a_postgresql_outage_gives_503_and_the_app_recovers(
    sessions: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    url = require_server("PostgreSQL", POSTGRES_URL)
    upstream = urlsplit(url)
    proxy = TcpProxy(upstream.hostname or "127.0.0.1", upstream.port or 5432)
    proxy.start()
    proxied = url.replace(f"@{upstream.netloc.rpartition('@')[2]}", f"@127.0.0.1:{proxy.port}")
    sql = __import__(f"{sessions.__name__}.stores.sql", fromlist=["SQLStore"])
    table = f"sk_outage_{secrets.token_hex(6)}"

    async def tables(create: bool) -> None:
        admin = sql.SQLStore(sql.create_engine(url), table_name=table)
        try:
            await (admin.create_tables() if create else admin.drop_tables())
        finally:
            await admin.close()

    asyncio.run(tables(create=True))
    try:
        store = sql.SQLStore(sql.create_engine(proxied, timeout=2), table_name=table, timeout=2)
        check_outage_and_recovery(build_app(sessions, store), proxy.stop, proxy.start, caplog)
    finally:
        proxy.stop()
        asyncio.run(tables(create=False))
