"""Real servers for the store tests: where they are, whether they run, and throw-away Redis nodes.

A test that needs a server calls `require(...)`: when the server is missing the test is
skipped with the reason, unless SESSION_KIT_REQUIRE_SERVICES=1 (CI sets it), which turns
the skip into a failure. Servers the tests start themselves (`RedisNode`) listen on free
loopback ports in a temporary folder and are stopped by their own process id.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from session_kit.engine.unasync import DRIVERS

REQUIRE_VARIABLE = "SESSION_KIT_REQUIRE_SERVICES"

REDIS_URL = os.environ.get("SESSION_KIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("SESSION_KIT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("SESSION_KIT_TEST_MARIADB_URL", "mysql+asyncmy://root@127.0.0.1:3306/test")


def sync_url(url: str) -> str:
    """The same database's URL with the blocking driver a synchronous (Flask) core uses."""
    scheme, separator, rest = url.partition("://")
    return DRIVERS.get(scheme, scheme) + separator + rest


# Read once at import: the autouse fixture in conftest.py hides SESSION_KIT_* from the tests.
_REQUIRED = os.environ.get(REQUIRE_VARIABLE, "") == "1"


def services_required() -> bool:
    return _REQUIRED


def unavailable(reason: str) -> None:
    """Skip the current test, or fail it when services are required."""
    if services_required():
        pytest.fail(f"{reason} ({REQUIRE_VARIABLE}=1)", pytrace=False)
    pytest.skip(reason)


def listening(url: str, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at the URL's host and port."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    if port is None:
        return False
    try:
        with closing(socket.create_connection((host, port), timeout=timeout)):
            return True
    except OSError:
        return False


def require_server(name: str, url: str) -> str:
    """The server's URL, after skipping (or failing) the test if it is not reachable."""
    if not listening(url):
        host = urlsplit(url).netloc.rpartition("@")[2]
        unavailable(f"{name} is not reachable at {host}")
    return url


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed")
        raise AssertionError("unreachable")
    return path


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_cluster_ports(count: int) -> list[int]:
    """Ports p whose cluster bus port p + 10000 is free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port + 10000 < 65536 and port not in ports and _port_free(port + 10000):
            ports.append(port)
    return ports


def _port_free(port: int) -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class RedisNode:
    """A redis-server this test run started, on a loopback port in its own folder."""

    folder: Path
    port: int = field(default_factory=free_port)
    cluster: bool = False
    persistent: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = require_binary("redis-server")
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
            "--appendfsync", "always",
            "--dir", str(self.folder),
            "--logfile", str(self.folder / "redis.log"),
            "--daemonize", "no",
        ]  # fmt: skip
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", str(self.folder / "nodes.conf")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not listening(self.url, timeout=0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start: see {self.folder / 'redis.log'}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop only the process this object started, by its pid."""
        if self.process is not None:
            stop_process(self.process)
        self.process = None


@contextmanager
def redis_node(folder: Path, *, cluster: bool = False, port: int | None = None) -> Iterator[RedisNode]:
    node = RedisNode(folder, cluster=cluster) if port is None else RedisNode(folder, port=port, cluster=cluster)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@contextmanager
def redis_cluster(folder: Path, masters: int = 3) -> Iterator[list[RedisNode]]:
    """A cluster of `masters` primaries (no replicas) on loopback, created with redis-cli."""
    cli = require_binary("redis-cli")
    nodes = [
        RedisNode(folder / f"node{i}", port=port, cluster=True) for i, port in enumerate(free_cluster_ports(masters))
    ]
    try:
        for node in nodes:
            node.start()
        created = subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stdout + created.stderr
        deadline = time.monotonic() + 30
        while True:
            info = subprocess.run(
                [cli, "-p", str(nodes[0].port), "cluster", "info"], capture_output=True, text=True, timeout=10
            ).stdout
            if "cluster_state:ok" in info:
                break
            assert time.monotonic() < deadline, info
            time.sleep(0.1)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


class TcpProxy:
    """A loopback TCP proxy to a server; stopping it makes the server unreachable.

    `stop()` closes the listening socket and every open connection, as a network
    outage would; `start()` listens on the same port again.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            doomed = [*self._sockets, *([self._listener] if self._listener else [])]
            self._sockets, self._listener = [], None
        for sock in doomed:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Terminate a process this test run started, killing it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
