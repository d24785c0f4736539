"""The on-disk record of a transaction in flight, and the recovery that finishes one.

A transaction (engine/apply.py) first stages every new file under
`.session-kit/.staging-<id>/`, then writes this journal, then switches the project files one by
one, keeping a hard link to each replaced file as `<n>.old` beside the staged ones. Because the
journal names every staged file, every backup and whether each target existed, the state after
a crash at any instant can be driven to one end:

- state "switching": every staged file was complete before the journal was written, so recovery
  *completes* the transaction: each staged file still present is moved in, each deletion is
  repeated. Both steps are idempotent, so a crash during recovery is recovered the same way.
  (The journal holds each new file's sha256; should a power loss have cut a staged file short,
  recovery sees it and rolls back instead.)
- state "rolling back": an in-process error had started undoing the transaction, and the new
  bytes of already switched files are gone, so recovery *rolls it back* from the backups.

A staging folder without a journal belongs to a transaction that died before its first project
write: it is removed, and the project is exactly as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import DamagedState
from .project import STATE_DIR
from .statecheck import SHA256, Checker

JOURNAL = PurePosixPath(STATE_DIR, "journal.json")
JOURNAL_FORMAT = 1
STAGING_PREFIX = ".staging-"
SWITCHING = "switching"
ROLLING_BACK = "rolling back"
_REMEDY = (
    "The interrupted transaction cannot be finished safely; restore the project (including "
    ".session-kit/ and session-kit.lock) from version control, then delete this file."
)


@dataclass(frozen=True)
class Entry:
    """One target of the transaction."""

    path: str  # project-relative target
    staged: str | None  # file name inside the staging folder with the new bytes; None deletes
    existed: bool  # whether the target was a file before the transaction
    sha256: str | None = None  # of the new bytes: recovery completes only when they are intact

    def backup_name(self, index: int) -> str:
        return f"{index}.old"


@dataclass(frozen=True)
class Journal:
    """What one transaction does, written before its first project write."""

    kind: str  # add | upgrade | rollback | continue | lock | write
    label: str  # for messages: "upgrade of session 0.1.0 → 0.2.0"
    state: str
    staging: str  # folder name under .session-kit/
    created_dirs: tuple[str, ...]  # project-relative folders that did not exist, outermost first
    entries: tuple[Entry, ...]

    def staging_dir(self, root: Path) -> Path:
        return root / STATE_DIR / self.staging

    def to_json(self) -> dict[str, Any]:
        return {
            "journal_format": JOURNAL_FORMAT,
            "kind": self.kind,
            "label": self.label,
            "state": self.state,
            "staging": self.staging,
            "created_dirs": list(self.created_dirs),
            "entries": [
                {"path": e.path, "staged": e.staged, "existed": e.existed, "sha256": e.sha256} for e in self.entries
            ],
        }


@dataclass(frozen=True)
class Recovery:
    """What recovery did, for the message every command prints before its own work."""

    label: str  # "" when only leftovers were removed
    action: str  # "completed" | "rolled back" | "cleaned up"
    leftovers: int  # staging folders removed that no journal referred to

    def message(self) -> str:
        if not self.label:
            return (
                f"removed {self.leftovers} leftover staging folder(s) of an interrupted run; "
                "the project was not changed"
            )
        return (
            f"the interrupted {self.label} was {self.action}; "
            f"the project is in its {'new' if self.action == 'completed' else 'previous'} state"
        )


def write_journal(root: Path, journal: Journal) -> None:
    """Replace the journal atomically and durably: it is the commit point of the transaction."""
    path = root / JOURNAL
    tmp = path.with_name(path.name + ".tmp")
    data = (json.dumps(journal.to_json(), indent=2, sort_keys=True) + "\n").encode()
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def remove_journal(root: Path) -> None:
    path = root / JOURNAL
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        fsync_dir(path.parent)


def read_journal(root: Path) -> Journal | None:
    """The journal of an unfinished transaction; DamagedState when it is not one session-kit wrote."""
    path = root / JOURNAL
    if not path.is_file():
        return None
    return _parse(path, Checker(path, _REMEDY).read_json("journal"))


def _parse(path: Path, raw: Any) -> Journal:
    def fail(key: str, problem: str) -> DamagedState:
        return DamagedState(path, key, problem, _REMEDY)

    if not isinstance(raw, dict):
        raise fail("", "must be a JSON object")
    if raw.get("journal_format") != JOURNAL_FORMAT:
        raise fail("journal_format", f"{raw.get('journal_format')!r} is not supported (expected {JOURNAL_FORMAT})")
    for key in ("kind", "label", "state", "staging"):
        if not isinstance(raw.get(key), str):
            raise fail(key, "must be a string")
    if raw["state"] not in (SWITCHING, ROLLING_BACK):
        raise fail("state", f"{raw['state']!r} is not {SWITCHING!r} or {ROLLING_BACK!r}")
    staging = raw["staging"]
    if not staging.startswith(STAGING_PREFIX) or "/" in staging or ".." in staging:
        raise fail("staging", f"{staging!r} is not a staging folder name")
    dirs = raw.get("created_dirs")
    if not isinstance(dirs, list) or not all(isinstance(d, str) and _relative(d) for d in dirs):
        raise fail("created_dirs", "must be a list of project-relative folders")
    entries_raw = raw.get("entries")
    if not isinstance(entries_raw, list):
        raise fail("entries", "must be a list")
    entries = []
    for index, item in enumerate(entries_raw):
        key = f"entries[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not _relative(item["path"]):
            raise fail(f"{key}.path", "must be a project-relative path")
        staged = item.get("staged")
        if staged is not None and (not isinstance(staged, str) or "/" in staged):
            raise fail(f"{key}.staged", "must be a file name or null")
        if not isinstance(item.get("existed"), bool):
            raise fail(f"{key}.existed", "must be true or false")
        digest = item.get("sha256")
        if (staged is None) != (digest is None) or (digest is not None and not SHA256.fullmatch(str(digest))):
            raise fail(f"{key}.sha256", "must be the sha256 of the staged file (null for a deletion)")
        entries.append(Entry(item["path"], staged, item["existed"], digest))
    return Journal(raw["kind"], raw["label"], raw["state"], staging, tuple(dirs), tuple(entries))


def _relative(rel: str) -> bool:
    path = PurePosixPath(rel)
    return bool(rel) and not path.is_absolute() and ".." not in path.parts


def switch(root: Path, journal: Journal, index: int, step: Any = None) -> None:
    """Put entry `index` in place, keeping what it replaces as a backup for a rollback."""
    entry = journal.entries[index]
    target = root / entry.path
    staging = journal.staging_dir(root)
    if entry.existed and target.is_file():
        backup = staging / entry.backup_name(index)
        if not backup.exists():
            _keep_copy(target, backup)
        if step is not None:
            step()  # a crash here: backup made, target still the old file
    if entry.staged is None:
        if target.is_file() or target.is_symlink():
            target.unlink()
        remove_empty_parents(root, target.parent)
        return
    source = staging / entry.staged
    if source.exists():  # gone: moved in before a crash, nothing left to do
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)


def complete(root: Path, journal: Journal) -> None:
    """Drive a "switching" journal to the new state; safe to repeat after a crash."""
    for index in range(len(journal.entries)):
        switch(root, journal, index)
    finish(root, journal)


def roll_back(root: Path, journal: Journal) -> None:
    """Drive the project back to the state before the transaction; safe to repeat after a crash."""
    staging = journal.staging_dir(root)
    for index in reversed(range(len(journal.entries))):
        entry = journal.entries[index]
        target = root / entry.path
        backup = staging / entry.backup_name(index)
        if backup.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(backup, target)
        elif not entry.existed:
            switched = entry.staged is None or not (staging / entry.staged).exists()
            if switched and (target.is_file() or target.is_symlink()):
                target.unlink()
    state_dir = PurePosixPath(STATE_DIR).as_posix()
    # Folders the transaction created go while the journal still exists, so a crash now is
    # rolled back again; .session-kit itself holds the journal and goes last.
    for rel in reversed(journal.created_dirs):
        if rel != state_dir:
            _remove_if_empty(root / rel)
    finish(root, journal)
    if state_dir in journal.created_dirs:
        _remove_if_empty(root / state_dir)


def finish(root: Path, journal: Journal) -> None:
    """The transaction is over: the journal goes first, then the staging folder it names."""
    remove_journal(root)
    shutil.rmtree(journal.staging_dir(root), ignore_errors=True)


def remove_empty_parents(root: Path, directory: Path) -> None:
    """Folders a deletion emptied go too, as they would after `git rm`."""
    while directory != root and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent


def needs_recovery(root: Path) -> bool:
    """Cheap check, done before taking the exclusive lock that recovery needs."""
    state = root / STATE_DIR
    if not state.is_dir():
        return False
    return (root / JOURNAL).exists() or any(_leftovers(state))


def recover(root: Path) -> Recovery | None:
    """Finish or undo an interrupted transaction and remove leftovers; the caller holds the exclusive lock."""
    if not needs_recovery(root):
        return None
    journal = read_journal(root)
    label, action = "", "cleaned up"
    if journal is not None:
        label = journal.label
        if journal.state == SWITCHING and _new_bytes_intact(root, journal):
            complete(root, journal)
            action = "completed"
        else:
            roll_back(root, journal)
            action = "rolled back"
    state = root / STATE_DIR
    leftovers = 0
    for path in _leftovers(state):
        leftovers += path.is_dir()
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    if state.is_dir() and not any(state.iterdir()):
        state.rmdir()  # only a transaction's scaffolding lived there: the project never had state
    return Recovery(label, action, leftovers)


def _new_bytes_intact(root: Path, journal: Journal) -> bool:
    """Whether every new file, staged or already moved in, still has the bytes the journal names.

    Staged files are not flushed one by one (that would double the cost of every write); after
    a power loss they may be empty or short, and then the transaction is rolled back instead.
    """
    staging = journal.staging_dir(root)
    for entry in journal.entries:
        if entry.staged is None:
            continue
        source = staging / entry.staged
        where = source if source.exists() else root / entry.path
        try:
            if hashlib.sha256(where.read_bytes()).hexdigest() != entry.sha256:
                return False
        except OSError:
            return False
    return True


def _leftovers(state: Path) -> list[Path]:
    if not state.is_dir():
        return []
    tmp = state / (JOURNAL.name + ".tmp")
    found = [path for path in state.iterdir() if path.name.startswith(STAGING_PREFIX)]
    return [*found, tmp] if tmp.exists() else found


def _keep_copy(target: Path, backup: Path) -> None:
    """A hard link costs nothing; across devices, a copy made complete before it gets its name."""
    try:
        os.link(target, backup)
    except OSError:
        partial = backup.with_name(backup.name + ".part")
        shutil.copy2(target, partial)
        os.replace(partial, backup)


def _remove_if_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not empty: something else lives there now
        directory.rmdir()


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink inside `directory` durable; not every platform can open folders."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
