"""A loopback TCP proxy that counts a client's commands and breaks the connection at one of them.

The proxy forwards bytes both ways and knows nothing of the protocol except where one client
command ends, which a pluggable splitter tells it (`RespSplitter` for Redis; a PostgreSQL
splitter would cut at message boundaries). Tests use it to count round trips and to inject a
fault at the k-th command since `arm()`: drop the connection before the command reaches the
server, let the server run it and drop the connection before the reply, or stall the command
past the client's timeout (and deliver it afterwards). A hook called at that command (after the server ran it, for
`DROP_REPLY`) lets a test kill the client process at exactly that point.

Everything runs on loopback threads started here; `close()` stops them.
"""

from __future__ import annotations

import enum
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Protocol


class Splitter(Protocol):
    """Finds where the client's commands end in the bytes it sent so far."""

    def feed(self, data: bytes) -> list[int]:
        """Add `data`; return the offsets in `data` just after each command that completes in it."""
        ...


class RespSplitter:
    """Command boundaries in Redis's RESP: arrays of bulk strings (`*2\\r\\n$3\\r\\nGET\\r\\n...`).

    Incremental: a command split over several packets is counted once, where it ends.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._consumed = 0  # bytes of earlier feeds that are in _buffer

    def feed(self, data: bytes) -> list[int]:
        start = len(self._buffer)
        self._buffer += data
        ends: list[int] = []
        while (end := self._command_end(self._buffer)) is not None:
            ends.append(end - start)
            self._buffer = self._buffer[end:]
            start -= end
        return ends

    @staticmethod
    def _command_end(buffer: bytes) -> int | None:
        if not buffer:
            return None
        if buffer[:1] != b"*":  # an inline command: one line
            line = buffer.find(b"\r\n")
            return None if line < 0 else line + 2
        line = buffer.find(b"\r\n")
        if line < 0:
            return None
        position = line + 2
        for _ in range(int(buffer[1:line])):
            header = buffer.find(b"\r\n", position)
            if header < 0:
                return None
            length = int(buffer[position + 1 : header])
            position = header + 2 + length + 2
            if position > len(buffer):
                return None
        return position


class Fault(enum.Enum):
    DROP_REQUEST = "drop-request"  # the command never reaches the server
    DROP_REPLY = "drop-reply"  # the server runs it; the client never hears back
    STALL = "stall"  # held past the client's timeout, then delivered


@dataclass
class _Armed:
    at: int
    fault: Fault
    hook: Callable[[], None] | None
    stall_seconds: float
    fired: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Link:
    client: socket.socket
    server: socket.socket
    mute: threading.Event = field(default_factory=threading.Event)  # swallow server replies
    replied: threading.Event = field(default_factory=threading.Event)


class FaultProxy:
    """A proxy on a free loopback port to `upstream`, counting commands with `splitter()`."""

    def __init__(self, upstream: tuple[str, int], splitter: Callable[[], Splitter]) -> None:
        self.upstream = upstream
        self._splitter = splitter
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._count = 0
        self._armed: _Armed | None = None
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def commands(self) -> int:
        """Commands the clients sent since the last `reset()`."""
        with self._lock:
            return self._count

    def reset(self) -> None:
        with self._lock:
            self._count = 0
            self._armed = None

    def arm(
        self,
        at: int,
        fault: Fault,
        *,
        hook: Callable[[], None] | None = None,
        stall_seconds: float = 3.0,
    ) -> threading.Event:
        """Inject `fault` at the `at`-th command from now (1 is the next). Returns an event set once it fired."""
        armed = _Armed(at, fault, hook, stall_seconds)
        with self._lock:
            self._count = 0
            self._armed = armed
        return armed.fired

    def drop_all(self) -> None:
        """Close every open connection, as a network failure would."""
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            _close(link)

    def close(self) -> None:
        self._closed = True
        with suppress(OSError):
            self._listener.close()
        self.drop_all()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            link = _Link(client, server)
            with self._lock:
                self._links.append(link)
            threading.Thread(target=self._requests, args=(link,), daemon=True).start()
            threading.Thread(target=self._replies, args=(link,), daemon=True).start()

    def _requests(self, link: _Link) -> None:
        splitter = self._splitter()
        try:
            while packet := link.client.recv(65536):
                sent = 0  # bytes of this packet already forwarded
                start = 0  # where the current command starts in it
                for end in splitter.feed(packet):
                    armed = self._count_one()
                    if armed is not None:
                        # The commands before it in this packet go through as usual; a
                        # stalled one goes late with the rest of its packet.
                        link.server.sendall(packet[sent:start])
                        if not self._inject(link, armed, packet[start:end], packet[end:]):
                            return
                        sent = len(packet)
                        break
                    start = end
                link.server.sendall(packet[sent:])
        except OSError:
            pass
        finally:
            _close(link)

    def _count_one(self) -> _Armed | None:
        """Count a command; the armed fault if this is the command it waits for."""
        with self._lock:
            self._count += 1
            armed = self._armed
            if armed is not None and self._count == armed.at:
                self._armed = None
                return armed
        return None

    def _inject(self, link: _Link, armed: _Armed, command: bytes, rest: bytes) -> bool:
        """Apply the fault to `command` (or its rest, when it began in an earlier packet).

        `rest` is what followed it in the same packet: dropped with a dropped connection,
        delivered with a stalled command. Returns whether the connection carries on.
        """
        try:
            link.replied.clear()
            if armed.fault is Fault.DROP_REPLY:
                link.mute.set()
                link.server.sendall(command)
                link.replied.wait(2)  # the server has run it
            if armed.hook:
                armed.hook()
            if armed.fault is not Fault.STALL:
                return False
            time.sleep(armed.stall_seconds)
            link.server.sendall(command + rest)  # late: the client may have given up meanwhile
            link.replied.wait(2)
            time.sleep(0.05)  # the replies to `rest`
            return True
        finally:
            armed.fired.set()

    def _replies(self, link: _Link) -> None:
        try:
            while data := link.server.recv(65536):
                if not link.mute.is_set():
                    link.client.sendall(data)
                link.replied.set()
        except OSError:
            pass
        finally:
            link.replied.set()
            _close(link)


def _close(link: _Link) -> None:
    for sock in (link.client, link.server):
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with suppress(OSError):
            sock.close()
