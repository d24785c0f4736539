"""Plan an upgrade file by file: base = vendor snapshot, ours = disk, theirs = the new render."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ..errors import ProjectError
from ..frameworks.base import RenderedFile
from .merge import merge3
from .project import ModuleLock, inside, sha256

NEW_SUFFIX = ".new"


class Outcome(StrEnum):
    """What an upgrade does to one file."""

    CREATE = "create"
    REPLACE = "replace"
    UNCHANGED = "unchanged"
    KEEP_EDITED = "kept (your edit; template unchanged)"
    MERGED = "merged"
    CONFLICT = "conflict"
    BESIDE = "written beside your file"
    DELETED_BY_USER = "kept deleted (you removed it)"
    REMOVE = "removed (dropped by the kit)"
    KEEP_DROPPED = "kept (dropped by the kit, edited by you)"

    @property
    def blocking(self) -> bool:
        return self is Outcome.CONFLICT


@dataclass(frozen=True)
class FileUpgrade:
    """The decision for one path, with the bytes to write (None: delete, or leave alone)."""

    path: str
    outcome: Outcome
    write: bytes | None  # bytes to put at `target`; None when nothing is written there
    target: str  # usually `path`; `path + NEW_SUFFIX` when a user file is in the way
    generated: bytes | None  # the new render, None when the kit dropped the file
    template: str
    delete: bool = False
    conflicts: int = 0
    current: bytes | None = None

    @property
    def accepted(self) -> bytes | None:
        """What the project holds at `path` after the upgrade."""
        if self.delete:
            return None
        return self.write if self.write is not None and self.target == self.path else self.current


def plan_upgrade(
    root: Path,
    previous: ModuleLock,
    rendered: Sequence[RenderedFile],
    *,
    new_version: str,
) -> list[FileUpgrade]:
    """Classify every path the old lock or the new render knows."""
    vendor = root / previous.vendor
    new_by_path = {file.path: file for file in rendered}
    labels = {
        "ours_label": "yours (project)",
        "base_label": f"{previous.name} {previous.version} (generated)",
        "theirs_label": f"{previous.name} {new_version} (new)",
    }
    plans: list[FileUpgrade] = []
    for path in sorted(set(previous.files) | set(new_by_path)):
        target = inside(root, path)
        current = target.read_bytes() if target.is_file() else None
        new = new_by_path.get(path)
        locked = previous.files.get(path)
        if locked is None:
            assert new is not None  # a path is in the lock or in the render
            plans.append(_added(path, new, current))
            continue
        base_path = vendor / path
        if not base_path.is_file():
            raise ProjectError(
                f"{previous.vendor / path} is missing from the vendor snapshot; "
                "run `session-kit modules verify` and restore .session-kit/ from version control"
            )
        base = base_path.read_bytes()
        if sha256(base) != locked.generated_sha256:
            raise ProjectError(f"{previous.vendor / path} does not match session-kit.lock; the merge base is damaged")
        plans.append(_existing(path, base, current, new, locked.template, labels))
    return plans


def _added(path: str, new: RenderedFile, current: bytes | None) -> FileUpgrade:
    if current is None:
        return FileUpgrade(path, Outcome.CREATE, new.data, path, new.data, new.template)
    if current == new.data:
        return FileUpgrade(path, Outcome.UNCHANGED, None, path, new.data, new.template, current=current)
    return FileUpgrade(path, Outcome.BESIDE, new.data, path + NEW_SUFFIX, new.data, new.template, current=current)


def _existing(
    path: str, base: bytes, current: bytes | None, new: RenderedFile | None, template: str, labels: dict[str, str]
) -> FileUpgrade:
    if new is None:  # the new version no longer generates this file
        if current is None or current == base:
            return FileUpgrade(path, Outcome.REMOVE, None, path, None, template, delete=current is not None)
        return FileUpgrade(path, Outcome.KEEP_DROPPED, None, path, None, template, current=current)
    if current is None:
        return FileUpgrade(path, Outcome.DELETED_BY_USER, None, path, new.data, new.template)
    if current == new.data:
        return FileUpgrade(path, Outcome.UNCHANGED, None, path, new.data, new.template, current=current)
    if current == base:
        return FileUpgrade(path, Outcome.REPLACE, new.data, path, new.data, new.template, current=current)
    if new.data == base:
        return FileUpgrade(path, Outcome.KEEP_EDITED, None, path, new.data, new.template, current=current)
    result = merge3(base, current, new.data, **labels)
    outcome = Outcome.MERGED if result.clean else Outcome.CONFLICT
    return FileUpgrade(
        path, outcome, result.data, path, new.data, new.template, conflicts=result.conflicts, current=current
    )
