"""Compare what would be written with what is on disk, and decide per file."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ..frameworks.base import RenderedFile
from .project import ModuleLock, inside, sha256


class Action(StrEnum):
    """What happens to one generated file."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    SKIP_MODIFIED = "skipped (modified)"
    OVERWRITE = "overwrite (--force)"
    REFUSE = "refused (not written by session-kit)"

    @property
    def writes(self) -> bool:
        return self in (Action.CREATE, Action.UPDATE, Action.OVERWRITE)


@dataclass(frozen=True)
class FilePlan:
    """The decision for one file, with what is there now."""

    file: RenderedFile
    action: Action
    current: bytes | None
    accepted_sha256: str  # the hash the lock records as accepted on disk afterwards
    blocking: bool = False  # exit 1: an edited or foreign file stands where new content should go

    @property
    def path(self) -> str:
        return self.file.path

    @property
    def keeps_copy(self) -> bool:
        """`--force` keeps the user's bytes beside the new file as <name>.orig."""
        return self.action is Action.OVERWRITE

    def diff(self) -> str:
        """Unified diff from the file on disk to what would be written."""
        if not self.action.writes:
            return ""
        return unified_diff(self.path, self.current, self.file.data)


def unified_diff(path: str, old: bytes | None, new: bytes | None) -> str:
    """A git-style unified diff of one file; None stands for "no file"."""
    lines = difflib.unified_diff(
        _text(old or b"").splitlines(keepends=True),
        _text(new or b"").splitlines(keepends=True),
        fromfile=f"a/{path}" if old is not None else "/dev/null",
        tofile=f"b/{path}" if new is not None else "/dev/null",
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def build_plan(
    root: Path, rendered: Sequence[RenderedFile], previous: ModuleLock | None, force: bool
) -> list[FilePlan]:
    """Classify every rendered file against the disk and the previous lock."""
    plans = []
    for file in rendered:
        target = inside(root, file.path)
        new_hash = sha256(file.data)
        current = target.read_bytes() if target.is_file() else None
        if target.exists() and current is None:
            plans.append(FilePlan(file, Action.REFUSE, None, new_hash, blocking=True))
            continue
        locked = previous.files.get(file.path) if previous else None
        if current is None:
            plans.append(FilePlan(file, Action.CREATE, None, new_hash))
            continue
        disk_hash = sha256(current)
        if disk_hash == new_hash:
            plans.append(FilePlan(file, Action.UNCHANGED, current, new_hash))
        elif locked is not None and disk_hash == locked.generated_sha256:
            # Exactly what was generated. An accepted edit (`modules lock --overwrite`) is still the user's code.
            plans.append(FilePlan(file, Action.UPDATE, current, new_hash))
        elif force:
            plans.append(FilePlan(file, Action.OVERWRITE, current, new_hash))
        elif locked is not None:
            # Edited by the user: keep it. It only blocks when the kit has new content for it.
            template_changed = new_hash != locked.generated_sha256
            plans.append(FilePlan(file, Action.SKIP_MODIFIED, current, locked.sha256, blocking=template_changed))
        else:
            plans.append(FilePlan(file, Action.REFUSE, current, new_hash, blocking=True))
    return plans


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
