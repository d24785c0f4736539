"""Three-way line merge on bytes, so encodings, line endings and a missing final newline survive.

base = what the kit generated last time, ours = the file on disk, theirs = the new render.
Changes from both sides are applied where they touch different lines; where they overlap and
differ, the region gets diff3-style conflict markers naming both versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

Lines = list[bytes]


@dataclass(frozen=True)
class MergeResult:
    """Merged bytes and how many regions conflicted."""

    data: bytes
    conflicts: int

    @property
    def clean(self) -> bool:
        return self.conflicts == 0


@dataclass(frozen=True)
class _Hunk:
    start: int  # base lines [start, end) are replaced by `lines`
    end: int
    lines: tuple[bytes, ...]
    side: str  # "ours" or "theirs"


def merge3(
    base: bytes, ours: bytes, theirs: bytes, *, ours_label: str, base_label: str, theirs_label: str
) -> MergeResult:
    """Merge `theirs`' changes to `base` into `ours`."""
    if ours == theirs or theirs == base:
        return MergeResult(ours, 0)
    if ours == base:
        return MergeResult(theirs, 0)
    if _converted_to_crlf(base, ours):
        # An editor that rewrote every line ending changed no line the kit cares
        # about: merge on the kit's endings, then give the file its endings back.
        merged = merge3(
            base,
            ours.replace(b"\r\n", b"\n"),
            theirs,
            ours_label=ours_label,
            base_label=base_label,
            theirs_label=theirs_label,
        )
        return MergeResult(merged.data.replace(b"\n", b"\r\n"), merged.conflicts)
    base_lines = base.splitlines(keepends=True)
    ours_lines = ours.splitlines(keepends=True)
    theirs_lines = theirs.splitlines(keepends=True)
    hunks = sorted(
        _hunks(base_lines, ours_lines, "ours") + _hunks(base_lines, theirs_lines, "theirs"),
        key=lambda h: (h.start, h.end),
    )
    eol = _eol(ours)
    out: Lines = []
    conflicts = 0
    position = 0
    for group in _groups(hunks):
        start = min(h.start for h in group)
        end = max(h.end for h in group)
        out.extend(base_lines[position:start])
        position = end
        sides = {h.side for h in group}
        if len(sides) == 1:
            out.extend(_apply(base_lines, start, end, group))
            continue
        mine = _apply(base_lines, start, end, [h for h in group if h.side == "ours"])
        new = _apply(base_lines, start, end, [h for h in group if h.side == "theirs"])
        if mine == new:
            out.extend(mine)
            continue
        conflicts += 1
        out.extend(_conflict(mine, base_lines[start:end], new, eol, ours_label, base_label, theirs_label))
    out.extend(base_lines[position:])
    return MergeResult(b"".join(out), conflicts)


def has_conflict_markers(data: bytes) -> bool:
    """Whether any line still starts a conflict region."""
    return any(line.startswith((b"<<<<<<< ", b">>>>>>> ")) for line in data.splitlines())


def _hunks(base: Lines, other: Lines, side: str) -> list[_Hunk]:
    matcher = SequenceMatcher(None, base, other, autojunk=False)
    return [_Hunk(i1, i2, tuple(other[j1:j2]), side) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def _groups(hunks: Sequence[_Hunk]) -> list[list[_Hunk]]:
    """Hunks whose base ranges overlap (or insert at the same point) form one group."""
    groups: list[list[_Hunk]] = []
    for hunk in hunks:
        if groups:
            current = groups[-1]
            end = max(h.end for h in current)
            start = min(h.start for h in current)
            touches = hunk.start < end or hunk.start == start or (hunk.start == end and hunk.start == hunk.end)
            if touches:
                current.append(hunk)
                continue
        groups.append([hunk])
    return groups


def _apply(base: Lines, start: int, end: int, hunks: Sequence[_Hunk]) -> Lines:
    """Base lines [start, end) with one side's hunks applied (they never overlap each other)."""
    out: Lines = []
    position = start
    for hunk in sorted(hunks, key=lambda h: (h.start, h.end)):
        out.extend(base[position : hunk.start])
        out.extend(hunk.lines)
        position = hunk.end
    out.extend(base[position:end])
    return out


def _conflict(mine: Lines, base: Lines, new: Lines, eol: bytes, ours: str, base_label: str, theirs: str) -> Lines:
    def block(lines: Lines) -> Lines:
        # A side that ends without a newline still needs one before the next marker.
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            return [*lines[:-1], lines[-1] + eol]
        return lines

    return [
        b"<<<<<<< " + ours.encode() + eol,
        *block(mine),
        b"||||||| " + base_label.encode() + eol,
        *block(base),
        b"=======" + eol,
        *block(new),
        b">>>>>>> " + theirs.encode() + eol,
    ]


def _converted_to_crlf(base: bytes, ours: bytes) -> bool:
    """Whether `ours` ends every line with CRLF where `base` used plain LF."""
    return (
        b"\r" not in base
        and b"\r\n" in ours
        and ours.count(b"\n") == ours.count(b"\r\n")
        and ours.count(b"\r") == ours.count(b"\r\n")
    )


def _eol(data: bytes) -> bytes:
    return b"\r\n" if data.count(b"\r\n") > data.count(b"\n") // 2 and b"\r\n" in data else b"\n"
