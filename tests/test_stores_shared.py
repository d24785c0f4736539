"""Two app processes (uvicorn on loopback) sharing one Redis, then one PostgreSQL.

A session created through one process is valid through the other, and revoking it on
one (logout, or signing the principal out everywhere) is effective on the other at once.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from services import POSTGRES_URL, REDIS_URL, free_port, require_server, stop_process
from store_suite import SECRET, generate_project, imported

PACKAGE = "sharedapp.sessions"
COOKIE = "__Host-session"
APP = """
from fastapi import FastAPI, Request
from sharedapp.sessions import SessionPrincipal, get_session, setup_sessions

app = FastAPI()
manager = setup_sessions(app)


@app.get("/health")
async def health() -> dict[str, bool]:
    await manager.store.ping()
    return {"ok": True}


@app.post("/login/{user}")
async def login(user: str, request: Request) -> dict[str, str]:
    session = await get_session(request)
    session.mark_authenticated(SessionPrincipal(kind="user", id=user))
    return {"user": user}


@app.get("/me")
async def me(request: Request) -> dict[str, str | None]:
    session = await get_session(request)
    return {"user": session.principal.id if session.principal else None}


@app.post("/logout")
async def logout(request: Request) -> dict[str, bool]:
    (await get_session(request)).destroy()
    return {"ok": True}


@app.post("/revoke/{user}")
async def revoke(user: str) -> dict[str, int]:
    return {"revoked": await manager.store.delete_by_principal("user", user)}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shared")
    generate_project(root, stores="memory,sql,redis", package=PACKAGE)
    (root / "shared_app.py").write_text(APP)
    return root


@pytest.fixture(scope="module")
def sessions(project: Path) -> Iterator[ModuleType]:
    with imported(project, PACKAGE) as package:
        yield package


class App:
    def __init__(self, project: Path, store_url: str) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_")}
        env |= {"SESSION_SECRET_KEY": SECRET, "SESSION_STORE_URL": store_url, "PYTHONPATH": str(project)}
        self.log = project / f"uvicorn-{self.port}.log"
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "shared_app:app", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=project,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if self.client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def call(self, method: str, path: str, token: str | None = None) -> httpx.Response:
        # The cookie is Secure (__Host-); over loopback HTTP the test carries it by hand.
        headers = {"cookie": f"{COOKIE}={token}"} if token else {}
        return self.client.request(method, path, headers=headers)

    def stop(self) -> None:
        self.client.close()
        stop_process(self.process)
        self._log_file.close()


def token_of(response: httpx.Response) -> str:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == COOKIE:
            return rest.split(";", 1)[0]
    raise AssertionError(f"no session cookie in {response.headers}")


def check_two_processes_share_sessions(project: Path, store_url: str) -> None:
    first, second = App(project, store_url), App(project, store_url)
    try:
        first.wait_ready()
        second.wait_ready()
        token = token_of(first.call("POST", "/login/ada"))
        assert second.call("GET", "/me", token).json() == {"user": "ada"}
        assert first.call("GET", "/me", token).json() == {"user": "ada"}

        logout = second.call("POST", "/logout", token)
        assert logout.status_code == 200
        assert first.call("GET", "/me", token).json() == {"user": None}

        again = token_of(second.call("POST", "/login/ada"))
        assert first.call("GET", "/me", again).json() == {"user": "ada"}
        assert first.call("POST", "/revoke/ada").json() == {"revoked": 1}
        assert second.call("GET", "/me", again).json() == {"user": None}
    finally:
        first.stop()
        second.stop()


def test_two_processes_share_one_redis(project: Path, sessions: ModuleType) -> None:
    url = require_server("Redis", REDIS_URL)
    prefix = f"sktwo{secrets.token_hex(6)}"
    store_url = f"{url}{'&' if '?' in url else '?'}prefix={prefix}"
    try:
        check_two_processes_share_sessions(project, store_url)
    finally:

        async def clean() -> None:
            store = sessions.open_store(store_url)
            await store.delete_all()
            await store.close()

        asyncio.run(clean())


def test_two_processes_share_one_postgresql(project: Path, sessions: ModuleType) -> None:
    url = require_server("PostgreSQL", POSTGRES_URL)
    store_url = f"{url}{'&' if '?' in url else '?'}session_table=sk_two_{secrets.token_hex(6)}"

    async def tables(create: bool) -> None:
        store = sessions.open_store(store_url)
        await (store.create_tables() if create else store.drop_tables())
        await store.close()

    asyncio.run(tables(create=True))
    try:
        check_two_processes_share_sessions(project, store_url)
    finally:
        asyncio.run(tables(create=False))
