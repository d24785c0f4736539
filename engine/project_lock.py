"""One writer or many readers per project, across processes.

The lock is the kernel's `flock` on the project directory itself, exclusive for commands that
write and shared for those that only read state a writer changes. Locking the directory (not a
file inside it) means taking the lock writes nothing, so read-only commands and up-to-date runs
leave the project untouched. A lock can never go stale: the kernel drops it the instant its
holder dies, kill -9 included, so the next command takes it over at once; there is no pid file
whose owner has to be guessed alive or dead, and a reused pid cannot keep a project locked.

A process that cannot get the lock waits (a few seconds by default) and then fails with
ProjectBusy, naming the holder's pid as the kernel reports it (/proc/locks on Linux).

Locks are re-entrant within one process: a workflow that calls another keeps the lock it has.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import ProjectBusy

if sys.platform != "win32":
    import fcntl

DEFAULT_TIMEOUT = 5.0
_POLL = 0.05


@dataclass
class _Held:
    fd: int
    exclusive: bool
    depth: int


_held: dict[Path, _Held] = {}
_guard = threading.Lock()


@contextlib.contextmanager
def project_lock(root: Path, *, exclusive: bool, timeout: float = DEFAULT_TIMEOUT) -> Iterator[None]:
    """Hold the project's lock for the block; ProjectBusy after `timeout` seconds of waiting."""
    with _guard:
        held = _held.get(root)
    if held is not None:
        if exclusive and not held.exclusive:
            _acquire(held.fd, root, exclusive=True, timeout=timeout)
            held.exclusive = True
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
        return
    if sys.platform == "win32":  # no flock there; Windows projects are not locked
        yield
        return
    fd = os.open(root, os.O_RDONLY)
    try:
        _acquire(fd, root, exclusive=exclusive, timeout=timeout)
        with _guard:
            _held[root] = _Held(fd, exclusive, 1)
        try:
            yield
        finally:
            with _guard:
                del _held[root]
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def holds_exclusive(root: Path) -> bool:
    """Whether this process holds the exclusive lock on `root`."""
    held = _held.get(root)
    return held is not None and held.exclusive


def upgrade_to_exclusive(root: Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Turn a held shared lock into the exclusive one (recovery found work to do)."""
    held = _held.get(root)
    if held is None or held.exclusive:
        return
    _acquire(held.fd, root, exclusive=True, timeout=timeout)
    held.exclusive = True


def _acquire(fd: int, root: Path, *, exclusive: bool, timeout: float) -> None:
    if sys.platform == "win32":
        return
    operation = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, operation)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise ProjectBusy(_busy_message(root, timeout)) from None
            time.sleep(_POLL)


def _busy_message(root: Path, timeout: float) -> str:
    pids = holder_pids(root)
    who = f"session-kit process {', '.join(map(str, pids))}" if pids else "another session-kit process"
    return (
        f"{root} is in use by {who}; waited {timeout:g} s. Let it finish and run the command again "
        "(a process that was killed releases the project on its own)."
    )


def holder_pids(root: Path) -> list[int]:
    """Pids holding a flock on `root`, from /proc/locks; empty where the kernel does not say."""
    try:
        info = root.stat()
        text = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return []
    wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    pids = []
    for line in text.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; waiting entries carry "->" and are skipped.
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == wanted and fields[4].isdigit():
            pid = int(fields[4])
            if pid != os.getpid() and pid not in pids:
                pids.append(pid)
    return pids
