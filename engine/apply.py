"""Write into the project all-or-nothing, even across a crash: stage, journal, switch, finish.

The order is what makes kill -9 harmless (engine/journal.py explains the recovery):
1. every new file is written into a staging folder under .session-kit/;
2. the journal naming all of them (and the sha256 of each) is written atomically and flushed:
   from here on the transaction is committed, and a crash is completed by the next command;
3. each target is switched (the replaced file kept as a hard-linked backup);
4. the journal is removed, then the staging folder.
An error inside the process (a full disk, a file in the way) rolls back from the backups instead.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import ApplyError, ProjectError
from . import journal as jr
from .faults import FAULT_VARIABLE, InjectedFault, Steps, fault_step
from .project import STATE_DIR, inside

__all__ = ["FAULT_VARIABLE", "InjectedFault", "Write", "apply_writes", "changes_disk", "check_writable"]


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


def check_writable(root: Path) -> None:
    """Refuse a project whose directory is read-only, before anything is touched.

    The mode bits are honoured even for root, who could otherwise write anyway:
    a directory marked read-only is a clear "do not touch".
    """
    mode = root.stat().st_mode
    if not os.access(root, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise ProjectError(f"project directory {root} is read-only; nothing was written")


def apply_writes(
    root: Path,
    writes: Sequence[Write],
    *,
    environ: Mapping[str, str] | None = None,
    kind: str = "write",
    label: str = "",
) -> None:
    """Write every file or none: on any error the project is restored exactly.

    `kind` and `label` go into the journal, so a recovery can say what it finished.
    """
    check_writable(root)
    steps = Steps(fault_step(os.environ if environ is None else environ))
    transaction = _Transaction(root, steps, kind, label or kind)
    try:
        transaction.run(writes)
    except BaseException as exc:
        transaction.roll_back()
        if isinstance(exc, ProjectError | InjectedFault | OSError):
            raise ApplyError(f"writing into {root} failed ({exc}); every change was rolled back") from exc
        raise


class _Transaction:
    def __init__(self, root: Path, steps: Steps, kind: str, label: str) -> None:
        self.root = root
        self.step = steps
        self.kind = kind
        self.label = label
        self.journal: jr.Journal | None = None
        self.staging: Path | None = None
        self.created: list[str] = []

    def run(self, writes: Sequence[Write]) -> None:
        self.step()
        targets = self._targets(writes)
        self.created = _missing_dirs(self.root, [PurePosixPath(STATE_DIR), *(PurePosixPath(w.path) for w in writes)])
        staging_name = f"{jr.STAGING_PREFIX}{secrets.token_hex(6)}"
        self.staging = self.root / STATE_DIR / staging_name
        self.staging.mkdir(parents=True)
        entries = []
        for index, (write, target) in enumerate(zip(writes, targets, strict=True)):
            existed = target.is_file()
            if write.data is None:
                if existed:
                    entries.append(jr.Entry(write.path, None, True))
                continue
            name = f"{index}.new"
            _stage(self.staging / name, write, target)
            entries.append(jr.Entry(write.path, name, existed, hashlib.sha256(write.data).hexdigest()))
            self.step()
        jr.fsync_dir(self.staging)
        journal = jr.Journal(self.kind, self.label, jr.SWITCHING, staging_name, tuple(self.created), tuple(entries))
        jr.write_journal(self.root, journal)
        self.journal = journal
        self.step()
        for index in range(len(entries)):
            jr.switch(self.root, journal, index, self.step)
            self.step()
        jr.remove_journal(self.root)
        self.journal = None
        self.step(committed=True)  # a crash here leaves only the staging folder, which recovery removes
        shutil.rmtree(self.staging, ignore_errors=True)

    def _targets(self, writes: Sequence[Write]) -> list[Path]:
        targets = []
        for write in writes:
            target = inside(self.root, write.path)
            if target.is_dir():
                raise ProjectError(f"{write.path} is a directory; a file was expected")
            targets.append(target)
        return targets

    def roll_back(self) -> None:
        """Undo in process; the journal is marked first, so a crash meanwhile is rolled back too."""
        if self.journal is not None:
            undoing = jr.Journal(
                self.journal.kind,
                self.journal.label,
                jr.ROLLING_BACK,
                self.journal.staging,
                self.journal.created_dirs,
                self.journal.entries,
            )
            jr.write_journal(self.root, undoing)
            jr.roll_back(self.root, undoing)
            return
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
        for rel in reversed(self.created):
            try:
                (self.root / rel).rmdir()
            except OSError:
                continue


def _stage(path: Path, write: Write, target: Path) -> None:
    """The new bytes, with the mode the target will have (not flushed: the journal's hashes catch a torn file)."""
    assert write.data is not None
    path.write_bytes(write.data)
    if write.mode is not None:
        os.chmod(path, write.mode)
    elif target.is_file():
        os.chmod(path, stat.S_IMODE(target.stat().st_mode))


def _missing_dirs(root: Path, paths: Sequence[PurePosixPath]) -> list[str]:
    """Folders that do not exist yet and will hold a written file, outermost first."""
    missing: dict[str, None] = {}
    for rel in paths:
        chain = []
        probe = rel if rel.as_posix() == STATE_DIR else rel.parent
        while probe.parts and not (root / probe).exists():
            chain.append(probe.as_posix())
            probe = probe.parent
        for folder in reversed(chain):
            missing.setdefault(folder, None)
    return sorted(missing, key=lambda rel: (rel.count("/"), rel))
