"""Per-request session overhead, in process: each ASGI app is called directly (no network,
no HTTP client), a real session cookie is carried from response to request, and every
variant runs an endpoint that reads one value and one that writes one value.

Peers: no session middleware (the floor), Starlette's SessionMiddleware (signed cookie),
starsessions with its memory and Redis stores. session-kit: every store it generated,
opaque tokens (and JWT when generated). Redis commands and round trips are counted.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request  # at module level: route annotations are resolved here
from rich.console import Console
from rich.table import Table

ASGIApp = Callable[..., Awaitable[None]]
SECRET = "bench-secret-key-0123456789abcdef-0123456789abcdef"
REDIS_URL = os.environ.get("SESSION_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("SESSION_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REQUESTS = int(os.environ.get("SESSION_BENCH_REQUESTS", "2000"))
ROUNDS = int(os.environ.get("SESSION_BENCH_ROUNDS", "5"))


@dataclass
class Variant:
    name: str
    app: ASGIApp
    redis: bool = False
    reads: list[float] = field(default_factory=list)  # requests per second, per round
    writes: list[float] = field(default_factory=list)
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


async def request(app: ASGIApp, path: str, jar: CookieJar) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench.local"), *jar.header()],
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
    jar = CookieJar()
    assert await request(app, "/write", jar) == 200  # a real session with one value
    start = time.perf_counter()
    for _ in range(count):
        await request(app, path, jar)
    return count / (time.perf_counter() - start)


# --- the apps ------------------------------------------------------------------------------------


def _fastapi(read: Callable[[Any], Any], write: Callable[[Any], Any]) -> Any:
    app = FastAPI()

    @app.get("/read")
    async def read_view(request: Request) -> dict[str, Any]:
        return {"value": await read(request)}

    @app.get("/write")
    async def write_view(request: Request) -> dict[str, Any]:
        await write(request)
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


def session_kit_app(package: Any, store_url: str) -> Any:
    async def read(request: Any) -> Any:
        return request.state.session.data.get("value")

    async def write(request: Any) -> None:
        request.state.session.data["value"] = uuid.uuid4().hex

    app = _fastapi(read, write)
    settings = package.SessionSettings(secret_key=SECRET, store_url=store_url)
    package.setup_sessions(app, settings)
    return app


def generate_package(workdir: Path, stores: list[str]) -> Any:
    """Generate session-kit into a scratch project with the given stores and import it."""
    project = workdir / "benchproj"
    (project / "benchapp").mkdir(parents=True)
    (project / "benchapp" / "__init__.py").write_text("")
    argv = [
        sys.executable,
        "-m",
        "session_kit",
        "add",
        "module",
        "session",
        "--yes",
        "--package",
        "benchapp.sessions",
        "--project-dir",
        str(project),
        "--set",
        f"stores={','.join(stores)}",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_KIT_")}
    subprocess.run(argv, check=True, capture_output=True, env=env)
    sys.path.insert(0, str(project))
    return importlib.import_module("benchapp.sessions")


def available_stores() -> list[str]:
    from session_kit.engine.kit import Kit

    option = Kit().options.get("stores")
    return list(option.choices) if option else ["memory"]


# --- counting Redis work ---------------------------------------------------------------------------


class RedisCounter:
    """Counts round trips (packets sent by redis.asyncio) and server-side commands (commandstats)."""

    def __init__(self) -> None:
        import redis
        import redis.asyncio.connection as connection

        self.sync = redis.Redis.from_url(REDIS_URL)
        self.round_trips = 0
        self._connection = connection.AbstractConnection
        original = self._connection.send_packed_command
        counter = self

        async def counting(self: Any, command: Any, check_health: bool = True) -> None:
            counter.round_trips += 1
            await original(self, command, check_health)

        self._original = original
        self._connection.send_packed_command = counting  # type: ignore[method-assign]

    def commands(self) -> int:
        stats = self.sync.info("commandstats")
        return sum(int(v["calls"]) for k, v in stats.items() if not k.endswith(("info", "config|resetstat")))

    async def per_request(self, app: ASGIApp, path: str, count: int) -> tuple[float, float]:
        jar = CookieJar()
        await request(app, "/write", jar)
        self.sync.config_resetstat()
        trips_before = self.round_trips
        for _ in range(count):
            await request(app, path, jar)
        calls = self.commands()
        return calls / count, (self.round_trips - trips_before) / count

    def close(self) -> None:
        self._connection.send_packed_command = self._original  # type: ignore[method-assign]
        self.sync.close()


def redis_is_up() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except Exception:
        return False


# --- the run ---------------------------------------------------------------------------------------


def build_variants(workdir: Path, console: Console) -> list[Variant]:
    from starsessions import InMemoryStore

    stores = available_stores()
    package = generate_package(workdir, stores)
    variants = [
        Variant("floor (no session middleware)", floor_app()),
        Variant("Starlette SessionMiddleware", starlette_app()),
        Variant("starsessions + InMemoryStore", starsessions_app(InMemoryStore())),
        Variant("session-kit + memory", session_kit_app(package, "memory://?max_sessions=100000")),
    ]
    if "sql" in stores:
        variants.append(
            Variant("session-kit + SQLite", session_kit_app(package, f"sqlite+aiosqlite:///{workdir}/s.db"))
        )
        variants.append(Variant("session-kit + PostgreSQL", session_kit_app(package, POSTGRES_URL)))
    if redis_is_up():
        from redis.asyncio import Redis
        from starsessions.stores.redis import RedisStore

        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        variants.append(
            Variant(
                "starsessions + RedisStore",
                starsessions_app(RedisStore(connection=Redis.from_url(REDIS_URL), prefix=prefix)),
                redis=True,
            )
        )
        if "redis" in stores:
            variants.append(
                Variant("session-kit + Redis", session_kit_app(package, f"{REDIS_URL}?prefix={prefix}"), redis=True)
            )
    else:
        console.print("[yellow]Redis is not reachable: Redis variants skipped[/]")
    return variants


async def _measure(variants: list[Variant], console: Console) -> None:
    for variant in variants:  # warm-up: imports, connections, caches
        await _rate(variant.app, "/read", 200)
    for round_number in range(ROUNDS):
        for variant in variants:  # interleaved, so drift hits every variant alike
            variant.reads.append(await _rate(variant.app, "/read", REQUESTS))
            variant.writes.append(await _rate(variant.app, "/write", REQUESTS))
        console.print(f"  round {round_number + 1}/{ROUNDS} done")
    if any(v.redis for v in variants):
        counter = RedisCounter()
        try:
            for variant in variants:
                if variant.redis:
                    variant.redis_per_read = await counter.per_request(variant.app, "/read", 500)
                    variant.redis_per_write = await counter.per_request(variant.app, "/write", 500)
        finally:
            counter.close()


def run(console: Console) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sk-runtime-") as scratch:
        variants = build_variants(Path(scratch), console)
        asyncio.run(_measure(variants, console))
    return report(variants, console)


def report(variants: list[Variant], console: Console) -> dict[str, Any]:
    floor = variants[0]
    floor_read = 1e6 / statistics.median(floor.reads)
    floor_write = 1e6 / statistics.median(floor.writes)
    rows: dict[str, Any] = {}
    table = Table(title=f"Per-request overhead, in process ({REQUESTS} requests x {ROUNDS} rounds, medians)")
    for column in (
        "variant",
        "read req/s",
        "write req/s",
        "read µs over floor",
        "write µs over floor",
        "spread %",
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
        rows[v.name] = {
            "read_rps": round(read),
            "write_rps": round(write),
            "read_overhead_us": round(over_read, 1),
            "write_overhead_us": round(over_write, 1),
            "spread_pct": round(spread, 1),
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
            _pair(v.redis_per_read),
            _pair(v.redis_per_write),
        )
    console.print(table)
    ratios = _ratios(rows)
    for name, (value, target, better) in ratios.items():
        met = value <= target if better == "lower" else value >= target
        verdict = "[green]meets[/]" if met else "[red]misses[/]"
        console.print(f"{name}: {value:.2f} (target {'<=' if better == 'lower' else '>='} {target}) {verdict}")
    return {"variants": rows, "ratios": {k: {"value": round(v[0], 3), "target": v[1]} for k, v in ratios.items()}}


def _pair(pair: tuple[float, float] | None) -> str:
    return "" if pair is None else f"{pair[0]:.2f} / {pair[1]:.2f}"


def _ratios(rows: dict[str, Any]) -> dict[str, tuple[float, float, str]]:
    out: dict[str, tuple[float, float, str]] = {}
    sk_memory = rows.get("session-kit + memory")
    starlette = rows.get("Starlette SessionMiddleware")
    if sk_memory and starlette and starlette["read_overhead_us"] > 0:
        out["memory read overhead / Starlette's"] = (
            sk_memory["read_overhead_us"] / starlette["read_overhead_us"],
            0.8,
            "lower",
        )
    sk_redis = rows.get("session-kit + Redis")
    ss_redis = rows.get("starsessions + RedisStore")
    if sk_redis and ss_redis:
        out["Redis read throughput / starsessions'"] = (sk_redis["read_rps"] / ss_redis["read_rps"], 2.0, "higher")
        out["Redis write throughput / starsessions'"] = (sk_redis["write_rps"] / ss_redis["write_rps"], 1.3, "higher")
    return out
