"""Scale: what a session costs to keep in each store, and listing one principal's sessions
among a million in Redis.

Sessions are created through each store's own `create`, two per signed-in principal, with
one 32-character value in their data, as a browser session of a signed-in user looks. Creating
100k sessions one by one through a disk or server store takes minutes on a small machine, so
for those stores the first 1,000 are created through the store and the rest are copies made
at the storage level (SQL INSERT ... SELECT, Redis DUMP/RESTORE, file copies) under new ids,
which store exactly what the store would. The memory store creates every session itself.
Memory: the memory store's Python allocations (tracemalloc); the file store's disk blocks;
SQLite's database file; PostgreSQL's table with its indexes and TOAST; Redis's MEMORY USAGE
of every key of this run. Every table, file and key is this run's own and is removed after.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import shutil
import sqlite3
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from runtime import POSTGRES_URL, REDIS_URL, available_stores, generate_package, redis_is_up

COUNTS = tuple(int(n) for n in os.environ.get("SESSION_BENCH_SCALE", "10000,100000").split(","))
LIST_TOTAL = int(os.environ.get("SESSION_BENCH_LIST_TOTAL", "1000000"))
BATCH = 64  # concurrent creates, so server round trips overlap


def _records(package: Any, start: int, stop: int) -> list[Any]:
    now = datetime.now(UTC)
    return [
        package.SessionRecord(
            session_id=f"s{i:08d}{uuid.uuid4().hex[:16]}",
            secret_hash=hashlib.sha256(str(i).encode()).hexdigest(),
            data={"value": uuid.uuid4().hex},
            principal=package.SessionPrincipal("user", f"u{i // 2}"),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=2),
            client={"ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (bench)"},
        )
        for i in range(start, stop)
    ]


async def _fill(store: Any, package: Any, start: int, stop: int) -> None:
    for offset in range(start, stop, 5_000):
        records = _records(package, offset, min(offset + 5_000, stop))
        for first in range(0, len(records), BATCH):
            await asyncio.gather(*(store.create(record) for record in records[first : first + BATCH]))


Measure = Callable[[], Awaitable[tuple[int, int]]]  # (bytes, keys or files or rows)
Clone = Callable[[int, int], Awaitable[None]]  # (sessions so far, sessions wanted)
SEED = 1_000


async def _per_session(
    name: str, store: Any, package: Any, measure: Measure, clone: Clone | None = None
) -> dict[str, Any]:
    row: dict[str, Any] = {}
    made = 0
    for count in COUNTS:
        start = time.perf_counter()
        if clone is None:
            await _fill(store, package, made, count)
        else:
            if made == 0:
                await _fill(store, package, 0, SEED)
                made = SEED
            await clone(made, count)
        rate = (count - made) / (time.perf_counter() - start)
        made = count
        size, units = await measure()
        row[str(count)] = {
            "bytes_per_session": round(size / count),
            "units_per_session": round(units / count, 2),
            "fill_per_s": round(rate),  # through the store, or copies: not a create rate
        }
    row["store"] = name
    return row


async def scale_memory(package: Any) -> dict[str, Any]:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    store = package.MemoryStore(max(COUNTS) + 1)

    async def measure() -> tuple[int, int]:
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - base, len(store)

    try:
        return await _per_session("memory", store, package, measure)
    finally:
        tracemalloc.stop()


async def scale_file(package: Any, folder: Path) -> dict[str, Any]:
    store = package.open_store(f"file://{folder}")

    async def measure() -> tuple[int, int]:
        files = [path for path in folder.rglob("*") if path.is_file()]
        return sum(path.stat().st_blocks * 512 for path in files), len(files)

    async def clone(made: int, wanted: int) -> None:
        seed = [path for path in folder.rglob("*") if path.is_file() and "-copy" not in path.name]
        for copy in range((made - SEED) // SEED, (wanted - SEED) // SEED):
            for path in seed:
                shutil.copyfile(path, path.with_name(f"{path.name}-copy{copy}"))

    try:
        return await _per_session("file", store, package, measure, clone)
    finally:
        await store.close()


async def scale_sqlite(package: Any, path: Path) -> dict[str, Any]:
    store = package.open_store(f"sqlite+aiosqlite:///{path}")
    await store.create_tables()

    async def measure() -> tuple[int, int]:
        with sqlite3.connect(path) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            (rows,) = connection.execute(f"SELECT count(*) FROM {store.table.name}").fetchone()
        return path.stat().st_size + _size(path.with_name(path.name + "-wal")), rows

    try:
        return await _per_session("SQLite", store, package, measure, _sql_clone(store))
    finally:
        await store.close()


async def scale_postgres(package: Any, tag: str) -> dict[str, Any]:
    import asyncpg

    table = f"bench_scale_{tag}"
    store = package.open_store(f"{POSTGRES_URL}?session_table={table}")
    await store.create_tables()
    connection = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg", "postgresql"))

    async def measure() -> tuple[int, int]:
        await connection.execute(f"VACUUM ANALYZE {table}")
        size = await connection.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
        rows = await connection.fetchval(f"SELECT count(*) FROM {table}")
        return int(size), int(rows)

    try:
        return await _per_session("PostgreSQL", store, package, measure, _sql_clone(store))
    finally:
        await store.drop_tables()
        await store.close()
        await connection.close()


async def scale_redis(package: Any, tag: str) -> dict[str, Any]:
    from redis.asyncio import Redis

    prefix = f"bench-{tag}-scale"
    store = package.open_store(f"{REDIS_URL}?prefix={prefix}")
    client = Redis.from_url(REDIS_URL)

    async def measure() -> tuple[int, int]:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=10_000)]
        total = 0
        for first in range(0, len(keys), 10_000):
            pipe = client.pipeline(transaction=False)
            for key in keys[first : first + 10_000]:
                pipe.memory_usage(key, samples=0)
            total += sum(size or 0 for size in await pipe.execute())
        return total, len(keys)

    async def clone(made: int, wanted: int) -> None:
        seed = [key async for key in client.scan_iter(match=f"{prefix}:*", count=10_000) if b"-copy" not in key]
        for copy in range((made - SEED) // SEED, (wanted - SEED) // SEED):
            pipe = client.pipeline(transaction=False)
            for key in seed:
                pipe.dump(key)
                pipe.pttl(key)
            dumped = await pipe.execute()
            pipe = client.pipeline(transaction=False)
            for key, payload, ttl in zip(seed, dumped[::2], dumped[1::2], strict=True):
                # The copy tag goes inside the {hash tag}, as a new session id's digest would.
                pipe.restore(key.replace(b"}", f"-copy{copy}}}".encode(), 1), max(ttl, 0), payload)
            await pipe.execute()

    try:
        return await _per_session("Redis", store, package, measure, clone)
    finally:
        await _drop_prefix(client, prefix)
        await client.aclose()
        await store.close()


def _sql_clone(store: Any) -> Clone:
    """Copies of the first 1,000 rows under new ids and principals, in one statement per thousand."""
    from sqlalchemy import insert, literal, select

    table = store.table
    renamed = {"session_id", "principal_id"}

    async def clone(made: int, wanted: int) -> None:
        async with store.engine.begin() as connection:
            for copy in range((made - SEED) // SEED, (wanted - SEED) // SEED):
                suffix = literal(f"-copy{copy}")
                columns = [
                    (column + suffix).label(column.name) if column.name in renamed else column for column in table.c
                ]
                seed = select(*columns).where(table.c.session_id.not_like("%-copy%"))
                await connection.execute(insert(table).from_select([c.name for c in table.c], seed))

    return clone


async def redis_listing(package: Any, tag: str) -> dict[str, Any]:
    """list_by_principal for a principal with 20 sessions, at about 1k and at 1M sessions in all.

    The principal's sessions and 1,000 others are created through the store. The million is
    then reached with copies (DUMP/RESTORE) of one stored anonymous session under new ids: the
    same keys the store would write, at a fraction of the time.
    """
    from redis.asyncio import Redis

    prefix = f"bench-{tag}-list"
    store = package.open_store(f"{REDIS_URL}?prefix={prefix}")
    client = Redis.from_url(REDIS_URL)
    result: dict[str, Any] = {"principal_sessions": 20}
    try:
        now = datetime.now(UTC)
        mine = [
            package.SessionRecord(
                session_id=f"mine{i}",
                secret_hash="0" * 64,
                data={"value": "x"},
                principal=package.SessionPrincipal("user", "target"),
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=2),
            )
            for i in range(20)
        ]
        for record in mine:
            await store.create(record)
        await _fill(store, package, 0, 1_000)
        result["small_total"] = await _count_sessions(client, prefix)
        result["small_list_us"] = await _time_listing(store)
        template = _records(package, 10**8, 10**8 + 1)[0]
        anonymous = replace(template, principal=None, session_id="anonymous-template")
        await store.create(anonymous)
        payload = await client.dump(store._session_key(anonymous.session_id))
        missing = LIST_TOTAL - result["small_total"]
        start = time.perf_counter()
        for first in range(0, missing, 20_000):
            pipe = client.pipeline(transaction=False)
            for i in range(first, min(first + 20_000, missing)):
                pipe.restore(store._session_key(f"copy{i}"), 7_200_000, payload)
            await pipe.execute()
        result["fill_s"] = round(time.perf_counter() - start, 1)
        result["large_total"] = await _count_sessions(client, prefix)
        result["large_list_us"] = await _time_listing(store)
        result["ratio"] = round(result["large_list_us"] / result["small_list_us"], 2)
        listed = await store.list_by_principal("user", "target")
        result["listed"] = len(listed)
        return result
    finally:
        await _drop_prefix(client, prefix)
        await client.aclose()
        await store.close()


async def _time_listing(store: Any, rounds: int = 300) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await store.list_by_principal("user", "target")
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples) * 1e6, 1)


async def _count_sessions(client: Any, prefix: str) -> int:
    count = 0
    async for _ in client.scan_iter(match=f"{prefix}:s:*", count=10_000):
        count += 1
    return count


async def _drop_prefix(client: Any, prefix: str) -> None:
    batch: list[bytes] = []
    async for key in client.scan_iter(match=f"{prefix}:*", count=10_000):
        batch.append(key)
        if len(batch) >= 10_000:
            await client.unlink(*batch)
            batch.clear()
    if batch:
        await client.unlink(*batch)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


async def _run(workdir: Path, console: Console) -> dict[str, Any]:
    stores = available_stores()
    package = generate_package(workdir, stores, "benchscale")
    tag = uuid.uuid4().hex[:8]
    rows = [await scale_memory(package)]
    console.print("  memory store measured")
    if "file" in stores:
        rows.append(await scale_file(package, workdir / "file-store"))
        console.print("  file store measured")
    if "sql" in stores:
        rows.append(await scale_sqlite(package, workdir / "scale.db"))
        console.print("  SQLite measured")
        rows.append(await scale_postgres(package, tag))
        console.print("  PostgreSQL measured")
    listing = None
    if "redis" in stores and redis_is_up():
        rows.append(await scale_redis(package, tag))
        console.print("  Redis measured")
        listing = await redis_listing(package, tag)
    return {"per_session": rows, "redis_listing": listing}


def run(workdir: Path, console: Console) -> dict[str, Any]:
    result = asyncio.run(_run(workdir, console))
    report(result, console)
    return result


def report(result: dict[str, Any], console: Console) -> None:
    table = Table(title="Scale: storage per session (2 sessions per principal)")
    for column in ("store", *(f"bytes/session at {c:,}" for c in COUNTS), "keys/files/rows per session"):
        table.add_column(column, justify="left" if column == "store" else "right")
    for row in result["per_session"]:
        last = row[str(COUNTS[-1])]
        sizes = [f"{row[str(c)]['bytes_per_session']:,}" for c in COUNTS]
        table.add_row(row["store"], *sizes, f"{last['units_per_session']}")
    console.print(table)
    listing = result["redis_listing"]
    if listing:
        console.print(
            f"Redis list_by_principal ({listing['principal_sessions']} sessions of one principal): "
            f"{listing['small_list_us']} µs among {listing['small_total']:,} sessions, "
            f"{listing['large_list_us']} µs among {listing['large_total']:,} "
            f"(x{listing['ratio']}; the extra sessions were written in {listing['fill_s']} s, then removed)"
        )
