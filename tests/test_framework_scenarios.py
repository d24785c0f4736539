"""The same black-box HTTP scenarios against every framework adapter.

For each framework in `framework_apps.FRAMEWORKS` the session module is generated (every
store, management routes, CSRF), a demo app is built from it, and the scenarios drive it
over HTTP. Every scenario runs on the memory store; the ones where the store matters
(rotation, sign-out, the session limit, listing and revoking) also run on the file store,
SQLite, PostgreSQL, MariaDB and Redis, each run with its own table or key prefix, removed
afterwards. A missing server skips its runs, or fails them with SESSION_KIT_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import importlib
import inspect
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from framework_apps import ADMIN_HEADER, BASE_URL, FRAMEWORKS, RECENT_AUTH, FrameworkApp
from runtime_support import SECRET, generated_package
from services import MARIADB_URL, POSTGRES_URL, REDIS_URL, require_server, sync_url

from session_kit.frameworks import PLUGINS

pytestmark = pytest.mark.anyio

COOKIE = "__Host-session"
LIMIT = 2
MEMORY = ["memory"]
EVERY_STORE = ["memory", "file", "sqlite", "postgresql", "mariadb", "redis"]
OPTIONS = ["stores=memory,file,sql,redis", "management_routes=true", "csrf=true"]


@pytest.fixture(scope="module", params=sorted(FRAMEWORKS))
def framework(request: pytest.FixtureRequest) -> FrameworkApp:
    return FRAMEWORKS[request.param]


@pytest.fixture(scope="module")
def sessions(framework: FrameworkApp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp(f"scenarios-{framework.name}")
    with generated_package(root, f"scn{framework.name}", [f"framework={framework.name}", *OPTIONS]) as package:
        yield package


@pytest.fixture
def store_kind() -> str:
    """The store a scenario runs on; tests that run on every store parametrise it."""
    return "memory"


@pytest.fixture
async def store(
    store_kind: str, framework: FrameworkApp, sessions: ModuleType, clock: Any, tmp_path: Path
) -> AsyncIterator[Any]:
    # Flask gets the synchronous core: its stores' methods are plain calls on blocking drivers.
    sync = not PLUGINS[framework.name].async_core
    if store_kind == "memory":
        yield _unreliable(sessions, sync=sync)(1000, clock=clock)
    elif store_kind == "file":
        yield _module(sessions, "stores.file").FileStore(tmp_path / "sessions", clock=clock)
    elif store_kind == "redis":
        url = require_server("Redis", REDIS_URL)
        redis = _module(sessions, "stores.redis").RedisStore.from_url(
            f"{url}?prefix=skscn{secrets.token_hex(6)}", clock=clock, idle_timeout=timedelta(minutes=30)
        )
        try:
            yield redis
        finally:
            await _done(redis.delete_all())
            await _done(redis.close())
    else:
        urls = {
            "sqlite": f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}",
            "postgresql": POSTGRES_URL,
            "mariadb": MARIADB_URL,
        }
        if store_kind != "sqlite":
            require_server({"postgresql": "PostgreSQL", "mariadb": "MariaDB"}[store_kind], urls[store_kind])
        sql = _module(sessions, "stores.sql")
        table = f"sk_scn_{secrets.token_hex(6)}"
        url = sync_url(urls[store_kind]) if sync else urls[store_kind]
        sql_store = sql.SQLStore(sql.create_engine(url), table_name=table, clock=clock)
        await _done(sql_store.create_tables())
        try:
            yield sql_store
        finally:
            await _done(sql_store.drop_tables())
            await _done(sql_store.close())


@pytest.fixture
def settings(sessions: ModuleType) -> Any:
    return sessions.SessionSettings(
        secret_key=SECRET, transport="cookie", max_sessions_per_principal=LIMIT, behavior_on_limit="evict_oldest"
    )


@pytest.fixture
async def client(
    framework: FrameworkApp, sessions: ModuleType, settings: Any, store: Any, clock: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = framework.build(sessions, settings, store, clock)
    async with framework.client(app) as http:
        yield http


def _module(sessions: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{sessions.__name__}.{name}")


async def _done(result: Any) -> None:
    """Wait for a store call of the asynchronous core; a synchronous core's call is already done."""
    if inspect.isawaitable(result):
        await result


def _unreliable(sessions: ModuleType, *, sync: bool = False) -> type:
    """The generated memory store, with a switch that makes every call fail as an outage would."""
    if sync:

        class UnreliableStore(sessions.MemoryStore):  # type: ignore[name-defined,misc]
            available = True

            def _check(self) -> None:
                if not self.available:
                    raise sessions.StoreUnavailable()

            def load(self, session_id: str, **kwargs: Any) -> Any:
                self._check()
                return super().load(session_id, **kwargs)

            def create(self, record: Any, **kwargs: Any) -> Any:
                self._check()
                return super().create(record, **kwargs)

            def save(self, record: Any, **kwargs: Any) -> Any:
                self._check()
                return super().save(record, **kwargs)

            def ping(self) -> None:
                self._check()
                super().ping()

        return UnreliableStore

    class UnreliableStore(sessions.MemoryStore):  # type: ignore[name-defined,misc,no-redef]
        available = True

        def _check(self) -> None:
            if not self.available:
                raise sessions.StoreUnavailable()

        async def load(self, session_id: str, **kwargs: Any) -> Any:
            self._check()
            return await super().load(session_id, **kwargs)

        async def create(self, record: Any, **kwargs: Any) -> Any:
            self._check()
            return await super().create(record, **kwargs)

        async def save(self, record: Any, **kwargs: Any) -> Any:
            self._check()
            return await super().save(record, **kwargs)

        async def ping(self) -> None:
            self._check()
            await super().ping()

    return UnreliableStore


def _token(response: httpx.Response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == COOKIE:
            return rest.split(";", 1)[0]
    return None


def _hold(client: httpx.AsyncClient, token: str) -> None:
    """Make the client hold just `token`, as a replayed or stolen cookie would."""
    client.cookies.clear()
    client.cookies.set(COOKIE, token)


async def _sign_in(client: httpx.AsyncClient, user: str, clock: Any) -> str:
    """Sign `user` in from a fresh browser a second after the previous one; its token."""
    clock.advance(timedelta(seconds=1))
    client.cookies.clear()
    response = await client.post(f"/login/{user}")
    assert response.status_code == 200, response.text
    token = _token(response)
    assert token is not None
    return token


async def test_anonymous_data_is_kept_across_requests(client: httpx.AsyncClient) -> None:
    written = await client.post("/data/teal")
    assert written.status_code == 200
    assert _token(written) is not None
    assert written.headers["cache-control"] == "no-store"

    read = await client.get("/data")
    assert read.json() == {"value": "teal", "user": None}
    assert _token(read) is None  # nothing changed, nothing re-issued


@pytest.mark.parametrize("store_kind", EVERY_STORE)
async def test_signing_in_rotates_the_id_and_the_old_one_is_dead(client: httpx.AsyncClient, store_kind: str) -> None:
    anonymous = _token(await client.post("/data/cart"))
    signed_in = _token(await client.post("/login/ada"))
    assert anonymous is not None
    assert signed_in is not None
    assert signed_in.split(".")[0] != anonymous.split(".")[0]
    assert (await client.get("/data")).json() == {"value": "cart", "user": "ada"}

    _hold(client, anonymous)
    assert (await client.get("/data")).json() == {"value": None, "user": None}


@pytest.mark.parametrize("store_kind", EVERY_STORE)
async def test_signing_out_ends_the_session(
    client: httpx.AsyncClient, framework: FrameworkApp, clock: Any, store_kind: str
) -> None:
    token = await _sign_in(client, "ada", clock)
    response = await client.post("/logout")
    cleared = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}=")]
    assert cleared
    assert "Max-Age=0" in cleared[0]

    _hold(client, token)
    refused = await client.get("/me")
    assert refused.status_code == 401
    assert framework.error_code(refused) == "session.authentication_required"


async def test_a_tampered_cookie_gives_a_fresh_session_never_an_error(client: httpx.AsyncClient) -> None:
    token = _token(await client.post("/data/secret"))
    assert token is not None
    session_id, secret = token.split(".")
    forged = f"{session_id}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    for bad in (forged, "garbage", f"{session_id}.", "a" * 5000):
        _hold(client, bad)
        response = await client.post("/data/fresh")
        assert response.status_code == 200
        fresh = _token(response)
        assert fresh is not None
        assert fresh.split(".")[0] != session_id


async def test_the_idle_timeout_ends_a_quiet_session(client: httpx.AsyncClient, clock: Any, settings: Any) -> None:
    await _sign_in(client, "ada", clock)
    clock.advance(settings.idle_timeout - timedelta(seconds=1))
    assert (await client.get("/me")).status_code == 200
    clock.advance(settings.idle_timeout + timedelta(seconds=1))
    assert (await client.get("/me")).status_code == 401


async def test_the_absolute_timeout_holds_for_an_active_session(
    client: httpx.AsyncClient, clock: Any, settings: Any
) -> None:
    await _sign_in(client, "ada", clock)
    step = settings.idle_timeout / 2
    elapsed = timedelta(seconds=0)
    while elapsed + step < settings.ttl:
        clock.advance(step)
        elapsed += step
        assert (await client.get("/me")).status_code == 200
    clock.advance(step)
    assert (await client.get("/me")).status_code == 401


@pytest.mark.parametrize("store_kind", EVERY_STORE)
async def test_a_sign_in_beyond_the_limit_ends_the_oldest_session(
    client: httpx.AsyncClient, clock: Any, store_kind: str
) -> None:
    tokens = [await _sign_in(client, "ada", clock) for _ in range(LIMIT + 1)]
    alive = []
    for token in tokens:
        _hold(client, token)
        alive.append((await client.get("/me")).status_code == 200)
    assert alive == [False] + [True] * LIMIT


@pytest.mark.parametrize("store_kind", EVERY_STORE)
async def test_the_caller_lists_and_revokes_their_own_sessions(
    client: httpx.AsyncClient, framework: FrameworkApp, clock: Any, store_kind: str
) -> None:
    await _sign_in(client, "bob", clock)
    first = await _sign_in(client, "ada", clock)
    await _sign_in(client, "ada", clock)

    listing = (await client.get("/sessions")).json()
    assert [entry["current"] for entry in listing] == [False, True]
    oldest = listing[0]["id"]
    assert (await client.delete(f"/sessions/{oldest}")).json() == {"revoked": 1}
    missing = await client.delete(f"/sessions/{oldest}")
    assert missing.status_code == 404
    assert framework.error_code(missing) == "session.not_found"
    assert len((await client.get("/sessions")).json()) == 1

    _hold(client, first)
    assert (await client.get("/me")).status_code == 401
    refused = await client.get("/sessions")
    assert refused.status_code == 401


async def test_ending_the_other_sessions_keeps_this_one(client: httpx.AsyncClient, clock: Any) -> None:
    others = [await _sign_in(client, "ada", clock) for _ in range(LIMIT - 1)]
    await _sign_in(client, "ada", clock)

    assert (await client.delete("/sessions")).json() == {"revoked": len(others)}
    assert (await client.get("/me")).status_code == 200
    for token in others:
        _hold(client, token)
        assert (await client.get("/me")).status_code == 401


async def test_admin_routes_answer_only_the_admin_check(
    client: httpx.AsyncClient, framework: FrameworkApp, clock: Any
) -> None:
    token = await _sign_in(client, "ada", clock)
    client.cookies.clear()
    path = "/sessions/admin/principals/user/ada"

    denied = await client.delete(path)
    assert denied.status_code == 403
    assert framework.error_code(denied) == "session.admin_required"
    assert (await client.delete(path, headers={ADMIN_HEADER: "yes"})).json() == {"revoked": 1}
    _hold(client, token)
    assert (await client.get("/me")).status_code == 401


async def test_public_health_says_only_ok_or_unavailable(client: httpx.AsyncClient, store: Any) -> None:
    healthy = await client.get("/sessions/health")
    assert (healthy.status_code, healthy.json()) == (200, {"status": "ok"})

    store.available = False
    down = await client.get("/sessions/health")
    assert (down.status_code, down.json()) == (503, {"status": "unavailable"})


async def test_health_details_need_the_admin_check(
    client: httpx.AsyncClient, framework: FrameworkApp, sessions: ModuleType, store: Any
) -> None:
    denied = await client.get("/sessions/admin/health")
    assert denied.status_code == 403
    assert framework.error_code(denied) == "session.admin_required"
    details = await client.get("/sessions/admin/health", headers={ADMIN_HEADER: "yes"})
    assert details.status_code == 200
    assert details.json()["store_kind"] == "UnreliableStore"
    assert details.json()["module_version"] == _module(sessions, "settings").MODULE_VERSION

    store.available = False
    down = await client.get("/sessions/admin/health", headers={ADMIN_HEADER: "yes"})
    assert down.status_code == 503
    assert down.json()["store"] == "unavailable"


async def test_unsafe_cross_site_requests_with_the_session_cookie_are_refused(
    client: httpx.AsyncClient, framework: FrameworkApp, clock: Any
) -> None:
    await _sign_in(client, "ada", clock)
    for method, path in (("POST", "/login/bob"), ("DELETE", "/sessions")):
        refused = await client.request(method, path, headers={"Origin": "https://evil.example"})
        assert refused.status_code == 403
        assert framework.error_code(refused) == "session.csrf_failed"
        assert _token(refused) is None
    assert (await client.get("/me")).json() == {"id": "ada"}  # nothing happened
    same_site = await client.post("/login/bob", headers={"Origin": BASE_URL})
    assert same_site.status_code == 200
    assert (await client.get("/data", headers={"Origin": "https://evil.example"})).status_code == 200


async def test_a_store_outage_answers_503_with_retry_after(
    client: httpx.AsyncClient, framework: FrameworkApp, store: Any
) -> None:
    await client.post("/data/red")
    store.available = False

    response = await client.get("/data")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert framework.error_code(response) == "session.store_unavailable"
    assert _token(response) is None


async def test_ending_sessions_needs_a_recent_sign_in(
    client: httpx.AsyncClient, framework: FrameworkApp, clock: Any
) -> None:
    other = await _sign_in(client, "ada", clock)
    await _sign_in(client, "ada", clock)
    clock.advance(RECENT_AUTH + timedelta(seconds=1))

    stale = await client.delete("/sessions")
    assert stale.status_code == 401
    assert framework.error_code(stale) == "session.reauthentication_required"
    assert (await client.get("/sessions")).status_code == 200  # listing needs no step-up
    assert (await client.post("/step-up")).status_code == 200
    assert (await client.delete("/sessions")).json() == {"revoked": 1}
    _hold(client, other)
    assert (await client.get("/me")).status_code == 401


async def test_a_frontend_origin_calling_a_bearer_api_without_the_cookie_is_not_refused(
    client: httpx.AsyncClient,
) -> None:
    # A SPA on another origin calling a token-authenticated API (or signing in to get a
    # token) sends no session cookie, so there is no session a forger could ride on.
    frontend = {"Origin": "https://app.frontend.example", "Authorization": "Bearer an-api-token"}
    for path in ("/data/teal", "/login/ada"):
        client.cookies.clear()
        response = await client.post(path, headers=frontend)
        assert response.status_code == 200, response.text


async def test_the_same_call_with_the_session_cookie_from_a_foreign_origin_is_refused(
    client: httpx.AsyncClient, framework: FrameworkApp, clock: Any
) -> None:
    token = await _sign_in(client, "ada", clock)
    frontend = {"Origin": "https://app.frontend.example", "Authorization": "Bearer an-api-token"}
    _hold(client, token)
    refused = await client.post("/data/teal", headers=frontend)
    assert refused.status_code == 403
    assert framework.error_code(refused) == "session.csrf_failed"
    assert (await client.get("/data")).json() == {"value": None, "user": "ada"}  # nothing written
