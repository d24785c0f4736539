"""What every command does before its own work: take the project lock, then recover.

Commands that write take the exclusive lock; read-only ones take the shared lock and trade it
for the exclusive one only when an interrupted transaction has to be finished first, so a reader
never sees, and never records, a half-switched project.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from .journal import Recovery, needs_recovery, recover
from .project_lock import DEFAULT_TIMEOUT, project_lock, upgrade_to_exclusive


@contextlib.contextmanager
def guarded(root: Path, *, write: bool, timeout: float = DEFAULT_TIMEOUT) -> Iterator[Recovery | None]:
    """Hold the lock for the block; yields what recovery did, or None."""
    with project_lock(root, exclusive=write, timeout=timeout):
        recovery = None
        if needs_recovery(root):
            upgrade_to_exclusive(root, timeout=timeout)
            recovery = recover(root)
        yield recovery
