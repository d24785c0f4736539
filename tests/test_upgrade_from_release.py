"""Upgrades from what released 0.1.0 really wrote, with the edits users really make.

tests/fixtures/release-0.1.0/ holds the exact projects the released kit generated (lock and
.session-kit/ included) for four option sets. Each test extracts one, makes twelve kinds of edits,
and upgrades with the kit in this tree. The templates keep changing, so nothing here compares
with fixed new bytes: every user edit must survive, every untouched file must equal what the
installed kit renders for the project's options, conflicts exit 1 with markers, and rollback
restores the edited 0.1.0 project byte for byte.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from session_kit.cli import app
from session_kit.engine.kit import Kit
from session_kit.generate import GenerateRequest, prepare

FIXTURES = Path(__file__).parent / "fixtures" / "release-0.1.0"
PROJECTS = sorted(path.name.removesuffix(".tar.gz") for path in FIXTURES.glob("*.tar.gz"))
PACKAGE = "app/sessions"
VENDOR = ".session-kit/vendor/session/0.1.0"


def _invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def _extract(name: str, into: Path) -> Path:
    root = into / name
    with tarfile.open(FIXTURES / f"{name}.tar.gz") as tar:
        tar.extractall(root, filter="tar")
    return root


def _snapshot(root: Path) -> dict[str, tuple[bytes | None, int]]:
    return {
        p.relative_to(root).as_posix(): (None if p.is_dir() else p.read_bytes(), p.stat().st_mode)
        for p in sorted(root.rglob("*"))
    }


def _render(root: Path) -> dict[str, bytes]:
    """What the installed kit renders for this project's recorded options: the upgrade's "theirs"."""
    return {
        file.path: file.data
        for file in prepare(GenerateRequest(project_dir=root), allow_framework_change=True).rendered
    }


@dataclass
class Edits:
    """The edits made, and how to check each survived."""

    kept_lines: dict[str, list[bytes]] = field(default_factory=dict)  # path -> lines that must still be there
    deleted: list[str] = field(default_factory=list)
    new_files: dict[str, bytes] = field(default_factory=dict)
    crlf: list[str] = field(default_factory=list)
    no_final_newline: list[str] = field(default_factory=list)
    executable: list[str] = field(default_factory=list)
    forced_conflicts: list[str] = field(default_factory=list)

    def touched(self) -> set[str]:
        return {*self.kept_lines, *self.deleted, *self.crlf, *self.no_final_newline, *self.executable}


def _stable_line(base: bytes, new: bytes, wanted: Callable[[bytes], bool] = lambda _: True) -> int | None:
    """Index of a line of `base` well inside a region the new render leaves unchanged, so an edit there
    cannot overlap a kit change (two lines of margin, as the merge groups touching hunks)."""
    a, b = base.splitlines(keepends=True), new.splitlines(keepends=True)
    for block in sorted(SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks(), key=lambda m: -m.size):
        for index in range(block.a + 2, block.a + block.size - 2):
            if wanted(a[index]):
                return index
    return None


def _changed_line(base: bytes, new: bytes) -> int | None:
    """Index of a line of `base` the new render replaces: an edit there must conflict."""
    a, b = base.splitlines(keepends=True), new.splitlines(keepends=True)
    for tag, i1, _i2, _j1, _j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "replace" and a[i1].strip():
            return i1
    return None


def _edit_lines(root: Path, rel: str, edit: Callable[[list[bytes]], list[bytes]]) -> None:
    path = root / rel
    path.write_bytes(b"".join(edit(path.read_bytes().splitlines(keepends=True))))


def _make_edits(root: Path, render: dict[str, bytes], *, conflict: bool) -> Edits:
    edits = Edits()
    base = {rel: (root / VENDOR / rel).read_bytes() for rel in render if (root / VENDOR / rel).is_file()}

    def insert_after(rel: str, new_line: bytes, wanted: Callable[[bytes], bool] = lambda _: True) -> None:
        index = _stable_line(base[rel], render[rel], wanted)
        assert index is not None, f"{rel}: no line the kit leaves alone"
        _edit_lines(root, rel, lambda lines: [*lines[: index + 1], new_line, *lines[index + 1 :]])
        edits.kept_lines.setdefault(rel, []).append(new_line)

    # 1. A new field (a new line in the settings module).
    insert_after(f"{PACKAGE}/settings.py", b"USER_FIELD_ADDED = 'mine'  # user edit: new field\n")
    # 2. A changed default: a number on a line the kit keeps, changed by the user.
    settings = f"{PACKAGE}/settings.py"
    index = _stable_line(base[settings], render[settings], lambda line: re.search(rb"\b\d+\b", line) is not None)
    if index is not None:
        lines = (root / settings).read_bytes().splitlines(keepends=True)
        changed = re.sub(rb"\b(\d+)\b", lambda m: str(int(m.group(1)) + 7).encode(), lines[index], count=1)
        _edit_lines(root, settings, lambda ls: [*ls[:index], changed, *ls[index + 1 :]])
        edits.kept_lines[settings].append(changed)
    # 3. A new route, in the adapter module the user wires routes into.
    adapter = next(
        f"{PACKAGE}/{n}" for n in ("routes.py", "integration.py", "extension.py") if f"{PACKAGE}/{n}" in render
    )
    insert_after(adapter, b"def user_route_added() -> str:  # user edit: new route\n")
    # 4. A deleted generated test.
    test_file = sorted(rel for rel in render if rel.startswith("tests/sessions/test_"))[0]
    (root / test_file).unlink()
    edits.deleted.append(test_file)
    # 5. A new file of the user's own, inside the generated package.
    edits.new_files[f"{PACKAGE}/user_helpers.py"] = b"def helper() -> int:\n    return 1\n"
    (root / f"{PACKAGE}/user_helpers.py").write_bytes(edits.new_files[f"{PACKAGE}/user_helpers.py"])
    # 6. A reformatted function: a signature split after its opening parenthesis.
    manager = f"{PACKAGE}/manager.py"
    index = _stable_line(
        base[manager], render[manager], lambda line: line.lstrip().startswith(b"def ") and b"(" in line
    )
    if index is not None:
        line = (root / manager).read_bytes().splitlines(keepends=True)[index]
        head, _, tail = line.partition(b"(")
        indent = line[: len(line) - len(line.lstrip())]
        split = [head + b"(\n", indent + b"    " + tail.lstrip()]
        _edit_lines(root, manager, lambda ls: [*ls[:index], *split, *ls[index + 1 :]])
        edits.kept_lines[manager] = split
    # 7. CRLF line endings throughout a file (an editor on Windows).
    tokens = f"{PACKAGE}/tokens.py"
    (root / tokens).write_bytes((root / tokens).read_bytes().replace(b"\n", b"\r\n"))
    edits.crlf.append(tokens)
    # 8. The final newline dropped.
    clock = f"{PACKAGE}/clock.py"
    (root / clock).write_bytes((root / clock).read_bytes().rstrip(b"\n"))
    edits.no_final_newline.append(clock)
    # 9. chmod +x on a generated file.
    bootstrap = f"{PACKAGE}/bootstrap.py"
    os.chmod(root / bootstrap, 0o755)
    edits.executable.append(bootstrap)
    # 10. An import added at the top of a module.
    events = f"{PACKAGE}/events.py"
    insert_after(events, b"import textwrap  # user edit: new import\n")
    # 11. Bytes that are not UTF-8 (a Latin-1 comment).
    policy = f"{PACKAGE}/policy.py"
    insert_after(policy, b"# caf\xe9 -- user edit in Latin-1\n")
    # 12. A comment edited on a line the kit keeps.
    errors = f"{PACKAGE}/errors.py"
    index = _stable_line(base[errors], render[errors], lambda line: bool(line.strip()))
    assert index is not None
    edited = (root / errors).read_bytes().splitlines(keepends=True)[index].rstrip(b"\r\n") + b"  # reviewed by us\n"
    _edit_lines(root, errors, lambda ls: [*ls[:index], edited, *ls[index + 1 :]])
    edits.kept_lines[errors] = [edited]

    if conflict:
        # The user rewrote lines the kit changed too: each such file must conflict.
        for rel in sorted(render):
            if rel in edits.touched() or rel not in base or len(edits.forced_conflicts) == 2:
                continue
            index = _changed_line(base[rel], render[rel])
            if index is None:
                continue
            mine = b"USER_CONFLICTING_EDIT = 1  # rewritten by the user\n"
            _edit_lines(root, rel, lambda ls, i=index, m=mine: [*ls[:i], m, *ls[i + 1 :]])
            edits.kept_lines[rel] = [mine]
            edits.forced_conflicts.append(rel)
    return edits


def _check_edits_survived(root: Path, edits: Edits, render: dict[str, bytes], conflicts: set[str]) -> None:
    for rel, lines in edits.kept_lines.items():
        data = (root / rel).read_bytes()
        for line in lines:
            assert line.rstrip(b"\r\n") in data, f"{rel}: the user's line {line!r} was lost"
    for rel in edits.deleted:
        assert not (root / rel).exists(), f"{rel} was deleted by the user and came back"
    for rel, data in edits.new_files.items():
        assert (root / rel).read_bytes() == data
    for rel in edits.crlf:
        data = (root / rel).read_bytes()
        assert data.splitlines(keepends=True)[0].endswith(b"\r\n"), f"{rel} lost its CRLF endings"
    for rel in edits.no_final_newline:
        if rel not in conflicts and not render[rel].endswith(
            (root / VENDOR / rel).read_bytes().splitlines()[-1] + b"\n"
        ):
            continue  # the kit changed the last line: where the merge puts the newline is the kit's line
        if rel not in conflicts:
            assert not (root / rel).read_bytes().endswith(b"\n"), f"{rel} got a final newline back"
    for rel in edits.executable:
        assert (root / rel).stat().st_mode & 0o777 == 0o755, f"{rel} lost its executable bit"


def _check_untouched_files_follow_the_kit(root: Path, edits: Edits, render: dict[str, bytes]) -> None:
    for rel, data in render.items():
        if rel in edits.touched():
            continue
        assert (root / rel).read_bytes() == data, f"{rel} was not edited but differs from the new render"


def _lock(root: Path) -> dict[str, object]:
    return dict(json.loads((root / "session-kit.lock").read_text())["modules"]["session"])


@pytest.mark.parametrize("name", PROJECTS)
def test_the_stored_release_outputs_are_what_0_1_0_wrote(name: str, tmp_path: Path) -> None:
    """The fixtures are whole projects: their lock verifies against their own vendor snapshot."""
    root = _extract(name, tmp_path)
    lock = _lock(root)
    assert lock["version"] == "0.1.0"
    files = lock["files"]
    assert isinstance(files, dict)
    for rel in files:
        assert (root / rel).read_bytes() == (root / VENDOR / rel).read_bytes()


@pytest.mark.parametrize("name", PROJECTS)
def test_upgrade_from_0_1_0_keeps_every_edit_without_conflicts(name: str, tmp_path: Path) -> None:
    root = _extract(name, tmp_path)
    render = _render(root)
    edits = _make_edits(root, render, conflict=False)
    before = _snapshot(root)

    result = _invoke("upgrade", "--json", "--project-dir", root)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["conflicts"] == []
    outcomes = {f["path"]: f["outcome"] for f in report["files"]}
    assert outcomes[edits.deleted[0]] == "kept deleted (you removed it)"
    _check_edits_survived(root, edits, render, set())
    _check_untouched_files_follow_the_kit(root, edits, render)
    assert _lock(root)["version"] == Kit().manifest.version
    assert not list((root / ".session-kit").glob(".staging-*"))

    verified = _invoke("modules", "verify", "--json", "--project-dir", root)
    findings = {(f["path"], f["status"]) for f in json.loads(verified.stdout)["findings"]}
    assert (edits.deleted[0], "missing") in findings  # verify keeps saying the user removed it
    assert json.loads(verified.stdout)["upgradable"] == []

    back = _invoke("rollback", "--project-dir", root)
    assert back.exit_code == 0, back.output
    assert _snapshot(root) == before


@pytest.mark.parametrize("name", PROJECTS)
def test_upgrade_from_0_1_0_with_conflicts_exits_1_then_continues(name: str, tmp_path: Path) -> None:
    root = _extract(name, tmp_path)
    render = _render(root)
    edits = _make_edits(root, render, conflict=True)
    if not edits.forced_conflicts:
        pytest.skip("the installed kit renders no line of these files differently from 0.1.0")
    before = _snapshot(root)

    result = _invoke("upgrade", "--json", "--project-dir", root)
    assert result.exit_code == 1, result.output
    conflicts = set(json.loads(result.stdout)["conflicts"])
    assert set(edits.forced_conflicts) <= conflicts
    for rel in conflicts:
        text = (root / rel).read_bytes()
        assert b"<<<<<<< yours (project)" in text
        assert b"||||||| session 0.1.0 (generated)" in text
        assert f">>>>>>> session {Kit().manifest.version} (new)".encode() in text
    _check_edits_survived(root, edits, render, conflicts)
    assert _lock(root)["version"] == "0.1.0"  # the lock waits for the resolution

    refused = _invoke("upgrade", "--continue", "--project-dir", root)
    assert refused.exit_code == 1
    assert "conflict markers remain" in refused.output
    for rel in conflicts:  # keep the user's side of every region
        text = (root / rel).read_bytes()
        resolved = re.sub(rb"<<<<<<< [^\n]*\n(.*?)\|\|\|\|\|\|\| .*?>>>>>>> [^\n]*\n", rb"\1", text, flags=re.S)
        (root / rel).write_bytes(resolved)
    finished = _invoke("upgrade", "--continue", "--project-dir", root)
    assert finished.exit_code == 0, finished.output
    assert _lock(root)["version"] == Kit().manifest.version
    _check_edits_survived(root, edits, render, conflicts)

    back = _invoke("rollback", "--project-dir", root)
    assert back.exit_code == 0, back.output
    assert _snapshot(root) == before


def test_add_on_a_0_1_0_project_upgrades_and_never_recreates_a_deleted_test(tmp_path: Path) -> None:
    root = _extract("fastapi-default", tmp_path)
    render = _render(root)
    deleted = sorted(rel for rel in render if rel.startswith("tests/sessions/test_"))[0]
    (root / deleted).unlink()
    result = _invoke("add", "module", "session", "--yes", "--project-dir", root)
    assert result.exit_code == 0, result.output
    assert "kept deleted" in result.output
    assert not (root / deleted).exists()
    assert _lock(root)["version"] == Kit().manifest.version


def test_verify_on_a_0_1_0_project_lists_the_upgradable_files(tmp_path: Path) -> None:
    root = _extract("fastapi-default", tmp_path)
    render = _render(root)
    older = sorted(rel for rel, data in render.items() if (root / rel).is_file() and (root / rel).read_bytes() != data)
    result = _invoke("modules", "verify", "--json", "--project-dir", root)
    assert result.exit_code == 0, result.output  # nothing drifted from the lock
    assert older, "the installed kit renders every 0.1.0 file the same"
    assert sorted(json.loads(result.stdout)["upgradable"]) == older
