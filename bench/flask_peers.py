"""Per-request session overhead on Flask, in process: each WSGI app is called directly with a
WSGI environ (no network, no HTTP client), a cookie jar carries Set-Cookie into the next
request, GET /read reads one value and POST /write sets one.

Peers: Flask with no session use (the floor), Flask's own signed-cookie session, and
Flask-Session on Redis. session-kit: its Flask extension on the memory and Redis stores
(the synchronous core, blocking redis-py client). Redis work is counted from what the
client sends (counting.py).
"""

from __future__ import annotations

import importlib
import io
import statistics
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from counting import RedisCounter
from rich.console import Console
from rich.table import Table
from runtime import REDIS_URL, REQUESTS, ROUNDS, SECRET, SLICE, CookieJar, generate_package, redis_is_up

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
FLOOR = "Flask floor (no session)"
COOKIE = "Flask signed-cookie session"
FLASK_SESSION = "Flask-Session + Redis"
SK_MEMORY = "session-kit Flask + memory"
SK_REDIS = "session-kit Flask + Redis"


@dataclass
class WsgiVariant:
    name: str
    app: WSGIApp
    redis: bool = False
    cleanup: Callable[[], None] | None = None
    reads: list[float] = field(default_factory=list)
    writes: list[float] = field(default_factory=list)
    redis_per_read: tuple[float, float] | None = None  # (commands, round trips)
    redis_per_write: tuple[float, float] | None = None


def call(app: WSGIApp, method: str, path: str, jar: CookieJar) -> int:
    """One request through the WSGI interface, as a server would make it; returns the status."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "bench.local",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "bench.local",
        # A same-origin request, as a browser sends it: CSRF checks pass.
        "HTTP_SEC_FETCH_SITE": "same-origin",
        "CONTENT_LENGTH": "0",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if jar.cookies:
        environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in jar.cookies.items())
    status = 0

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        nonlocal status
        status = int(line.split(" ", 1)[0])
        jar.update([(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers])

    body = app(environ, start_response)
    try:
        for _ in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return status


def _rate(app: WSGIApp, method: str, path: str, count: int) -> float:
    """Requests per second over `count` requests, or over SLICE seconds for slow variants."""
    jar = CookieJar()
    status = call(app, "POST", "/write", jar)
    if status != 200:
        raise RuntimeError(f"POST /write answered {status}: the app did not start a session")
    start = time.perf_counter()
    deadline = start + SLICE
    done = 0
    while done < count and (done < 50 or time.perf_counter() < deadline):
        call(app, method, path, jar)
        done += 1
    return done / (time.perf_counter() - start)


# --- the apps ------------------------------------------------------------------------------------


def _flask(read: Callable[[], Any], write: Callable[[], None]) -> Any:
    from flask import Flask, jsonify

    app = Flask(f"bench{uuid.uuid4().hex[:6]}")
    app.config.update(SECRET_KEY=SECRET, SESSION_COOKIE_SECURE=True)

    @app.get("/read")
    def read_view() -> Any:
        return jsonify(value=read())

    @app.post("/write")
    def write_view() -> Any:
        write()
        return jsonify(ok=True)

    return app


def floor_app() -> Any:
    return _flask(lambda: None, lambda: None)


def _flask_session_views() -> tuple[Callable[[], Any], Callable[[], None]]:
    from flask import session

    def write() -> None:
        session["value"] = uuid.uuid4().hex

    return (lambda: session.get("value")), write


def cookie_app() -> Any:
    return _flask(*_flask_session_views())


def flask_session_variant(prefix: str) -> WsgiVariant:
    import redis
    from flask_session import Session

    client = redis.Redis.from_url(REDIS_URL)
    app = _flask(*_flask_session_views())
    app.config.update(SESSION_TYPE="redis", SESSION_REDIS=client, SESSION_KEY_PREFIX=prefix)
    Session(app)

    def cleanup() -> None:
        keys = list(client.scan_iter(match=f"{prefix}*", count=10_000))
        if keys:
            client.delete(*keys)
        client.close()

    return WsgiVariant(FLASK_SESSION, app, redis=True, cleanup=cleanup)


def session_kit_variant(name: str, package: Any, store_url: str) -> WsgiVariant:
    """A Flask app with session-kit's extension on the store `store_url` names."""

    def read() -> Any:
        return package.get_session().data.get("value")

    def write() -> None:
        package.get_session().data["value"] = uuid.uuid4().hex

    app = _flask(read, write)
    settings = package.SessionSettings(secret_key=SECRET, store_url=store_url)
    store = package.open_store(settings.store_url, idle_timeout=settings.idle_timeout)
    package.Sessions(app, settings, store=store)

    def cleanup() -> None:
        if hasattr(store, "delete_all"):
            store.delete_all()
        store.close()

    return WsgiVariant(name, app, redis=store_url.startswith("redis"), cleanup=cleanup)


def build_variants(workdir: Path, console: Console) -> list[WsgiVariant]:
    generate_package(workdir, ["memory", "redis"], "benchflask", "framework=flask")
    package = importlib.import_module("benchflask.sessions")
    tag = uuid.uuid4().hex[:8]
    variants = [
        WsgiVariant(FLOOR, floor_app()),
        WsgiVariant(COOKIE, cookie_app()),
        session_kit_variant(SK_MEMORY, package, "memory://?max_sessions=100000"),
    ]
    if redis_is_up():
        variants.append(flask_session_variant(f"bench-{tag}-flask-session:"))
        variants.append(session_kit_variant(SK_REDIS, package, f"{REDIS_URL}?prefix=bench-{tag}-skflask"))
    else:
        console.print("[yellow]Redis is not reachable: the Flask Redis variants are skipped[/]")
    return variants


def _measure(variants: list[WsgiVariant], console: Console) -> None:
    for variant in list(variants):  # warm-up: imports, connections, caches
        try:
            _rate(variant.app, "GET", "/read", 200)
        except Exception as exc:  # a broken variant is reported and left out; the others still run
            console.print(f"[red]{variant.name}: failed ({type(exc).__name__}: {exc}), left out of this run[/]")
            variants.remove(variant)
    for round_number in range(ROUNDS):
        for variant in variants:  # interleaved, so drift hits every variant alike
            variant.reads.append(_rate(variant.app, "GET", "/read", REQUESTS))
            variant.writes.append(_rate(variant.app, "POST", "/write", REQUESTS))
        console.print(f"  Flask round {round_number + 1}/{ROUNDS} done")
    with RedisCounter() as counter:
        for variant in variants:
            if variant.redis:
                variant.redis_per_read = _per_request(counter, variant.app, "GET", "/read")
                variant.redis_per_write = _per_request(counter, variant.app, "POST", "/write")


def _per_request(counter: RedisCounter, app: WSGIApp, method: str, path: str, count: int = 300) -> tuple[float, float]:
    jar = CookieJar()
    call(app, "POST", "/write", jar)
    call(app, method, path, jar)  # the first request after a write may differ: not counted
    before = counter.snapshot()
    for _ in range(count):
        call(app, method, path, jar)
    spent = counter.since(before)
    return spent.commands / count, spent.round_trips / count


def run(workdir: Path, console: Console) -> dict[str, Any]:
    variants = build_variants(workdir, console)
    try:
        _measure(variants, console)
    finally:
        for variant in variants:
            if variant.cleanup:
                variant.cleanup()
    return report(variants, console)


def report(variants: list[WsgiVariant], console: Console) -> dict[str, Any]:
    from runtime import print_verdicts, redis_pair

    floor = variants[0]
    floor_read = 1e6 / statistics.median(floor.reads)
    floor_write = 1e6 / statistics.median(floor.writes)
    rows: dict[str, Any] = {}
    table = Table(title=f"Flask, per-request overhead in process (WSGI; {REQUESTS} requests or {SLICE} s x {ROUNDS})")
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
        read, write = statistics.median(v.reads), statistics.median(v.writes)
        rows[v.name] = {
            "read_rps": round(read),
            "write_rps": round(write),
            "read_overhead_us": round(1e6 / read - floor_read, 1),
            "write_overhead_us": round(1e6 / write - floor_write, 1),
            "spread_pct": round((max(v.reads) - min(v.reads)) / read * 100, 1),
            "redis_per_read": v.redis_per_read,
            "redis_per_write": v.redis_per_write,
        }
        row = rows[v.name]
        table.add_row(
            v.name,
            f"{read:,.0f}",
            f"{write:,.0f}",
            f"{row['read_overhead_us']:.1f}",
            f"{row['write_overhead_us']:.1f}",
            f"{row['spread_pct']:.0f}",
            redis_pair(v.redis_per_read),
            redis_pair(v.redis_per_write),
        )
    console.print(table)
    ratios = flask_ratios(rows)
    print_verdicts(console, ratios)
    return {"variants": rows, "ratios": ratios}


def flask_ratios(rows: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue's Flask targets, from the measured rows; a ratio whose rows are missing is left out."""
    from runtime import overhead_ratio, ratio

    out: dict[str, dict[str, Any]] = {}
    memory, cookie = rows.get(SK_MEMORY), rows.get(COOKIE)
    if memory and cookie:
        out["Flask memory read overhead / Flask's signed cookie"] = overhead_ratio(memory, cookie, "read", 0.7)
        out["Flask memory write overhead / Flask's signed cookie"] = overhead_ratio(memory, cookie, "write", 0.7)
    sk_redis, peer = rows.get(SK_REDIS), rows.get(FLASK_SESSION)
    if sk_redis and peer:
        out["Flask Redis read throughput / Flask-Session's"] = ratio(
            sk_redis["read_rps"] / peer["read_rps"], 2.0, "higher"
        )
        out["Flask Redis write throughput / Flask-Session's"] = ratio(
            sk_redis["write_rps"] / peer["write_rps"], 1.3, "higher"
        )
    return out
