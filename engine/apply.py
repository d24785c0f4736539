"""Write into the project all-or-nothing: stage, back up, switch, or roll back."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import ApplyError, ProjectError
from .project import STATE_DIR, inside

FAULT_VARIABLE = "SESSION_KIT_FAULT_STEP"


@dataclass(frozen=True)
class Write:
    """Bytes for one project-relative path; `data=None` deletes the file."""

    path: str
    data: bytes | None
    mode: int | None = None  # None: keep the mode of the file it replaces, or the umask default


def changes_disk(root: Path, write: Write) -> bool:
    """Whether applying `write` would change anything, so unchanged files are left untouched."""
    target = root / PurePosixPath(write.path)
    if write.data is None:
        return target.exists()
    return not target.is_file() or target.read_bytes() != write.data


class InjectedFault(RuntimeError):
    """Raised at a chosen step by tests to prove the rollback."""


def check_writable(root: Path) -> None:
    """Refuse a project whose directory is read-only, before anything is touched.

    The mode bits are honoured even for root, who could otherwise write anyway:
    a directory marked read-only is a clear "do not touch".
    """
    mode = root.stat().st_mode
    if not os.access(root, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise ProjectError(f"project directory {root} is read-only; nothing was written")


def apply_writes(root: Path, writes: Sequence[Write], *, environ: Mapping[str, str] | None = None) -> None:
    """Write every file or none: on any error the project is restored exactly."""
    check_writable(root)
    fault_at = _fault_step(os.environ if environ is None else environ)
    transaction = _Transaction(root, fault_at)
    try:
        transaction.run(writes)
    except BaseException as exc:
        transaction.roll_back()
        if isinstance(exc, ProjectError | InjectedFault | OSError):
            raise ApplyError(f"writing into {root} failed ({exc}); every change was rolled back") from exc
        raise
    finally:
        transaction.clean_up()


class _Transaction:
    def __init__(self, root: Path, fault_at: int | None) -> None:
        self.root = root
        self.fault_at = fault_at
        self.step = 0
        self.created_dirs: list[Path] = []
        self.removed_dirs: list[Path] = []
        self.replaced: list[tuple[Path, Path | None]] = []  # (target, backup or None if new)
        self.staging: Path | None = None

    def checkpoint(self) -> None:
        self.step += 1
        if self.fault_at is not None and self.step == self.fault_at:
            raise InjectedFault(f"fault injected at write step {self.step}")

    def make_dirs(self, directory: Path) -> None:
        missing = []
        probe = directory
        while not probe.exists():
            missing.append(probe)
            probe = probe.parent
        for path in reversed(missing):
            path.mkdir()
            self.created_dirs.append(path)

    def run(self, writes: Sequence[Write]) -> None:
        self.checkpoint()
        self.make_dirs(self.root / STATE_DIR)
        self.staging = self.root / STATE_DIR / f".staging-{secrets.token_hex(6)}"
        self.staging.mkdir()
        staged: list[tuple[Path | None, Path]] = []
        for index, write in enumerate(writes):
            target = inside(self.root, write.path)
            if target.is_dir():
                raise ProjectError(f"{write.path} is a directory; a file was expected")
            if write.data is None:
                staged.append((None, target))
                continue
            stage = self.staging / f"{index}.new"
            stage.write_bytes(write.data)
            if write.mode is not None:
                os.chmod(stage, write.mode)
            elif target.is_file():
                os.chmod(stage, stat.S_IMODE(target.stat().st_mode))
            staged.append((stage, target))
        self.checkpoint()
        for index, (source, target) in enumerate(staged):
            if source is None and not target.exists():
                continue
            backup = None
            if target.exists():
                backup = self.staging / f"{index}.old"
                os.link(target, backup) if _same_device(target, backup.parent) else shutil.copy2(target, backup)
            self.replaced.append((target, backup))
            if source is None:
                target.unlink()
                self.remove_empty_parents(target.parent)
            else:
                self.make_dirs(target.parent)
                os.replace(source, target)
            self.checkpoint()

    def remove_empty_parents(self, directory: Path) -> None:
        """Folders a deletion emptied go too, as they would after `git rm`."""
        while directory != self.root and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
            self.removed_dirs.append(directory)
            directory = directory.parent

    def roll_back(self) -> None:
        for directory in reversed(self.removed_dirs):
            directory.mkdir(exist_ok=True)
        for target, backup in reversed(self.replaced):
            if backup is not None and backup.exists():
                os.replace(backup, target)
            elif backup is None and target.exists():
                target.unlink()
        if self.staging is not None and self.staging.exists():
            shutil.rmtree(self.staging, ignore_errors=True)
        for directory in reversed(self.created_dirs):
            with contextlib.suppress(OSError):  # not empty: something else lives there now
                directory.rmdir()

    def clean_up(self) -> None:
        if self.staging is not None and self.staging.exists():
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None


def _same_device(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


def _fault_step(environ: Mapping[str, str]) -> int | None:
    raw = environ.get(FAULT_VARIABLE)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ProjectError(f"{FAULT_VARIABLE}={raw!r} must be an integer") from None
