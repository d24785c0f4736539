"""What `session-kit rollback` needs: the state of every file an upgrade touched, from before it.

Each upgrade leaves `.session-kit/history/<n>/` holding `manifest.json` (versions, the previous
lock, which files existed and their modes) and the previous bytes under `files/`. Only the
newest HISTORY_LIMIT entries are kept; a rollback consumes the newest one.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import ProjectError
from .apply import Write
from .project import LOCK_NAME, STATE_DIR, inside
from .statecheck import Checker

HISTORY_DIR = PurePosixPath(STATE_DIR, "history")
HISTORY_LIMIT = 5
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class SavedFile:
    """A file as it was before the recorded upgrade; `mode` is None when it did not exist."""

    path: str
    mode: int | None


@dataclass(frozen=True)
class HistoryEntry:
    """One recorded upgrade."""

    number: int
    directory: PurePosixPath
    from_version: str
    to_version: str
    files: tuple[SavedFile, ...] = ()


def _remedy(directory: PurePosixPath) -> str:
    return (
        f"Restore {directory}/ from version control, or delete that folder to drop this rollback point "
        "(the upgrade it recorded can then no longer be rolled back)."
    )


def _read_entry(root: Path, number: int, directory: PurePosixPath) -> HistoryEntry:
    """Parse one manifest; DamagedState naming the key when it is not what record_writes wrote."""
    path = root / directory / MANIFEST
    check = Checker(path, _remedy(directory))
    raw = check.read_json("history manifest")
    body = check.mapping(raw, "(top level)")
    saved = []
    for rel, info in check.mapping(check.field(body, "files", ""), "files").items():
        key = f"files.{rel}"
        check.relative_path(rel, key)
        item = check.mapping(info, key)
        existed = check.boolean(check.field(item, "existed", key), f"{key}.existed")
        mode = check.integer(check.field(item, "mode", key), f"{key}.mode") if existed else None
        if mode is not None and not 0 <= mode <= 0o7777:
            raise check.fail(f"{key}.mode", f"{mode} is not a file mode")
        saved.append(SavedFile(rel, mode))
    return HistoryEntry(
        number,
        directory,
        check.version(check.field(body, "from_version", ""), "from_version"),
        check.version(check.field(body, "to_version", ""), "to_version"),
        tuple(sorted(saved, key=lambda f: f.path)),
    )


def entries(root: Path) -> list[HistoryEntry]:
    """Recorded upgrades, oldest first."""
    base = root / HISTORY_DIR
    if not base.is_dir():
        return []
    found = []
    for child in base.iterdir():
        if child.name.isdigit() and child.is_dir():
            found.append(_read_entry(root, int(child.name), HISTORY_DIR / child.name))
    return sorted(found, key=lambda entry: entry.number)


def record_writes(root: Path, touched: Iterable[str], from_version: str, to_version: str) -> list[Write]:
    """Writes that save the current state of `touched` paths (and the lock) as a new entry,
    plus deletions that keep the history bounded."""
    existing = entries(root)
    number = existing[-1].number + 1 if existing else 1
    directory = HISTORY_DIR / f"{number:04d}"
    files: dict[str, dict[str, object]] = {}
    writes: list[Write] = []
    for rel in sorted(set(touched) | {LOCK_NAME}):
        path = inside(root, rel)
        if path.is_file():
            files[rel] = {"existed": True, "mode": stat.S_IMODE(path.stat().st_mode)}
            writes.append(Write(str(directory / "files" / rel), path.read_bytes()))
        else:
            files[rel] = {"existed": False}
    manifest = {"from_version": from_version, "to_version": to_version, "files": files}
    writes.append(Write(str(directory / MANIFEST), (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()))
    for old in existing[: max(0, len(existing) + 1 - HISTORY_LIMIT)]:
        writes.extend(_removal(root, old.directory))
    return writes


def rollback_writes(root: Path) -> tuple[HistoryEntry, list[Write]]:
    """Writes that restore the newest entry's state and then drop that entry."""
    available = entries(root)
    if not available:
        raise ProjectError(f"nothing to roll back: no upgrade is recorded under {root / HISTORY_DIR}")
    entry = available[-1]
    writes: list[Write] = []
    for saved in entry.files:
        rel = saved.path
        if saved.mode is not None:
            copy = root / entry.directory / "files" / rel
            if not copy.is_file():
                check = Checker(root / entry.directory / MANIFEST, _remedy(entry.directory))
                raise check.fail(f"files.{rel}", f"the saved copy {entry.directory}/files/{rel} is missing")
            writes.append(Write(rel, copy.read_bytes(), mode=saved.mode))
        elif (root / rel).exists():
            writes.append(Write(rel, None))
    writes.extend(_removal(root, entry.directory))
    return entry, writes


def _removal(root: Path, directory: PurePosixPath) -> list[Write]:
    base = root / directory
    return [Write(path.relative_to(root).as_posix(), None) for path in sorted(base.rglob("*")) if path.is_file()]
