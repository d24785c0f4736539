"""Runtime, management: the opt-in router, admin routes denied by default, health, the manager API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from fastapi import HTTPException, Request
from fastapi.testclient import TestClient
from runtime_support import BASE_URL, START, build_app, generated_package


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("rt_management")
    with generated_package(root, "rt_management", ["management_routes=true"]) as package:
        yield package


@pytest.fixture
def clock(sessions: ModuleType) -> Any:
    return sessions.ManualClock(START)


async def _admin_header(request: Request) -> None:
    if request.headers.get("x-admin") != "yes":
        raise HTTPException(status_code=403)


@pytest.fixture
def site(sessions: ModuleType, clock: Any) -> Iterator[tuple[list[TestClient], Any]]:
    app, manager = build_app(sessions, clock)
    app.include_router(sessions.session_router(admin=_admin_header))
    clients = [TestClient(app, base_url=BASE_URL) for _ in range(4)]
    for number, client in enumerate(clients):
        client.__enter__()
        client.post("/login/bob" if number == 3 else "/login/ada", headers={"User-Agent": "curl/8"})
        clock.advance(timedelta(seconds=1))
    yield clients, manager
    for client in clients:
        client.__exit__(None, None, None)


def test_list_shows_the_callers_sessions_with_metadata(site: tuple[list[TestClient], Any]) -> None:
    clients, _ = site
    listing = clients[1].get("/sessions").json()
    assert [entry["current"] for entry in listing] == [False, True, False]
    assert listing[0]["device"] == "curl on unknown OS"
    assert set(listing[0]) == {
        "id",
        "created_at",
        "last_seen_at",
        "expires_at",
        "auth_time",
        "ip",
        "user_agent",
        "device",
        "current",
    }


def test_session_ids_are_never_exposed(site: tuple[list[TestClient], Any]) -> None:
    clients, manager = site
    listing = clients[0].get("/sessions").json()
    stored = set(manager.store.dump())
    assert not stored & {entry["id"] for entry in listing}


def test_delete_one_only_for_the_caller(site: tuple[list[TestClient], Any]) -> None:
    clients, _ = site
    bob = clients[3].get("/sessions").json()[0]["id"]
    assert clients[0].delete(f"/sessions/{bob}").status_code == 404
    assert clients[3].get("/me").status_code == 200
    other = clients[0].get("/sessions").json()[2]["id"]
    assert clients[0].delete(f"/sessions/{other}").json() == {"revoked": 1}
    assert clients[2].get("/me").status_code == 401


def test_delete_all_others_and_optionally_the_current(site: tuple[list[TestClient], Any]) -> None:
    clients, _ = site
    assert clients[0].delete("/sessions").json() == {"revoked": 2}
    assert [c.get("/me").status_code for c in clients] == [200, 401, 401, 200]
    assert clients[0].delete("/sessions", params={"include_current": True}).json() == {"revoked": 1}
    assert clients[0].get("/me").status_code == 401


def test_admin_routes(site: tuple[list[TestClient], Any]) -> None:
    clients, _ = site
    assert clients[0].delete("/sessions/admin/principals/user/ada").status_code == 403
    ended = clients[3].delete("/sessions/admin/principals/user/ada", headers={"x-admin": "yes"})
    assert ended.json() == {"revoked": 3}
    assert clients[3].delete("/sessions/admin/all", headers={"x-admin": "yes"}).json() == {"revoked": 1}
    assert [c.get("/me").status_code for c in clients] == [401, 401, 401, 401]


def test_admin_routes_are_denied_by_default(sessions: ModuleType, clock: Any) -> None:
    app, _ = build_app(sessions, clock)
    app.include_router(sessions.session_router())
    with TestClient(app, base_url=BASE_URL) as client:
        client.post("/login/root")
        response = client.delete("/sessions/admin/all")
    assert response.status_code == 403
    assert response.json()["detail"]["code"] == "session.admin_required"


async def _admin_header(request: Request) -> None:
    # At module level: FastAPI resolves the `Request` annotation from the module's globals.
    if request.headers.get("x-admin") != "yes":
        raise HTTPException(status_code=403)


def test_health(sessions: ModuleType, clock: Any) -> None:
    app, manager = build_app(sessions, clock)
    app.include_router(sessions.session_router(admin=_admin_header))
    with TestClient(app, base_url=BASE_URL) as client:
        public = client.get("/sessions/health")
        hidden = client.get("/sessions/admin/health")
        health = client.get("/sessions/admin/health", headers={"x-admin": "yes"}).json()

        async def down() -> None:
            raise sessions.StoreUnavailable()

        manager.store.ping = down
        degraded = client.get("/sessions/health")
        degraded_details = client.get("/sessions/admin/health", headers={"x-admin": "yes"})
    # The public route tells nothing an attacker could use: no version, store or policy.
    assert (public.status_code, public.json()) == (200, {"status": "ok"})
    assert hidden.status_code == 403
    assert health["status"] == "ok"
    assert health["store_kind"] == "MemoryStore"
    assert health["module_version"] == sessions.__version__
    assert health["policy"]["idle_timeout_seconds"] == 1800
    assert (degraded.status_code, degraded.json()) == (503, {"status": "unavailable"})
    assert degraded_details.status_code == 503
    assert degraded_details.json()["store"] == "unavailable"


def test_the_manager_api(sessions: ModuleType, clock: Any) -> None:
    _, manager = build_app(sessions, clock)
    ada = sessions.SessionPrincipal(kind="user", id="ada")

    async def scenario() -> list[Any]:
        first, _ = await manager.create(ada)
        second, _ = await manager.create(ada)
        await manager.create(sessions.SessionPrincipal(kind="user", id="bob"))
        steps = [len(await manager.list_sessions(ada))]
        steps.append(await manager.revoke(first.id))
        steps.append(await manager.revoke(first.id))
        await manager.create(ada)
        steps.append(await manager.revoke_principal(ada, except_current=second.id))
        steps.append([info.handle for info in await manager.list_sessions(ada)] == [manager.fingerprint(second.id)])
        steps.append(await manager.revoke_all())
        return steps

    assert asyncio.run(scenario()) == [2, True, False, 1, True, 2]


def test_ending_sessions_can_require_a_recent_sign_in(sessions: ModuleType, clock: Any) -> None:
    app, _ = build_app(sessions, clock, idle_timeout=3600)
    app.include_router(sessions.session_router(recent_auth=timedelta(minutes=10)))
    with TestClient(app, base_url=BASE_URL) as phone, TestClient(app, base_url=BASE_URL) as laptop:
        phone.post("/login/ada")
        laptop.post("/login/ada")
        clock.advance(timedelta(minutes=11))
        stale = laptop.delete("/sessions")
        assert stale.status_code == 401
        assert stale.json()["detail"]["code"] == "session.reauthentication_required"
        assert phone.get("/me").status_code == 200  # nothing was ended
        assert laptop.get("/sessions").status_code == 200  # listing needs no step-up
        laptop.post("/reauthenticate")
        assert laptop.delete("/sessions").json() == {"revoked": 1}
        assert phone.get("/me").status_code == 401
