"""Round trips per operation and store: what one request of each kind costs the store server.

Every operation is one HTTP request into a FastAPI app built from the generated package's
public API (`setup_sessions`, `get_session`, `session_router`), called in process with a
cookie jar. Redis: commands and round trips this process's client sends. SQL: statements
and transactions begun, from SQLAlchemy's engine events (counting.py). Each operation is
prepared by requests that are not counted, then measured REPEAT times; the table shows the
mean per operation. The clock is a `ManualClock`, so "touch due" is exact: the read comes
just after the touch interval has passed.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from counting import RedisCounter, SqlCounter
from fastapi import Depends, FastAPI
from rich.console import Console
from rich.table import Table
from runtime import (
    POSTGRES_URL,
    REDIS_URL,
    SECRET,
    CookieJar,
    available_stores,
    drop_redis_keys,
    generate_package,
    redis_is_up,
    redis_key_prefix,
    request,
)

REPEAT = int(os.environ.get("SESSION_BENCH_ROUNDTRIP_REPEAT", "10"))
LIMIT = 10  # sessions per principal: sign-ins check it, and listing 5 stays under it
LISTED = 5
PACKAGE = "benchops"
# Per operation: the target for Redis (round trips) and for PostgreSQL (statements). Every
# request but the two reads first loads its session (the unchanged read's cost); the target
# is for the operation itself, what the request costs beyond that load.
_WHOLE_REQUEST = ("unchanged read", "read, touch due")
TARGETS: dict[str, tuple[int | None, int | None]] = {
    "unchanged read": (1, 1),
    "read, touch due": (1, 1),
    "signed-in write": (1, 1),
    "sign-in (rotation, limit)": (1, None),
    "elevate (rotation)": (1, None),
    "logout": (1, None),
    f"list {LISTED} sessions": (1, None),
    "revoke principal": (None, None),
}


async def _allow() -> None:
    """The admin check of the bench app: everyone is an administrator here."""


@dataclass
class OpsApp:
    """One app on one store, with what the bench needs to drive and clean it."""

    store_name: str
    store_url: str
    app: Any
    manager: Any
    store: Any
    clock: Any
    settings: Any
    package: Any

    async def call(self, target: str, jar: CookieJar, method: str = "POST") -> int:
        return await request(self.app, target, jar, method)

    async def signed_in(self, user: str) -> CookieJar:
        jar = CookieJar()
        await self.expect(f"/signin?user={user}", jar)
        return jar

    async def expect(self, target: str, jar: CookieJar, method: str = "POST") -> None:
        status = await self.call(target, jar, method)
        if status != 200:
            raise RuntimeError(f"{self.store_name}: {method} {target} answered {status}")

    async def live_sessions(self, user: str) -> int:
        return len(await self.manager.list_sessions(self.package.SessionPrincipal("user", user)))

    async def setup(self) -> None:
        if hasattr(self.store, "create_tables"):
            await self.store.create_tables()

    async def cleanup(self) -> None:
        try:
            prefix = redis_key_prefix(self.store_url)
            if hasattr(self.store, "drop_tables"):
                await self.store.drop_tables()
            elif prefix is not None:
                drop_redis_keys(prefix)
        finally:
            await self.manager.close()


def ops_app(package: Any, store_name: str, store_url: str, *, limit: int | None, manual_clock: bool = True) -> OpsApp:
    """A FastAPI app with routes for every session operation, through the package's public API."""
    clock = package.ManualClock(datetime.now(UTC)) if manual_clock else package.utc_now
    settings = package.SessionSettings(secret_key=SECRET, store_url=store_url, max_sessions_per_principal=limit)
    store = package.open_store(settings.store_url, clock=clock, idle_timeout=settings.idle_timeout)
    app = FastAPI()
    session_of = Depends(package.get_session)

    @app.get("/read")
    async def read(session: Any = session_of) -> dict[str, Any]:
        return {"value": session.data.get("value")}

    @app.post("/write")
    async def write(session: Any = session_of) -> dict[str, Any]:
        session.data["value"] = uuid.uuid4().hex
        return {"ok": True}

    @app.post("/signin")
    async def signin(user: str, session: Any = session_of) -> dict[str, Any]:
        session.mark_authenticated(package.SessionPrincipal("user", user))
        return {"ok": True}

    @app.post("/elevate")
    async def elevate(session: Any = session_of) -> dict[str, Any]:
        session.elevate(roles=["admin"])
        return {"ok": True}

    @app.post("/logout")
    async def logout(session: Any = session_of) -> dict[str, Any]:
        session.destroy()
        return {"ok": True}

    @app.get("/whoami")
    async def whoami(session: Any = session_of) -> dict[str, Any]:
        principal = session.principal
        return {"user": principal.id if principal is not None else None}

    app.include_router(package.session_router(admin=_allow))
    manager = package.setup_sessions(app, settings, store=store, clock=clock)
    return OpsApp(store_name, store_url, app, manager, store, clock, settings, package)


def store_urls(workdir: Path, tag: str) -> dict[str, str]:
    """The stores to drive, by display name: every generated one with a server that answers."""
    stores = available_stores()
    urls = {"memory": "memory://?max_sessions=100000"}
    if "sql" in stores:
        urls["SQLite"] = f"sqlite+aiosqlite:///{workdir}/ops-{tag}.db"
        urls["PostgreSQL"] = f"{POSTGRES_URL}?session_table=ops_{tag}"
    if "redis" in stores and redis_is_up():
        urls["Redis"] = f"{REDIS_URL}?prefix=bench-{tag}-ops"
    return urls


def ops_package(workdir: Path) -> Any:
    """The generated package with every store and the management routes, generated once per run."""
    if not (workdir / f"proj-{PACKAGE}").exists():
        generate_package(workdir, available_stores(), PACKAGE, "management_routes=true")
    return importlib.import_module(f"{PACKAGE}.sessions")


# --- the operations: each prepares its client (not counted), then returns the counted request ----

Prepared = Callable[[], Awaitable[int]]


async def _anonymous(ops: OpsApp) -> CookieJar:
    jar = CookieJar()
    await ops.expect("/write", jar)
    return jar


async def op_read(ops: OpsApp, user: str) -> Prepared:
    jar = await _anonymous(ops)
    return lambda: ops.call("/read", jar, "GET")


async def op_read_touch(ops: OpsApp, user: str) -> Prepared:
    jar = await _anonymous(ops)
    ops.clock.advance(ops.settings.touch_interval + timedelta(seconds=1))
    return lambda: ops.call("/read", jar, "GET")


async def op_write(ops: OpsApp, user: str) -> Prepared:
    jar = await ops.signed_in(user)
    return lambda: ops.call("/write", jar)


async def op_signin(ops: OpsApp, user: str) -> Prepared:
    jar = await _anonymous(ops)
    return lambda: ops.call(f"/signin?user={user}", jar)


async def op_elevate(ops: OpsApp, user: str) -> Prepared:
    jar = await ops.signed_in(user)
    return lambda: ops.call("/elevate", jar)


async def op_logout(ops: OpsApp, user: str) -> Prepared:
    jar = await ops.signed_in(user)
    return lambda: ops.call("/logout", jar)


async def op_list(ops: OpsApp, user: str) -> Prepared:
    jars = [await ops.signed_in(user) for _ in range(LISTED)]
    return lambda: ops.call("/sessions", jars[-1], "GET")


async def op_revoke_principal(ops: OpsApp, user: str) -> Prepared:
    jars = [await ops.signed_in(user) for _ in range(LISTED)]
    return lambda: ops.call(f"/sessions/admin/principals/user/{user}", jars[0], "DELETE")


OPERATIONS: dict[str, Callable[[OpsApp, str], Awaitable[Prepared]]] = dict(
    zip(
        TARGETS,
        (op_read, op_read_touch, op_write, op_signin, op_elevate, op_logout, op_list, op_revoke_principal),
        strict=True,
    )
)


async def _count(ops: OpsApp, redis: RedisCounter, sql: SqlCounter) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, prepare in OPERATIONS.items():
        totals = {"redis_commands": 0, "redis_round_trips": 0, "sql_statements": 0, "sql_transactions": 0}
        for _ in range(REPEAT):
            counted = await prepare(ops, f"u-{uuid.uuid4().hex[:10]}")
            redis_before, sql_before = redis.snapshot(), sql.snapshot()
            status = await counted()
            if status != 200:
                raise RuntimeError(f"{ops.store_name}: {name} answered {status}")
            r, s = redis.since(redis_before), sql.since(sql_before)
            totals["redis_commands"] += r.commands
            totals["redis_round_trips"] += r.round_trips
            totals["sql_statements"] += s.statements
            totals["sql_transactions"] += s.begins
        out[name] = {key: value / REPEAT for key, value in totals.items()}
    return out


async def _run_all(workdir: Path, console: Console) -> dict[str, dict[str, dict[str, float]]]:
    package = ops_package(workdir)
    tag = uuid.uuid4().hex[:8]
    results: dict[str, dict[str, dict[str, float]]] = {}
    for store_name, url in store_urls(workdir, tag).items():
        ops = ops_app(package, store_name, url, limit=LIMIT)
        try:
            await ops.setup()
        except Exception as exc:  # a server that is down: say so, measure the others
            console.print(f"[yellow]{store_name}: not reachable ({type(exc).__name__}), skipped[/]")
            await ops.manager.close()
            continue
        try:
            with RedisCounter() as redis, SqlCounter() as sql:
                await _anonymous(ops)  # warm-up: connections, prepared scripts
                results[store_name] = await _count(ops, redis, sql)
        except Exception as exc:  # a broken store is reported and left out; the others still run
            console.print(f"[red]{store_name}: failed ({type(exc).__name__}: {exc}), left out of this run[/]")
        finally:
            await ops.cleanup()
    return results


def run(workdir: Path, console: Console) -> dict[str, Any]:
    results = asyncio.run(_run_all(workdir, console))
    verdicts = report(results, console)
    return {"repeat": REPEAT, "limit": LIMIT, "stores": results, "targets": verdicts}


def _cell(store: str, row: dict[str, float]) -> str:
    if store == "Redis":
        return f"{row['redis_commands']:.1f} / {row['redis_round_trips']:.1f}"
    if store in ("SQLite", "PostgreSQL"):
        return f"{row['sql_statements']:.1f} / {row['sql_transactions']:.1f}"
    return "–"  # the memory store talks to no server


def report(results: dict[str, dict[str, dict[str, float]]], console: Console) -> dict[str, Any]:
    title = (
        f"Round trips per operation (mean of {REPEAT}; Redis: commands / round trips; SQL: statements / transactions)"
    )
    table = Table(title=title)
    table.add_column("operation")
    for store in results:
        table.add_column(store, justify="right")
    table.add_column("target", justify="left")
    verdicts: dict[str, Any] = {}
    for name, (redis_target, pg_target) in TARGETS.items():
        cells = [_cell(store, results[store][name]) for store in results]
        notes = []
        for store, target, key in (
            ("Redis", redis_target, "redis_round_trips"),
            ("PostgreSQL", pg_target, "sql_statements"),
        ):
            if target is None or store not in results:
                continue
            total = results[store][name][key]
            load = 0.0 if name in _WHOLE_REQUEST else results[store]["unchanged read"][key]
            value = total - load
            met = value <= target
            unit = "round trip" if store == "Redis" else "statement"
            verdicts[f"{store}: {name}"] = {
                "value": value,
                "request": total,
                "target": target,
                "better": "lower",
                "met": met,
            }
            after = f" after the load ({total:.0f} in all)" if load else ""
            verdict = "[green]met[/]" if met else f"[red]missed ({value:.1f})[/]"
            notes.append(f"{store} {target} {unit}{after}: {verdict}")
        table.add_row(name, *cells, "; ".join(notes))
    console.print(table)
    return verdicts
