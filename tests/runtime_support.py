"""Generate a real session package into a throw-away project and import it, for runtime tests.

Each test module uses its own project package name, so several generated packages can be imported in
one pytest process; `generated_package` removes them from `sys.modules` afterwards.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from session_kit.generate import GenerateRequest, generate

SECRET = "runtime-test-secret-key-long-enough-0123456789abcdef"
BASE_URL = "https://testserver"
START = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


def generate_project(root: Path, top: str, assignments: Sequence[str] = (), framework: str | None = None) -> Path:
    """A project at `root` with package `top` and `top.sessions` generated into it."""
    (root / top).mkdir(parents=True)
    (root / top / "__init__.py").write_text("")
    request = GenerateRequest(
        project_dir=root, framework=framework, package=f"{top}.sessions", assignments=tuple(assignments), environ={}
    )
    report = generate(request)
    assert report.exit_code == 0, report
    return root


@contextmanager
def generated_package(
    root: Path, top: str, assignments: Sequence[str] = (), framework: str | None = None
) -> Iterator[ModuleType]:
    """Generate, import `top.sessions`, and clean up `sys.path` and `sys.modules` afterwards."""
    generate_project(root, top, assignments, framework)
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(f"{top}.sessions")
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == top or m.startswith(f"{top}.")]:
            del sys.modules[name]


def cookie_of(response: Any, name: str = "__Host-session") -> str | None:
    """The value the response sets for cookie `name`, if any."""
    for header in response.headers.get_list("set-cookie"):
        key, _, rest = header.partition("=")
        if key == name:
            return rest.split(";", 1)[0]
    return None


def build_app(sessions: ModuleType, clock: Any, store: Any = None, **settings: Any) -> tuple[Any, Any]:
    """A FastAPI app with typical routes on `store` (a fresh memory store by default); returns (app, manager)."""
    from datetime import timedelta

    from fastapi import Depends, FastAPI

    app = FastAPI()
    config = sessions.SessionSettings(**{"secret_key": SECRET, "transport": "cookie", **settings})
    store = store if store is not None else sessions.MemoryStore(1000, clock=clock)
    manager = sessions.setup_sessions(app, config, store=store, clock=clock)
    # Defaults rather than annotations: with postponed annotations FastAPI cannot resolve local aliases.
    session_dep = Depends(sessions.get_session)
    principal_dep = Depends(sessions.require_principal)
    recent_dep = Depends(sessions.require_recent_auth(timedelta(minutes=5)))

    @app.get("/get")
    async def get(session: Any = session_dep) -> dict[str, Any]:
        return {"value": session.data.get("value"), "user": session.principal.id if session.principal else None}

    @app.post("/put/{value}")
    async def put(value: str, session: Any = session_dep) -> dict[str, str]:
        session.data["value"] = value
        return {"value": value}

    @app.post("/login/{user}")
    async def login(user: str, session: Any = session_dep) -> dict[str, str]:
        session.mark_authenticated(sessions.SessionPrincipal(kind="user", id=user))
        return {"user": user}

    @app.post("/elevate")
    async def elevate(session: Any = session_dep) -> dict[str, bool]:
        session.elevate(roles=["admin"])
        return {"ok": True}

    @app.post("/reauthenticate")
    async def reauthenticate(session: Any = session_dep) -> dict[str, bool]:
        session.elevate(reauthenticated=True)  # after checking a password or MFA code
        return {"ok": True}

    @app.post("/logout")
    async def logout(session: Any = session_dep) -> dict[str, bool]:
        session.destroy()
        return {"ok": True}

    @app.get("/me")
    async def me(principal: Any = principal_dep) -> dict[str, str]:
        return {"id": principal.id}

    @app.post("/sensitive")
    async def sensitive(principal: Any = recent_dep) -> dict[str, str]:
        return {"id": principal.id}

    return app, manager


def holding(client: Any, token: str, name: str = "__Host-session") -> Any:
    """`client` holding only `token`."""
    client.cookies.clear()
    client.cookies.set(name, token)
    return client
