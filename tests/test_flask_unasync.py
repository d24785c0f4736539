"""The async-to-sync rewrite that renders the shared core for Flask."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from helpers import make_kit

from session_kit.engine.unasync import UnasyncError, to_sync
from session_kit.engine.vet import vet


def _sync(source: str) -> str:
    return to_sync(textwrap.dedent(source).lstrip("\n"))


def test_async_and_await_go_and_asyncio_names_map() -> None:
    out = _sync(
        """
        import asyncio
        from collections.abc import AsyncIterator
        from contextlib import asynccontextmanager


        class Store:
            def __init__(self) -> None:
                self._lock = asyncio.Lock()

            @asynccontextmanager
            async def guard(self) -> AsyncIterator[None]:
                async with self._lock:
                    yield

            async def load(self) -> int:
                return (await self.fetch()).count
        """
    )
    assert "async" not in out
    assert "await" not in out
    assert "import threading\nfrom collections.abc import Iterator\nfrom contextlib import contextmanager\n" in out
    assert "self._lock = threading.Lock()" in out
    assert "with self._lock:" in out
    assert "return self.fetch().count" in out


def test_gather_becomes_a_loop_or_a_list() -> None:
    out = _sync(
        """
        import asyncio


        async def run(ids: list[str]) -> list[int]:
            await asyncio.gather(*(drop(i) for i in ids if i))
            return await asyncio.gather(*(size(i) for i in ids))
        """
    )
    assert "    for i in ids:\n        if i:\n            drop(i)\n" in out
    assert "return [size(i) for i in ids]" in out
    assert "asyncio" not in out


def test_to_thread_run_sync_and_timeouts() -> None:
    out = _sync(
        """
        import asyncio


        async def work(connection: object, limit: float) -> None:
            async with asyncio.timeout(limit):
                await connection.run_sync(create_all)
            await asyncio.to_thread(write, "a", 1)
        """
    )
    assert "    create_all(connection)\n" in out
    assert '    write("a", 1)\n' in out
    assert "timeout" not in out.split(") -> None:")[1]


def test_redis_and_sqlalchemy_imports_map_to_their_blocking_clients() -> None:
    out = _sync(
        """
        from redis.asyncio import Redis
        from redis.asyncio.cluster import RedisCluster
        from sqlalchemy import select
        from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

        URL = "sqlite+aiosqlite:///x.db"


        async def close(client: Redis | RedisCluster, engine: AsyncEngine) -> None:
            await client.aclose()
            create_async_engine(URL)
            select(1)
        """
    )
    assert "from redis import Redis\nfrom redis.cluster import RedisCluster\n" in out
    assert "from sqlalchemy import Engine, create_engine, select\n" in out
    assert 'URL = "sqlite:///x.db"' in out
    assert "client.close()" in out


def test_lines_await_kept_split_are_joined_again() -> None:
    out = _sync(
        """
        async def f(self) -> None:
            value = await self.client.hgetall(
                self._session_key(session_id_that_is_long_enough)
            )
        """
    )
    assert "    value = self.client.hgetall(self._session_key(session_id_that_is_long_enough))\n" in out


def test_synchronous_code_is_left_alone() -> None:
    source = "import json\n\n\ndef f() -> str:\n    return json.dumps({})\n"
    assert to_sync(source) == source


def test_what_has_no_counterpart_is_refused() -> None:
    with pytest.raises(UnasyncError, match=r"asyncio\.sleep"):
        _sync(
            """
            import asyncio


            async def f() -> None:
                await asyncio.sleep(1)
            """
        )
    with pytest.raises(UnasyncError, match="not valid Python"):
        to_sync("def (:\n")


def test_event_loop_markers_go_and_the_spacing_stays_formatted() -> None:
    out = _sync(
        """
        import pytest

        pytestmark = pytest.mark.anyio


        @pytest.fixture
        def anyio_backend() -> str:
            return "asyncio"


        @pytest.mark.anyio
        class TestStore:
            async def test_load(self) -> None:
                assert await load() is None


        @pytest.fixture
        @pytest.mark.anyio
        async def store() -> int:
            return 1
        """
    )
    assert "anyio" not in out
    assert out.startswith(
        "import pytest\n\n\nclass TestStore:\n    def test_load(self) -> None:\n        assert load() is None\n"
        "\n\n@pytest.fixture\ndef store() -> int:\n"
    )


def test_an_event_loop_marker_used_another_way_is_refused() -> None:
    with pytest.raises(UnasyncError, match=r"pytest\.mark\.anyio is left"):
        _sync(
            """
            import pytest

            pytestmark = [pytest.mark.anyio, pytest.mark.slow]
            """
        )


def test_vet_reports_a_template_without_a_synchronous_twin(tmp_path: Path) -> None:
    source = "import asyncio\n\n\nasync def pause() -> None:\n    await asyncio.sleep(1)\n"
    kit = make_kit(tmp_path, templates={"core/clock.py.j2": source})
    problems = vet(kit).problems
    assert problems == [
        "flask: core/clock.py.j2 has no synchronous twin: line 5: no synchronous counterpart for asyncio.sleep"
    ]
