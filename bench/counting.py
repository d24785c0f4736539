"""Counting what a request costs a server: Redis commands and round trips, SQL statements.

Both counters watch this process's own clients, never the server's global statistics, so
other programs using the same Redis or database at the same time do not skew the counts.

Redis: every packet redis-py sends (sync and asyncio clients) is one round trip; the RESP
arrays in it are its commands, so a pipeline of three commands is 3 commands in 1 round
trip, and a Lua script is the one EVALSHA (or EVAL) that runs it.
SQL: SQLAlchemy's engine events, registered on the Engine class so they see every engine
of the process (the async engines' sync cores included): statements sent, transactions
begun, commits and rollbacks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def resp_commands(packet: bytes) -> int:
    """How many commands a packed RESP request holds: the top-level arrays, bulk strings skipped."""
    count = 0
    position = 0
    while position < len(packet):
        if packet[position : position + 1] != b"*":
            raise ValueError(f"not a RESP array at byte {position}")
        end = packet.index(b"\r\n", position)
        items = int(packet[position + 1 : end])
        position = end + 2
        for _ in range(items):  # each item is a bulk string: $<length>\r\n<bytes>\r\n
            end = packet.index(b"\r\n", position)
            position = end + 2 + int(packet[position + 1 : end]) + 2
        count += 1
    return count


def _packed(command: bytes | str | Iterable[bytes]) -> bytes:
    if isinstance(command, str):
        return command.encode()
    if isinstance(command, bytes):
        return command
    return b"".join(command)


@dataclass
class RedisCount:
    commands: int = 0
    round_trips: int = 0


class RedisCounter:
    """Counts what redis-py sends while installed; `with RedisCounter() as counter:`."""

    def __init__(self) -> None:
        self.count = RedisCount()
        self._restore: list[tuple[type, Any]] = []

    def __enter__(self) -> RedisCounter:
        import redis.asyncio.connection as async_connection
        import redis.connection as sync_connection

        count = self.count

        def sync_wrap(original: Any) -> Any:
            def counting(self: Any, command: Any, check_health: bool = True) -> None:
                packet = _packed(command)
                count.round_trips += 1
                count.commands += resp_commands(packet)
                original(self, [packet], check_health)

            return counting

        def async_wrap(original: Any) -> Any:
            async def counting(self: Any, command: Any, check_health: bool = True) -> None:
                packet = _packed(command)
                count.round_trips += 1
                count.commands += resp_commands(packet)
                await original(self, [packet], check_health)

            return counting

        for cls, wrap in (
            (sync_connection.AbstractConnection, sync_wrap),
            (async_connection.AbstractConnection, async_wrap),
        ):
            original = cls.send_packed_command
            self._restore.append((cls, original))
            cls.send_packed_command = wrap(original)  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        for cls, original in self._restore:
            cls.send_packed_command = original  # type: ignore[attr-defined]
        self._restore.clear()

    def snapshot(self) -> RedisCount:
        return RedisCount(self.count.commands, self.count.round_trips)

    def since(self, before: RedisCount) -> RedisCount:
        return RedisCount(self.count.commands - before.commands, self.count.round_trips - before.round_trips)


@dataclass
class SqlCount:
    statements: int = 0
    begins: int = 0
    commits: int = 0
    rollbacks: int = 0


class SqlCounter:
    """Counts SQL statements and transactions of every SQLAlchemy engine while installed."""

    def __init__(self) -> None:
        self.count = SqlCount()

    def _statement(self, *args: Any, **kwargs: Any) -> None:
        self.count.statements += 1

    def _begin(self, *args: Any) -> None:
        self.count.begins += 1

    def _commit(self, *args: Any) -> None:
        self.count.commits += 1

    def _rollback(self, *args: Any) -> None:
        self.count.rollbacks += 1

    def _listeners(self) -> list[tuple[str, Any]]:
        return [
            ("before_cursor_execute", self._statement),
            ("begin", self._begin),
            ("commit", self._commit),
            ("rollback", self._rollback),
        ]

    def __enter__(self) -> SqlCounter:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        for name, listener in self._listeners():
            event.listen(Engine, name, listener)
        return self

    def __exit__(self, *exc: object) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        for name, listener in self._listeners():
            event.remove(Engine, name, listener)

    def snapshot(self) -> SqlCount:
        c = self.count
        return SqlCount(c.statements, c.begins, c.commits, c.rollbacks)

    def since(self, before: SqlCount) -> SqlCount:
        c = self.count
        return SqlCount(
            c.statements - before.statements,
            c.begins - before.begins,
            c.commits - before.commits,
            c.rollbacks - before.rollbacks,
        )
