"""End to end: each variant's app under uvicorn on 127.0.0.1, driven by a bounded load generator.

The load generator is a small asyncio client over raw sockets (keep-alive HTTP/1.1), so it
needs nothing to install. Each connection is one browser: it signs up with /write, then
carries its session cookie on every request. A run stops after a fixed number of requests
or a fixed time, whichever comes first. The client shares the machine with the server, so
the figures are lower than a dedicated load machine would show; compare the variants.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
VARIANTS = (
    "floor (no session middleware)",
    "Starlette SessionMiddleware",
    "starsessions + InMemoryStore",
    "session-kit + memory",
    "starsessions + RedisStore",
    "session-kit + Redis",
    "session-kit JWT stateless + Redis",
)
REQUESTS = int(os.environ.get("SESSION_BENCH_E2E_REQUESTS", "3000"))
SECONDS = float(os.environ.get("SESSION_BENCH_E2E_SECONDS", "15"))
CONNECTIONS = 8


class Browser:
    """One keep-alive connection that keeps the cookies it is given."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.cookies: dict[str, str] = {}

    async def get(self, path: str) -> int:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        request = f"GET {path} HTTP/1.1\r\nHost: bench.local\r\nX-Forwarded-Proto: https\r\n"
        request += f"Cookie: {cookie}\r\n\r\n" if cookie else "\r\n"
        self.writer.write(request.encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "set-cookie":
                pair = value.strip().split(";", 1)[0]
                key, _, val = pair.partition("=")
                if val and "max-age=0" not in value.lower():
                    self.cookies[key] = val
                else:
                    self.cookies.pop(key, None)
        await self.reader.readexactly(length)
        return status


async def _load(port: int, path: str) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + SECONDS
    remaining = REQUESTS

    async def browse() -> None:
        nonlocal remaining, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        browser = Browser(reader, writer)
        try:
            if await browser.get("/write") != 200:
                raise RuntimeError(f"{path}: the app refused to start a session")
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                start = time.perf_counter()
                if await browser.get(path) != 200:
                    errors += 1
                latencies.append(time.perf_counter() - start)
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(browse() for _ in range(CONNECTIONS)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": round(len(latencies) / elapsed),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "requests": len(latencies),
        "errors": errors,
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int, server: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited: {server.stderr.read().decode()[-2000:] if server.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start listening")


def measure(name: str, projects: list[Path], tag: str) -> dict[str, Any]:
    port = _free_port()
    env = {**os.environ, "SESSION_BENCH_TAG": tag, "PYTHONPATH": str(HERE)}
    argv = [sys.executable, str(HERE / "e2e_server.py"), name, str(port), *map(str, projects)]
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(port, server)
        asyncio.run(_load(port, "/read"))  # warm-up, also fills the store with a few sessions
        return {"read": asyncio.run(_load(port, "/read")), "write": asyncio.run(_load(port, "/write"))}
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _drop_redis_keys(tag: str) -> None:
    import redis
    from runtime import REDIS_URL

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"bench-{tag}-*", count=10_000))
    if keys:
        client.delete(*keys)
    client.close()


def run(workdir: Path, console: Console) -> dict[str, Any]:
    """`workdir` holds the projects the in-process benchmark generated (proj-benchapp, proj-benchjwt)."""
    from runtime import redis_is_up, variant_builders

    projects = sorted(workdir.glob("proj-bench*"))
    tag = f"e2e{uuid.uuid4().hex[:6]}"
    up = redis_is_up()
    available = variant_builders(workdir, tag)
    rows: dict[str, Any] = {}
    try:
        for name in VARIANTS:
            if name not in available or ("Redis" in name and not up):
                console.print(f"[yellow]{name}: not available here, skipped[/]")
                continue
            try:
                rows[name] = measure(name, projects, tag)
            except Exception as exc:  # a broken variant is reported and left out; the others still run
                console.print(f"[red]{name}: failed ({type(exc).__name__}: {exc}), left out of this run[/]")
                continue
            console.print(f"  {name}: {rows[name]['read']['rps']:,} read req/s")
    finally:
        if up:
            _drop_redis_keys(tag)
    report(rows, console)
    return {"connections": CONNECTIONS, "requests": REQUESTS, "seconds_cap": SECONDS, "variants": rows}


def report(rows: dict[str, Any], console: Console) -> None:
    title = f"End to end: uvicorn, {CONNECTIONS} keep-alive connections, {REQUESTS} requests or {SECONDS:.0f} s"
    table = Table(title=title)
    for column in ("variant", "read req/s", "read p50 ms", "read p99 ms", "write req/s", "write p99 ms", "errors"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for name, row in rows.items():
        read, write = row["read"], row["write"]
        table.add_row(
            name,
            f"{read['rps']:,}",
            f"{read['p50_ms']}",
            f"{read['p99_ms']}",
            f"{write['rps']:,}",
            f"{write['p99_ms']}",
            str(read["errors"] + write["errors"]),
        )
    console.print(table)
