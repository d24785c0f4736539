"""One demo app per framework, for the cross-framework scenario suite.

Each entry of `FRAMEWORKS` builds, from a generated session package, an app exposing the
same endpoints (the bodies are the same JSON in every framework):

    GET  /data             {"value": ..., "user": ...}     the session's data and principal
    POST /data/{value}     {"value": value}                write session data
    POST /login/{user}     {"user": user}                  sign in (rotates the session id)
    POST /logout           {"ok": true}                    end the session
    POST /step-up          {"ok": true}                    re-authenticate (rotates again)
    GET  /me               {"id": ...} or 401              needs a principal
    /sessions...                                           the generated management routes;
                                                           admin routes need `x-admin: yes`

and says where its error responses keep the stable error code. Adding a framework is one
`FrameworkApp` entry: a builder and how to reach the app over HTTP (an ASGI app through
`httpx.ASGITransport`; a WSGI app through a transport that serves it from a worker thread).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import ModuleType
from typing import Any

import anyio.to_thread
import httpx
from starlette.requests import Request

BASE_URL = "https://testserver.local"  # HTTPS, so the Secure session cookie round-trips
ADMIN_HEADER = "x-admin"
# Ending sessions needs a sign-in (or step-up at /step-up) at most this long ago.
RECENT_AUTH = timedelta(minutes=10)

# build(sessions, settings, store, clock) -> the app
Builder = Callable[[ModuleType, Any, Any, Any], Any]


@dataclass(frozen=True)
class FrameworkApp:
    """How the suite drives one framework."""

    name: str
    build: Builder
    error_code: Callable[[httpx.Response], str]
    client: Callable[[Any], AbstractAsyncContextManager[httpx.AsyncClient]]


@asynccontextmanager
async def asgi_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        yield client


class _ThreadedWSGITransport(httpx.AsyncBaseTransport):
    """Serves a WSGI app to an async client, each request in a worker thread, as a WSGI server would."""

    def __init__(self, app: Any) -> None:
        self._wsgi = httpx.WSGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return await anyio.to_thread.run_sync(self._serve, request)

    def _serve(self, request: httpx.Request) -> httpx.Response:
        response = self._wsgi.handle_request(request)
        return httpx.Response(response.status_code, headers=response.headers, content=response.read())


@asynccontextmanager
async def wsgi_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=_ThreadedWSGITransport(app), base_url=BASE_URL) as client:
        yield client


def _error_body_code(response: httpx.Response) -> str:
    """`{"error": {"code"}}`: what every session middleware answers with."""
    return str(response.json()["error"]["code"])


def _fastapi_code(response: httpx.Response) -> str:
    body = response.json()
    return str(body["detail"]["code"]) if "detail" in body else _error_body_code(response)


def _litestar_code(response: httpx.Response) -> str:
    body = response.json()
    return str(body["extra"]["code"]) if "extra" in body else _error_body_code(response)


def _fastapi_app(sessions: ModuleType, settings: Any, store: Any, clock: Any) -> Any:
    from fastapi import Depends, FastAPI

    app = FastAPI()
    sessions.setup_sessions(app, settings, store=store, clock=clock)
    # Defaults rather than annotations: with postponed annotations FastAPI cannot resolve local aliases.
    session_dep = Depends(sessions.get_session)
    principal_dep = Depends(sessions.require_principal)

    @app.get("/data")
    async def read(session: Any = session_dep) -> dict[str, Any]:
        return _read(session)

    @app.post("/data/{value}")
    async def write(value: str, session: Any = session_dep) -> dict[str, str]:
        session.data["value"] = value
        return {"value": value}

    @app.post("/login/{user}")
    async def login(user: str, session: Any = session_dep) -> dict[str, str]:
        session.mark_authenticated(sessions.SessionPrincipal(kind="user", id=user))
        return {"user": user}

    @app.post("/logout")
    async def logout(session: Any = session_dep) -> dict[str, bool]:
        session.destroy()
        return {"ok": True}

    @app.post("/step-up")
    async def step_up(session: Any = session_dep) -> dict[str, bool]:
        session.elevate(reauthenticated=True)
        return {"ok": True}

    @app.get("/me")
    async def me(principal: Any = principal_dep) -> dict[str, str]:
        return {"id": principal.id}

    app.include_router(sessions.session_router(admin=_fastapi_is_admin, recent_auth=RECENT_AUTH))
    return app


async def _fastapi_is_admin(request: Request) -> None:
    # At module level: FastAPI resolves the `Request` annotation from the module's globals.
    from fastapi import HTTPException

    if request.headers.get(ADMIN_HEADER) != "yes":
        raise HTTPException(status_code=403, detail={"code": "session.admin_required"})


def _starlette_app(sessions: ModuleType, settings: Any, store: Any, clock: Any) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def is_admin(request: Request) -> bool:
        return request.headers.get(ADMIN_HEADER) == "yes"

    async def read(request: Request) -> JSONResponse:
        return JSONResponse(_read(sessions.get_session(request)))

    async def write(request: Request) -> JSONResponse:
        value = request.path_params["value"]
        sessions.get_session(request).data["value"] = value
        return JSONResponse({"value": value})

    async def login(request: Request) -> JSONResponse:
        user = request.path_params["user"]
        sessions.get_session(request).mark_authenticated(sessions.SessionPrincipal(kind="user", id=user))
        return JSONResponse({"user": user})

    async def logout(request: Request) -> JSONResponse:
        sessions.get_session(request).destroy()
        return JSONResponse({"ok": True})

    async def step_up(request: Request) -> JSONResponse:
        sessions.get_session(request).elevate(reauthenticated=True)
        return JSONResponse({"ok": True})

    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"id": sessions.require_principal(request).id})

    app = Starlette(
        routes=[
            Route("/data", read, methods=["GET"]),
            Route("/data/{value}", write, methods=["POST"]),
            Route("/login/{user}", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/step-up", step_up, methods=["POST"]),
            Route("/me", me, methods=["GET"]),
            *sessions.session_router(admin=is_admin, recent_auth=RECENT_AUTH),
        ]
    )
    sessions.setup_sessions(app, settings, store=store, clock=clock)
    return app


def _litestar_app(sessions: ModuleType, settings: Any, store: Any, clock: Any) -> Any:
    from litestar import Litestar, get, post
    from litestar.connection import ASGIConnection
    from litestar.di import Provide
    from litestar.exceptions import PermissionDeniedException
    from litestar.handlers import BaseRouteHandler
    from litestar.params import FromPath

    # Annotations are strings here (postponed); Litestar resolves these local names through the namespace.
    WebSessionDep, PrincipalDep = sessions.WebSessionDep, sessions.PrincipalDep
    namespace = {"WebSessionDep": WebSessionDep, "PrincipalDep": PrincipalDep, "FromPath": FromPath}

    def is_admin(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        if connection.headers.get(ADMIN_HEADER) != "yes":
            raise PermissionDeniedException(detail="admins only", extra={"code": "session.admin_required"})

    @get("/data")
    async def read(session: WebSessionDep) -> dict[str, Any]:
        return _read(session)

    @post("/data/{value:str}", status_code=200)
    async def write(value: FromPath[str], session: WebSessionDep) -> dict[str, str]:
        session.data["value"] = value
        return {"value": value}

    @post("/login/{user:str}", status_code=200)
    async def login(user: FromPath[str], session: WebSessionDep) -> dict[str, str]:
        session.mark_authenticated(sessions.SessionPrincipal(kind="user", id=user))
        return {"user": user}

    @post("/logout", status_code=200)
    async def logout(session: WebSessionDep) -> dict[str, bool]:
        session.destroy()
        return {"ok": True}

    @post("/step-up", status_code=200)
    async def step_up(session: WebSessionDep) -> dict[str, bool]:
        session.elevate(reauthenticated=True)
        return {"ok": True}

    @get("/me", dependencies={"principal": Provide(sessions.require_principal)})
    async def me(principal: PrincipalDep) -> dict[str, str]:
        return {"id": principal.id}

    return Litestar(
        route_handlers=[
            read,
            write,
            login,
            logout,
            step_up,
            me,
            sessions.session_router(admin=is_admin, recent_auth=RECENT_AUTH),
        ],
        plugins=[sessions.SessionPlugin(settings, store=store, clock=clock)],
        signature_namespace=namespace,
    )


def _flask_app(sessions: ModuleType, settings: Any, store: Any, clock: Any) -> Any:
    from flask import Flask, request

    admin_required = importlib.import_module(f"{sessions.__name__}.routes").AdminRequired

    def is_admin() -> None:
        if request.headers.get(ADMIN_HEADER) != "yes":
            raise admin_required()

    app = Flask(__name__)
    sessions.Sessions(app, settings, store=store, clock=clock)

    @app.get("/data")
    def read() -> dict[str, Any]:
        return _read(sessions.get_session())

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

    @app.post("/step-up")
    def step_up() -> dict[str, bool]:
        sessions.get_session().elevate(reauthenticated=True)
        return {"ok": True}

    @app.get("/me")
    def me() -> dict[str, str]:
        return {"id": sessions.current_principal().id}

    app.register_blueprint(sessions.session_router(admin=is_admin, recent_auth=RECENT_AUTH))
    return app


def _read(session: Any) -> dict[str, Any]:
    return {"value": session.data.get("value"), "user": session.principal.id if session.principal else None}


FRAMEWORKS: dict[str, FrameworkApp] = {
    app.name: app
    for app in (
        FrameworkApp("fastapi", _fastapi_app, _fastapi_code, asgi_client),
        FrameworkApp("starlette", _starlette_app, _error_body_code, asgi_client),
        FrameworkApp("litestar", _litestar_app, _litestar_code, asgi_client),
        FrameworkApp("flask", _flask_app, _error_body_code, wsgi_client),
    )
}
