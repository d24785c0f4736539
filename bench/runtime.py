"""Per-request session overhead, in process: each ASGI app is called directly (no network,
no HTTP client), a real session cookie is carried from response to request, and every
variant runs an endpoint that reads one value and one that writes one value.

Peers: no session middleware (the floor), Starlette's SessionMiddleware (signed cookie),
starsessions with its memory and Redis stores. session-kit: every store it generated,
opaque tokens (and JWT when generated), and a route that never touches the session. Redis
commands and round trips are counted from what this process's client sends (counting.py).
Views reach the session the way the generated package documents (its `get_session`
dependency), so the bench follows the public API, not the runtime's insides. Flask is
measured the same way over WSGI in flask_peers.py.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from counting import RedisCounter
from fastapi import Depends, FastAPI, Request  # at module level: route annotations are resolved here
from rich.console import Console
from rich.table import Table

ASGIApp = Callable[..., Awaitable[None]]
SECRET = "bench-secret-key-0123456789abcdef-0123456789abcdef"
REDIS_URL = os.environ.get("SESSION_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("SESSION_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REQUESTS = int(os.environ.get("SESSION_BENCH_REQUESTS", "2000"))
ROUNDS = int(os.environ.get("SESSION_BENCH_ROUNDS", "5"))
SLICE = float(os.environ.get("SESSION_BENCH_SLICE", "1.5"))  # seconds at most per measurement


@dataclass
class Variant:
    name: str
    app: ASGIApp
    redis: bool = False
    setup: Callable[[], Awaitable[None]] | None = None  # e.g. create the SQL table
    cleanup: Callable[[], Awaitable[None]] | None = None  # drop what setup made, close pools
    plain: bool = False  # also time GET /plain, a route that does not use the session
    reads: list[float] = field(default_factory=list)  # requests per second, per round
    writes: list[float] = field(default_factory=list)
    plains: list[float] = field(default_factory=list)
    redis_per_read: tuple[float, float] | None = None  # (commands, round trips)
    redis_per_write: tuple[float, float] | None = None


class CookieJar:
    """Carries Set-Cookie values to the next request, as a browser would."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def header(self) -> list[tuple[bytes, bytes]]:
        if not self.cookies:
            return []
        return [(b"cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()).encode())]

    def update(self, headers: list[tuple[bytes, bytes]]) -> None:
        for name, value in headers:
            if name.lower() == b"set-cookie":
                pair = value.decode().split(";", 1)[0]
                key, _, val = pair.partition("=")
                if "max-age=0" in value.decode().lower() or not val:
                    self.cookies.pop(key, None)
                else:
                    self.cookies[key] = val


async def request(app: ASGIApp, target: str, jar: CookieJar, method: str = "GET") -> int:
    """One request straight into the ASGI app; `target` is a path with an optional query."""
    path, _, query = target.partition("?")
    headers = [(b"host", b"bench.local"), *jar.header()]
    if method != "GET":
        headers.append((b"sec-fetch-site", b"same-origin"))  # as a browser sends it: CSRF checks pass
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("bench.local", 443),
        "state": {},
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            jar.update(message.get("headers", []))

    await app(scope, receive, send)
    return status


async def _rate(app: ASGIApp, path: str, count: int) -> float:
    """Requests per second over `count` requests, or over SLICE seconds for slow variants."""
    jar = CookieJar()
    assert await request(app, "/write", jar) == 200  # a real session with one value
    start = time.perf_counter()
    deadline = start + SLICE
    done = 0
    while done < count and (done < 50 or time.perf_counter() < deadline):
        await request(app, path, jar)
        done += 1
    return done / (time.perf_counter() - start)


# --- the apps ------------------------------------------------------------------------------------


async def _the_request(request: Request) -> Request:
    return request


def _fastapi(
    read: Callable[[Any], Any], write: Callable[[Any], Any], session: Callable[..., Any] = _the_request
) -> Any:
    """Every variant's app: /read, /write, and /plain, which never touches a session.

    The views get what they read from through a dependency: the peers' request (their
    session is `request.session`), session-kit's `get_session`. Every variant, the floor
    included, pays for one dependency, so the cost cancels out of the overhead.
    """
    app = FastAPI()
    source = Depends(session)

    @app.get("/read")
    async def read_view(context: Any = source) -> dict[str, Any]:
        return {"value": await read(context)}

    @app.get("/write")
    async def write_view(context: Any = source) -> dict[str, Any]:
        await write(context)
        return {"ok": True}

    @app.get("/plain")
    async def plain_view() -> dict[str, Any]:
        return {"ok": True}

    return app


def floor_app() -> Any:
    async def nothing(request: Any) -> None:
        return None

    return _fastapi(nothing, nothing)


def starlette_app() -> Any:
    from starlette.middleware.sessions import SessionMiddleware

    async def read(request: Any) -> Any:
        return request.session.get("value")

    async def write(request: Any) -> None:
        request.session["value"] = uuid.uuid4().hex

    app = _fastapi(read, write)
    app.add_middleware(SessionMiddleware, secret_key=SECRET, https_only=True)
    return app


def starsessions_app(store: Any) -> Any:
    from starsessions import SessionAutoloadMiddleware, SessionMiddleware

    async def read(request: Any) -> Any:
        return request.session.get("value")

    async def write(request: Any) -> None:
        request.session["value"] = uuid.uuid4().hex

    app = _fastapi(read, write)
    app.add_middleware(SessionAutoloadMiddleware)
    app.add_middleware(SessionMiddleware, store=store, cookie_https_only=True, lifetime=3600)
    return app


def session_kit_variant(name: str, package: Any, store_url: str, plain: bool = False, **settings: Any) -> Variant:
    """A FastAPI app with session-kit on the store `store_url` names; SQL tables are made in setup."""

    async def read(session: Any) -> Any:
        return session.data.get("value")

    async def write(session: Any) -> None:
        session.data["value"] = uuid.uuid4().hex

    app = _fastapi(read, write, package.get_session)
    config = package.SessionSettings(secret_key=SECRET, store_url=store_url, **settings)
    store = package.open_store(config.store_url, idle_timeout=config.idle_timeout)
    package.setup_sessions(app, config, store=store)
    sql = hasattr(store, "create_tables")
    redis_prefix = redis_key_prefix(store_url)

    async def setup() -> None:
        if sql:
            await store.create_tables()

    async def cleanup() -> None:
        try:
            if sql:
                await store.drop_tables()
            elif redis_prefix is not None:
                drop_redis_keys(redis_prefix)
            elif hasattr(store, "delete_all"):
                await store.delete_all()
        finally:
            await store.close()

    return Variant(name, app, redis=store_url.startswith("redis"), setup=setup, cleanup=cleanup, plain=plain)


def redis_key_prefix(store_url: str) -> str | None:
    """The `prefix` a Redis store URL of this bench names, or None for any other store."""
    from urllib.parse import parse_qs, urlsplit

    if not store_url.startswith("redis"):
        return None
    prefixes = parse_qs(urlsplit(store_url).query).get("prefix")
    if not prefixes:
        raise ValueError("a bench Redis store URL must name its own key prefix (?prefix=...)")
    return prefixes[0]


def generate_package(workdir: Path, stores: list[str], package: str = "benchapp", *settings: str) -> Any:
    """Generate session-kit into a scratch project with the given stores (and options) and import it."""
    project = workdir / f"proj-{package}"
    (project / package).mkdir(parents=True)
    (project / package / "__init__.py").write_text("")
    argv = [
        sys.executable,
        "-m",
        "session_kit",
        "add",
        "module",
        "session",
        "--yes",
        "--package",
        f"{package}.sessions",
        "--project-dir",
        str(project),
        "--set",
        f"stores={','.join(stores)}",
        *(arg for setting in settings for arg in ("--set", setting)),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_KIT_")}
    subprocess.run(argv, check=True, capture_output=True, env=env)
    sys.path.insert(0, str(project))
    return importlib.import_module(f"{package}.sessions")


def available_stores() -> list[str]:
    from session_kit.engine.kit import Kit

    option = Kit().options.get("stores")
    return list(option.choices) if option else ["memory"]


def drop_redis_keys(prefix: str) -> int:
    """Delete every key of this run under `prefix`, in bounded batches, with a client of its own.

    The bench cleans Redis itself rather than through a store's `delete_all`, so a store
    bug there can never leave a run's keys behind.
    """
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    dropped = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}*", count=1_000):
            batch.append(key)
            if len(batch) == 1_000:
                dropped += int(client.delete(*batch))
                batch.clear()
        if batch:
            dropped += int(client.delete(*batch))
    finally:
        client.close()
    return dropped


def redis_is_up() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except Exception:
        return False


# --- the run ---------------------------------------------------------------------------------------


def build_variants(workdir: Path, console: Console) -> list[Variant]:
    stores = available_stores()
    generate_package(workdir, stores)
    generate_package(workdir, stores, "benchjwt", "token_format=jwt")
    builders = variant_builders(workdir, uuid.uuid4().hex[:8])
    if not redis_is_up():
        console.print("[yellow]Redis is not reachable: Redis variants skipped[/]")
        builders = {name: build for name, build in builders.items() if "Redis" not in name}
    if not any("stateless" in name for name in builders):
        console.print("[yellow]this kit has no stateless JWT mode: that variant is skipped[/]")
    return [build() for build in builders.values()]


def named_variant(name: str, workdir: Path) -> Variant:
    """One variant, from packages generated earlier (their projects already on sys.path)."""
    return variant_builders(workdir, os.environ.get("SESSION_BENCH_TAG", "e2e"))[name]()


def variant_builders(workdir: Path, tag: str) -> dict[str, Callable[[], Variant]]:
    """Every variant this kit can run, by name; `tag` makes table names and key prefixes this run's own."""
    from starsessions import InMemoryStore

    package = importlib.import_module("benchapp.sessions")
    jwt = importlib.import_module("benchjwt.sessions")
    stores = available_stores()
    memory = "memory://?max_sessions=100000"
    builders: dict[str, Callable[[], Variant]] = {
        "floor (no session middleware)": lambda: Variant("floor (no session middleware)", floor_app(), plain=True),
        "Starlette SessionMiddleware": lambda: Variant("Starlette SessionMiddleware", starlette_app()),
        "starsessions + InMemoryStore": lambda: Variant(
            "starsessions + InMemoryStore", starsessions_app(InMemoryStore())
        ),
        "session-kit + memory": lambda: session_kit_variant("session-kit + memory", package, memory, plain=True),
        "session-kit JWT + memory": lambda: session_kit_variant("session-kit JWT + memory", jwt, memory),
    }
    if "sql" in stores:
        sqlite = f"sqlite+aiosqlite:///{workdir}/s-{tag}.db"
        postgres = f"{POSTGRES_URL}?session_table=bench_{tag}"
        builders["session-kit + SQLite"] = lambda: session_kit_variant("session-kit + SQLite", package, sqlite)
        builders["session-kit + PostgreSQL"] = lambda: session_kit_variant(
            "session-kit + PostgreSQL", package, postgres
        )
    builders["starsessions + RedisStore"] = lambda: starsessions_redis_variant(f"bench-{tag}-starsessions")
    if "redis" in stores:
        for name, module, prefix, extra in (
            ("session-kit + Redis", package, "sk", {"plain": True}),
            ("session-kit JWT + Redis", jwt, "jwt", {}),
            ("session-kit JWT stateless + Redis", jwt, "sl", {"jwt_stateless": True}),
        ):
            known = getattr(module.SessionSettings, "model_fields", {})
            if not all(key == "plain" or key in known for key in extra):
                continue  # a kit without that mode
            url = f"{REDIS_URL}?prefix=bench-{tag}-{prefix}"
            builders[name] = lambda name=name, module=module, url=url, extra=extra: session_kit_variant(
                name, module, url, **extra
            )
    return builders


def starsessions_redis_variant(prefix: str) -> Variant:
    from redis.asyncio import Redis
    from starsessions.stores.redis import RedisStore

    client = Redis.from_url(REDIS_URL)

    async def drop_keys() -> None:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()

    app = starsessions_app(RedisStore(connection=client, prefix=prefix))
    return Variant("starsessions + RedisStore", app, redis=True, cleanup=drop_keys)


async def _measure(variants: list[Variant], console: Console) -> None:
    for variant in variants:
        if variant.setup:
            await variant.setup()
    try:
        await _measure_all(variants, console)
    finally:
        for variant in variants:
            if variant.cleanup:
                await variant.cleanup()


async def _measure_all(variants: list[Variant], console: Console) -> None:
    for variant in list(variants):  # warm-up: imports, connections, caches
        try:
            await _rate(variant.app, "/read", 200)
        except Exception as exc:  # a broken variant is reported and left out; the others still run
            console.print(f"[red]{variant.name}: failed ({type(exc).__name__}: {exc}), left out of this run[/]")
            variants.remove(variant)
    for round_number in range(ROUNDS):
        for variant in variants:  # interleaved, so drift hits every variant alike
            variant.reads.append(await _rate(variant.app, "/read", REQUESTS))
            variant.writes.append(await _rate(variant.app, "/write", REQUESTS))
            if variant.plain:
                variant.plains.append(await _rate(variant.app, "/plain", REQUESTS))
        console.print(f"  round {round_number + 1}/{ROUNDS} done")
    with RedisCounter() as counter:
        for variant in variants:
            if variant.redis:
                variant.redis_per_read = await _redis_per_request(counter, variant.app, "/read")
                variant.redis_per_write = await _redis_per_request(counter, variant.app, "/write")


async def _redis_per_request(counter: RedisCounter, app: ASGIApp, path: str, count: int = 300) -> tuple[float, float]:
    """Redis commands and round trips per request on an established session."""
    jar = CookieJar()
    await request(app, "/write", jar)
    await request(app, path, jar)  # the first request after a write may differ: not counted
    before = counter.snapshot()
    for _ in range(count):
        await request(app, path, jar)
    spent = counter.since(before)
    return spent.commands / count, spent.round_trips / count


def run(console: Console, workdir: Path) -> dict[str, Any]:
    import flask_peers

    variants = build_variants(workdir, console)
    asyncio.run(_measure(variants, console))
    result = report(variants, console)
    result["flask"] = flask_peers.run(workdir, console)
    return result


def report(variants: list[Variant], console: Console) -> dict[str, Any]:
    floor = variants[0]
    floor_read = 1e6 / statistics.median(floor.reads)
    floor_write = 1e6 / statistics.median(floor.writes)
    rows: dict[str, Any] = {}
    title = f"Per-request overhead, in process ({REQUESTS} requests or {SLICE} s x {ROUNDS} rounds, medians)"
    table = Table(title=title)
    for column in (
        "variant",
        "read req/s",
        "write req/s",
        "read µs over floor",
        "write µs over floor",
        "spread %",
        "/plain req/s",
        "Redis cmds/trips per read",
        "per write",
    ):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for v in variants:
        read = statistics.median(v.reads)
        write = statistics.median(v.writes)
        spread = (max(v.reads) - min(v.reads)) / read * 100
        over_read = 1e6 / read - floor_read
        over_write = 1e6 / write - floor_write
        plain = statistics.median(v.plains) if v.plains else None
        rows[v.name] = {
            "read_rps": round(read),
            "write_rps": round(write),
            "read_overhead_us": round(over_read, 1),
            "write_overhead_us": round(over_write, 1),
            "spread_pct": round(spread, 1),
            "plain_rps": None if plain is None else round(plain),
            "redis_per_read": v.redis_per_read,
            "redis_per_write": v.redis_per_write,
        }
        table.add_row(
            v.name,
            f"{read:,.0f}",
            f"{write:,.0f}",
            f"{over_read:.1f}",
            f"{over_write:.1f}",
            f"{spread:.0f}",
            "" if plain is None else f"{plain:,.0f}",
            redis_pair(v.redis_per_read),
            redis_pair(v.redis_per_write),
        )
    console.print(table)
    ratios = _ratios(rows)
    print_verdicts(console, ratios)
    return {"variants": rows, "ratios": ratios}


def redis_pair(pair: tuple[float, float] | None) -> str:
    return "" if pair is None else f"{pair[0]:.2f} / {pair[1]:.2f}"


def ratio(value: float, target: float, better: str) -> dict[str, Any]:
    """One target row: the measured ratio, its target, which side is better, and the verdict."""
    met = value <= target if better == "lower" else value >= target
    return {"value": round(value, 3), "target": target, "better": better, "met": met}


def overhead_ratio(ours: dict[str, Any], theirs: dict[str, Any], kind: str, target: float) -> dict[str, Any]:
    """Our µs over the floor against theirs; a peer at or below the floor's noise has no ratio."""
    key = f"{kind}_overhead_us"
    if theirs[key] <= 0:
        return {"value": None, "target": target, "better": "lower", "met": None}
    return ratio(ours[key] / theirs[key], target, "lower")


def print_verdicts(console: Console, ratios: dict[str, dict[str, Any]]) -> None:
    for name, row in ratios.items():
        sign = "<=" if row["better"] == "lower" else ">="
        if row["value"] is None:
            console.print(f"{name}: not measurable in this run (the reference is within noise of the floor)")
            continue
        value, target = row["value"], row["target"]
        if row["met"]:
            verdict = "[green]met[/]"
        else:
            factor = value / target if row["better"] == "lower" else target / value if value else float("inf")
            verdict = f"[red]missed by {factor:.2f}x[/]"
        console.print(f"{name}: {value:.2f} (target {sign} {target}) {verdict}")


def _ratios(rows: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue's ASGI targets, from the measured rows; a ratio whose rows are missing is left out."""
    out: dict[str, dict[str, Any]] = {}
    floor = rows["floor (no session middleware)"]
    memory = rows.get("session-kit + memory")
    starlette = rows.get("Starlette SessionMiddleware")
    if memory and starlette:
        out["memory read overhead / Starlette's"] = overhead_ratio(memory, starlette, "read", 0.8)
        out["memory write overhead / Starlette's"] = overhead_ratio(memory, starlette, "write", 1.0)
    if memory and memory["plain_rps"] and floor["plain_rps"]:
        # Time per request, so a ratio above 1 is slower than the floor.
        out["route without the session: time / the floor's"] = ratio(
            floor["plain_rps"] / memory["plain_rps"], 1.05, "lower"
        )
    sk_redis = rows.get("session-kit + Redis")
    ss_redis = rows.get("starsessions + RedisStore")
    if sk_redis and ss_redis:
        out["Redis read throughput / starsessions'"] = ratio(sk_redis["read_rps"] / ss_redis["read_rps"], 2.0, "higher")
        out["Redis write throughput / starsessions'"] = ratio(
            sk_redis["write_rps"] / ss_redis["write_rps"], 1.3, "higher"
        )
    if sk_redis:
        for name, target in (("PostgreSQL", 1.5), ("SQLite", 2.0)):
            row = rows.get(f"session-kit + {name}")
            if row:
                out[f"{name} read overhead / session-kit Redis's"] = overhead_ratio(row, sk_redis, "read", target)
    for store in ("memory", "Redis"):
        opaque, jwt = rows.get(f"session-kit + {store}"), rows.get(f"session-kit JWT + {store}")
        if opaque and jwt:
            out[f"JWT (stored) read overhead / opaque, {store}"] = overhead_ratio(jwt, opaque, "read", 1.2)
    return out
