"""Concurrency against one app process, in process (ASGI called directly, asyncio.gather).

Burst: 300 clients at once on the Redis store, in 3 waves: every client starts a session
(POST /write), then all read it (GET /read), then all change it (POST /write). Any status
but 200, or an exception, is an error. The figure is the error count; target 0.

Sign-in race: 1,000 clients sign in as the same principal at once, under a limit of 3 live
sessions (evict the oldest). Afterwards the principal's live sessions are counted twice:
by the manager's `list_sessions`, and by asking every one of the 1,000 clients whether it
is still signed in. Target: exactly 3 both ways, on every store.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from roundtrips import PACKAGE, OpsApp, ops_app, ops_package, store_urls
from runtime import CookieJar

BURST = int(os.environ.get("SESSION_BENCH_BURST", "300"))
WAVES = (("POST", "/write"), ("GET", "/read"), ("POST", "/write"))
RACERS = int(os.environ.get("SESSION_BENCH_RACERS", "1000"))
RACE_LIMIT = 3


class _Reasons(logging.Handler):
    """Keeps the distinct warnings the generated package logs (why a request got a 503), and
    keeps them off the console: 1,000 clients make a lot of log lines."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if "unavailable" in record.getMessage():
            text = record.getMessage()[:160]
            self.seen[text] = self.seen.get(text, 0) + 1


async def _status(ops: OpsApp, target: str, jar: CookieJar, method: str) -> int | str:
    try:
        return await ops.call(target, jar, method)
    except Exception as exc:  # counted, not raised: the figure is how many requests failed
        return type(exc).__name__


def _errors(outcomes: list[int | str]) -> dict[str, int]:
    """Failed requests by status or exception name."""
    failed: dict[str, int] = {}
    for outcome in outcomes:
        if outcome != 200:
            failed[str(outcome)] = failed.get(str(outcome), 0) + 1
    return failed


async def burst(ops: OpsApp) -> dict[str, Any]:
    jars = [CookieJar() for _ in range(BURST)]
    waves = []
    for method, target in WAVES:
        start = time.perf_counter()
        outcomes = await asyncio.gather(*(_status(ops, target, jar, method) for jar in jars))
        elapsed = time.perf_counter() - start
        failed = _errors(list(outcomes))
        waves.append({"request": f"{method} {target}", "errors": sum(failed.values()), "by_kind": failed})
        waves[-1]["seconds"] = round(elapsed, 3)
    return {"clients": BURST, "waves": waves, "errors": sum(w["errors"] for w in waves)}


async def race(ops: OpsApp) -> dict[str, Any]:
    user = f"racer-{uuid.uuid4().hex[:8]}"
    jars = [CookieJar() for _ in range(RACERS)]
    start = time.perf_counter()
    outcomes = await asyncio.gather(*(_status(ops, f"/signin?user={user}", jar, "POST") for jar in jars))
    elapsed = time.perf_counter() - start
    failed = _errors(list(outcomes))
    listed = await ops.live_sessions(user)
    signed_in = 0
    for jar in jars:  # one at a time: this is the check, not the load
        if jar.cookies and await _still_signed_in(ops, jar, user):
            signed_in += 1
    return {
        "racers": RACERS,
        "limit": RACE_LIMIT,
        "seconds": round(elapsed, 3),
        "errors": sum(failed.values()),
        "by_kind": failed,
        "listed": listed,
        "signed_in_clients": signed_in,
    }


async def _still_signed_in(ops: OpsApp, jar: CookieJar, user: str) -> bool:
    captured: dict[str, Any] = {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            captured["body"] = captured.get("body", b"") + message.get("body", b"")

    await ops.app(_scope("/whoami", jar), _receive, send)
    return f'"user":"{user}"'.encode() in captured.get("body", b"")


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def _scope(path: str, jar: CookieJar) -> dict[str, Any]:
    return {
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


async def _on_store(
    package: Any, name: str, url: str, limit: int | None, console: Console, job: Any
) -> dict[str, Any] | None:
    ops = ops_app(package, name, url, limit=limit, manual_clock=False)
    reasons = _Reasons()
    package_logger = logging.getLogger(PACKAGE)
    package_logger.addHandler(reasons)
    package_logger.propagate = False
    try:
        await ops.setup()
    except Exception as exc:  # a server that is down: say so, measure the others
        console.print(f"[yellow]{name}: not reachable ({type(exc).__name__}), skipped[/]")
        await ops.manager.close()
        return None
    try:
        row = dict(await job(ops))
        row["reasons"] = reasons.seen
        return row
    except Exception as exc:  # a broken store is reported and left out; the others still run
        console.print(f"[red]{name}: failed ({type(exc).__name__}: {exc}), left out of this run[/]")
        return None
    finally:
        package_logger.removeHandler(reasons)
        package_logger.propagate = True
        await ops.cleanup()


async def _run_all(workdir: Path, console: Console) -> dict[str, Any]:
    package = ops_package(workdir)
    tag = uuid.uuid4().hex[:8]
    urls = store_urls(workdir, f"c{tag}")
    out: dict[str, Any] = {"burst": None, "race": {}}
    if "Redis" in urls:
        out["burst"] = await _on_store(package, "Redis", urls["Redis"], None, console, burst)
    else:
        console.print("[yellow]Redis is not reachable: the burst is skipped[/]")
    for name, url in urls.items():
        # Each store gets its own table or prefix: the burst's sessions are not counted here.
        raced = await _on_store(package, name, f"{url}-race" if name == "Redis" else url, RACE_LIMIT, console, race)
        if raced is not None:
            out["race"][name] = raced
    return out


def run(workdir: Path, console: Console) -> dict[str, Any]:
    result = asyncio.run(_run_all(workdir, console))
    report(result, console)
    return result


def report(result: dict[str, Any], console: Console) -> None:
    burst_row = result["burst"]
    if burst_row is not None:
        table = Table(title=f"Burst: {burst_row['clients']} concurrent clients on Redis, one app process")
        for column in ("wave", "seconds", "errors", "kinds"):
            table.add_column(column, justify="left" if column in ("wave", "kinds") else "right")
        for wave in burst_row["waves"]:
            kinds = ", ".join(f"{k}: {v}" for k, v in wave["by_kind"].items())
            table.add_row(wave["request"], f"{wave['seconds']:.2f}", str(wave["errors"]), kinds)
        console.print(table)
        met = burst_row["errors"] == 0
        verdict = "[green]met[/]" if met else "[red]missed[/]"
        console.print(f"burst errors: {burst_row['errors']} (target 0) {verdict}")
        _print_reasons(console, "burst", burst_row["reasons"])
    table = Table(title=f"Sign-in race: {RACERS} concurrent sign-ins of one principal, limit {RACE_LIMIT}")
    for column in ("store", "seconds", "errors", "listed live", "clients still signed in", "target"):
        table.add_column(column, justify="left" if column in ("store", "target") else "right")
    for store, row in result["race"].items():
        met = row["listed"] == RACE_LIMIT and row["signed_in_clients"] == RACE_LIMIT
        errors = str(row["errors"]) + (
            f" ({', '.join(f'{k}: {v}' for k, v in row['by_kind'].items())})" if row["errors"] else ""
        )
        table.add_row(
            store,
            f"{row['seconds']:.2f}",
            errors,
            str(row["listed"]),
            str(row["signed_in_clients"]),
            f"exactly {RACE_LIMIT}: " + ("[green]met[/]" if met else "[red]missed[/]"),
        )
    console.print(table)
    for store, row in result["race"].items():
        _print_reasons(console, f"race on {store}", row["reasons"])


def _print_reasons(console: Console, where: str, reasons: dict[str, int]) -> None:
    """What the app logged for its 503s, so a miss says why."""
    for text, count in list(reasons.items())[:3]:
        console.print(f"  {where}: {count} x {text}", markup=False, highlight=False)
