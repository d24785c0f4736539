"""The metrics sink times the store call itself, in the asynchronous core and in its synchronous twin.

The histogram reads a stand-in `perf_counter` that only the wrapped store call moves, so
an observation equals the time spent inside the call, whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from runtime_support import START, generated_package

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry

CALL_SECONDS = 5.0
FAILED_CALL_SECONDS = 2.0


def _slow_store(sessions: ModuleType, ticks: list[float], *, sync: bool) -> Any:
    """A memory store whose `load` takes CALL_SECONDS and whose `ping` fails after FAILED_CALL_SECONDS."""
    base = sessions.MemoryStore

    if sync:

        class SyncSlowStore(base):  # type: ignore[misc,valid-type]
            def load(self, session_id: str, **options: Any) -> Any:
                ticks[0] += CALL_SECONDS
                return super().load(session_id, **options)

            def ping(self) -> None:
                ticks[0] += FAILED_CALL_SECONDS
                raise sessions.StoreUnavailable("down")

        return SyncSlowStore(10, clock=sessions.ManualClock(START))

    class AsyncSlowStore(base):  # type: ignore[misc,valid-type]
        async def load(self, session_id: str, **options: Any) -> Any:
            ticks[0] += CALL_SECONDS
            return await super().load(session_id, **options)

        async def ping(self) -> None:
            ticks[0] += FAILED_CALL_SECONDS
            raise sessions.StoreUnavailable("down")

    return AsyncSlowStore(10, clock=sessions.ManualClock(START))


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_the_timer_runs_around_the_store_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, framework: str) -> None:
    sync = framework == "flask"
    with generated_package(tmp_path, f"timing_{framework}", ["audit=metrics"], framework=framework) as sessions:
        ticks = [100.0]
        monkeypatch.setattr(sessions.audit, "time", SimpleNamespace(perf_counter=lambda: ticks[0]))
        registry = CollectorRegistry()
        timed = sessions.audit.TimedStore(
            _slow_store(sessions, ticks, sync=sync), sessions.audit.SessionMetrics(registry).store_seconds
        )

        def call(operation: Callable[[], Any]) -> Any:
            result = operation()
            return result if sync else asyncio.run(_awaited(result))

        assert call(lambda: timed.load("unknown")) is None
        with pytest.raises(sessions.StoreUnavailable):
            call(timed.ping)

        def sample(name: str, operation: str) -> float | None:
            return registry.get_sample_value(f"session_store_seconds_{name}", {"operation": operation})

        assert (sample("count", "load"), sample("sum", "load")) == (1.0, CALL_SECONDS)
        # A failed call is timed too.
        assert (sample("count", "ping"), sample("sum", "ping")) == (1.0, FAILED_CALL_SECONDS)


async def _awaited(value: Awaitable[Any]) -> Any:
    return await value
