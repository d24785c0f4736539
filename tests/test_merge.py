"""The three-way line merge on its own: clean merges, conflicts, line endings, and git's answer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from session_kit.engine.merge import has_conflict_markers, merge3

BASE = b"one\ntwo\nthree\nfour\nfive\n"
LABELS = {"ours_label": "yours", "base_label": "0.1.0", "theirs_label": "0.2.0"}


def merge(base: bytes, ours: bytes, theirs: bytes) -> tuple[bytes, int]:
    result = merge3(base, ours, theirs, **LABELS)
    return result.data, result.conflicts


def test_changes_on_different_lines_are_both_kept() -> None:
    ours = BASE.replace(b"one", b"ONE")
    theirs = BASE.replace(b"five", b"FIVE")

    assert merge(BASE, ours, theirs) == (b"ONE\ntwo\nthree\nfour\nFIVE\n", 0)


def test_an_untouched_file_takes_the_new_render_and_an_unchanged_render_keeps_the_edit() -> None:
    edited = BASE.replace(b"two", b"2")
    rendered = BASE + b"six\n"

    assert merge(BASE, BASE, rendered) == (rendered, 0)
    assert merge(BASE, edited, BASE) == (edited, 0)


def test_the_same_change_on_both_sides_is_no_conflict() -> None:
    both = BASE.replace(b"three", b"3")

    assert merge(BASE, both, both) == (both, 0)


def test_overlapping_different_changes_get_diff3_markers_naming_each_side() -> None:
    ours = BASE.replace(b"three", b"mine")
    theirs = BASE.replace(b"three", b"kit")

    data, conflicts = merge(BASE, ours, theirs)

    assert conflicts == 1
    assert has_conflict_markers(data)
    assert data == (b"one\ntwo\n<<<<<<< yours\nmine\n||||||| 0.1.0\nthree\n=======\nkit\n>>>>>>> 0.2.0\nfour\nfive\n")


def test_a_file_rewritten_with_crlf_endings_still_takes_a_template_change() -> None:
    ours = BASE.replace(b"\n", b"\r\n")
    theirs = BASE.replace(b"four", b"FOUR")

    data, conflicts = merge(BASE, ours, theirs)

    assert conflicts == 0
    assert data == b"one\r\ntwo\r\nthree\r\nFOUR\r\nfive\r\n"


def test_crlf_and_a_real_edit_merge_like_the_edit_alone() -> None:
    ours = BASE.replace(b"one", b"ONE").replace(b"\n", b"\r\n")
    theirs = BASE.replace(b"one", b"uno")

    data, conflicts = merge(BASE, ours, theirs)

    assert conflicts == 1
    assert b"<<<<<<< yours\r\nONE\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_mixed_line_endings_are_merged_line_by_line() -> None:
    ours = b"one\r\ntwo\nthree\nfour\nfive\n"
    theirs = BASE.replace(b"five", b"FIVE")

    assert merge(BASE, ours, theirs) == (b"one\r\ntwo\nthree\nfour\nFIVE\n", 0)


def test_a_dropped_final_newline_survives() -> None:
    ours = BASE.rstrip(b"\n")
    theirs = BASE.replace(b"one", b"ONE")

    assert merge(BASE, ours, theirs) == (b"ONE\ntwo\nthree\nfour\nfive", 0)


CASES = [
    (BASE.replace(b"one", b"ONE"), BASE.replace(b"five", b"FIVE")),
    (BASE.replace(b"three", b"mine"), BASE.replace(b"three", b"kit")),
    (BASE.replace(b"two\n", b""), BASE.replace(b"four", b"FOUR")),
    (BASE + b"six\n", BASE.replace(b"one", b"zero\none")),
]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize(("ours", "theirs"), CASES)
def test_the_result_equals_git_merge_file_diff3(tmp_path: Path, ours: bytes, theirs: bytes) -> None:
    paths = {name: tmp_path / name for name in ("ours", "base", "theirs")}
    for name, data in (("ours", ours), ("base", BASE), ("theirs", theirs)):
        paths[name].write_bytes(data)
    git = subprocess.run(
        ["git", "merge-file", "--diff3", "-p", "-L", "yours", "-L", "0.1.0", "-L", "0.2.0",
         str(paths["ours"]), str(paths["base"]), str(paths["theirs"])],
        capture_output=True, check=False,
    )  # fmt: skip

    data, conflicts = merge(BASE, ours, theirs)

    assert data == git.stdout
    assert conflicts == git.returncode
