"""Numbered write steps, so tests can stop a transaction at any one of them.

Two ways in, both off unless a test turns them on:
- SESSION_KIT_FAULT_STEP=N raises InjectedFault at step N inside the process, which proves
  the in-process rollback;
- `install_crash_hook(N)` makes step N end the process on the spot (os._exit: no finally
  blocks, no cleanup), which proves crash recovery. Only tests call it, from a forked child or
  a driver script, so the production path never sees os._exit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from ..errors import ProjectError

FAULT_VARIABLE = "SESSION_KIT_FAULT_STEP"
CRASH_EXIT_CODE = 137  # what a shell reports for kill -9

# Called with each step number; None in normal runs.
_step_hook: Callable[[int], None] | None = None


class InjectedFault(RuntimeError):
    """Raised at a chosen step by tests to prove the rollback."""


def install_crash_hook(step: int) -> None:
    """Tests only: make write step `step` of every later transaction kill the process."""

    def crash(current: int) -> None:
        if current == step:
            os._exit(CRASH_EXIT_CODE)

    global _step_hook
    _step_hook = crash


def fault_step(environ: Mapping[str, str]) -> int | None:
    """The step SESSION_KIT_FAULT_STEP asks to fail at, if any."""
    raw = environ.get(FAULT_VARIABLE)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ProjectError(f"{FAULT_VARIABLE}={raw!r} must be an integer") from None


class Steps:
    """Counts the write steps of one transaction and fires the hooks."""

    def __init__(self, fault_at: int | None) -> None:
        self.fault_at = fault_at
        self.count = 0

    def __call__(self, *, committed: bool = False) -> None:
        """One step; `committed` steps come after the commit point, where only a crash can happen
        (an error there has nothing left to undo, so no fault is injected)."""
        self.count += 1
        if _step_hook is not None:
            _step_hook(self.count)
        if not committed and self.fault_at is not None and self.count == self.fault_at:
            raise InjectedFault(f"fault injected at write step {self.count}")
