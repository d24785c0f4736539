"""Upgrades never lose a user's edit: scenarios, all-or-nothing, rollback, and a property test."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from helpers import referenced_templates
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kitbuilder import build_kit, new_project, snapshot, stand_in_body

from session_kit.engine.kit import Kit
from session_kit.engine.state import verify
from session_kit.engine.upgrade import Outcome
from session_kit.errors import ApplyError, ProjectError, RefusedOverwrite
from session_kit.generate import GenerateRequest, generate
from session_kit.upgrade import continue_upgrade, diff, pending_conflicts, rollback, upgrade

MANAGER = "core/manager.py.j2"
SETTINGS = "core/settings.py.j2"
MANAGER_PATH = "app/sessions/manager.py"
SETTINGS_PATH = "app/sessions/settings.py"


def _changed(template: str, **replacements: str) -> str:
    body = stand_in_body(template)
    for old, new in replacements.items():
        body = body.replace(f"line {old} of {template}\n", new)
    return body


@pytest.fixture
def kit_v1(tmp_path: Path) -> Kit:
    return build_kit(tmp_path / "kit-0.1.0")


@pytest.fixture
def kit_v2(tmp_path: Path) -> Kit:
    bodies = {
        MANAGER: _changed(MANAGER, **{"10": "line 10 of the manager, fixed in 0.2.0\n"}),
        SETTINGS: _changed(SETTINGS, **{"3": "line 3 of settings, hardened in 0.2.0\n"}),
    }
    return build_kit(tmp_path / "kit-0.2.0", version="0.2.0", bodies=bodies)


@pytest.fixture
def project(tmp_path: Path, kit_v1: Kit) -> Path:
    root = new_project(tmp_path / "project")
    report = generate(GenerateRequest(project_dir=root, kit=kit_v1))
    assert report.exit_code == 0
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _lock_version(root: Path) -> str:
    return str(json.loads((root / "session-kit.lock").read_text())["modules"]["session"]["version"])


def test_clean_upgrade_replaces_untouched_files_and_moves_the_lock(project: Path, kit_v2: Kit) -> None:
    report = upgrade(GenerateRequest(project_dir=project, kit=kit_v2))
    assert report.exit_code == 0
    outcomes = {f.path: f.outcome for f in report.files}
    assert outcomes[MANAGER_PATH] is Outcome.REPLACE
    assert "fixed in 0.2.0" in (project / MANAGER_PATH).read_text()
    assert _lock_version(project) == "0.2.0"
    assert (project / ".session-kit/vendor/session/0.2.0" / MANAGER_PATH).is_file()
    assert verify(project).findings == []
    assert any("0.1.0" in note and "0.2.0" in note for note in report.notes)
    assert any(note.startswith("changelog:\n## 0.2.0") for note in report.notes)  # changelog entries in between
    assert any(note.startswith("migration notes:\n## 0.2.0") for note in report.notes)  # migration notes


def test_user_edit_far_from_the_template_change_merges_cleanly(project: Path, kit_v2: Kit) -> None:
    _edit(project / MANAGER_PATH, f"line 2 of {MANAGER}\n", "line 2, tuned by the user\n")
    report = upgrade(GenerateRequest(project_dir=project, kit=kit_v2))
    assert report.exit_code == 0
    assert {f.path: f.outcome for f in report.files}[MANAGER_PATH] is Outcome.MERGED
    text = (project / MANAGER_PATH).read_text()
    assert "line 2, tuned by the user" in text
    assert "fixed in 0.2.0" in text
    assert [f.path for f in verify(project).findings] == [MANAGER_PATH]  # still the user's edit


def test_same_line_conflict_gets_markers_exit_1_and_blocks_continue(project: Path, kit_v2: Kit) -> None:
    _edit(project / SETTINGS_PATH, f"line 3 of {SETTINGS}\n", "line 3, the user's way\n")
    report = upgrade(GenerateRequest(project_dir=project, kit=kit_v2))
    assert report.exit_code == 1
    assert report.conflicts == [SETTINGS_PATH]
    text = (project / SETTINGS_PATH).read_text()
    assert "<<<<<<< yours (project)\nline 3, the user's way\n" in text
    assert "||||||| session 0.1.0 (generated)\n" in text
    assert "=======\nline 3 of settings, hardened in 0.2.0\n>>>>>>> session 0.2.0 (new)\n" in text
    assert _lock_version(project) == "0.1.0"  # not moved while a conflict is open
    with pytest.raises(RefusedOverwrite, match="conflict markers remain"):
        continue_upgrade(project)
    assert pending_conflicts(project) == [SETTINGS_PATH]
    with pytest.raises(RefusedOverwrite):
        upgrade(GenerateRequest(project_dir=project, kit=kit_v2))

    resolved = re.sub(r"<<<<<<< .*?\n(.*?)\|\|\|\|\|\|\| .*?>>>>>>> [^\n]*\n", r"\1", text, flags=re.S)
    (project / SETTINGS_PATH).write_text(resolved)
    assert continue_upgrade(project) == [SETTINGS_PATH]
    assert _lock_version(project) == "0.2.0"
    assert pending_conflicts(project) == []


def test_a_generated_file_the_user_deleted_stays_deleted(project: Path, kit_v2: Kit) -> None:
    (project / MANAGER_PATH).unlink()
    report = upgrade(GenerateRequest(project_dir=project, kit=kit_v2))
    assert {f.path: f.outcome for f in report.files}[MANAGER_PATH] is Outcome.DELETED_BY_USER
    assert not (project / MANAGER_PATH).exists()
    assert [(f.path, f.status) for f in verify(project).findings] == [(MANAGER_PATH, "missing")]


def test_option_change_via_set_on_a_modified_project(tmp_path: Path) -> None:
    bodies = {SETTINGS: stand_in_body(SETTINGS) + "SAMESITE = {{ options.cookie_samesite | default('lax') | py }}\n"}
    kit = build_kit(tmp_path / "kit", bodies=bodies)
    root = new_project(tmp_path / "project")
    generate(GenerateRequest(project_dir=root, kit=kit))
    _edit(root / SETTINGS_PATH, f"line 1 of {SETTINGS}\n", "line 1, edited\n")
    report = upgrade(GenerateRequest(project_dir=root, kit=kit, assignments=("cookie_samesite=strict",)))
    assert report.exit_code == 0
    text = (root / SETTINGS_PATH).read_text()
    assert 'SAMESITE = "strict"' in text
    assert "line 1, edited" in text
    lock = json.loads((root / "session-kit.lock").read_text())
    assert lock["modules"]["session"]["options"]["cookie_samesite"] == "strict"


def test_upgrade_then_rollback_restores_every_byte(project: Path, kit_v2: Kit) -> None:
    _edit(project / MANAGER_PATH, f"line 2 of {MANAGER}\n", "user line\n")
    before = snapshot(project)
    upgrade(GenerateRequest(project_dir=project, kit=kit_v2))
    assert snapshot(project) != before
    entry = rollback(project)
    assert (entry.from_version, entry.to_version) == ("0.1.0", "0.2.0")
    assert snapshot(project) == before


def test_two_upgrades_in_a_row_then_two_rollbacks(project: Path, kit_v2: Kit, tmp_path: Path) -> None:
    v1_state = snapshot(project)
    upgrade(GenerateRequest(project_dir=project, kit=kit_v2))
    v2_state = snapshot(project)
    bodies = {MANAGER: _changed(MANAGER, **{"10": "line 10, rewritten in 0.3.0\n"})}
    kit_v3 = build_kit(tmp_path / "kit-0.3.0", version="0.3.0", bodies=bodies)
    report = upgrade(GenerateRequest(project_dir=project, kit=kit_v3))
    assert (report.from_version, report.to_version) == ("0.2.0", "0.3.0")
    assert "rewritten in 0.3.0" in (project / MANAGER_PATH).read_text()
    assert _lock_version(project) == "0.3.0"
    rollback(project)
    assert snapshot(project) == v2_state
    rollback(project)
    assert snapshot(project) == v1_state


def test_dry_run_writes_nothing(project: Path, kit_v2: Kit) -> None:
    before = snapshot(project)
    report = upgrade(GenerateRequest(project_dir=project, kit=kit_v2, dry_run=True))
    assert "+line 10 of the manager, fixed in 0.2.0" in report.diff()
    assert snapshot(project) == before


def test_interrupted_upgrade_leaves_the_old_or_the_new_state(project: Path, kit_v2: Kit, tmp_path: Path) -> None:
    _edit(project / MANAGER_PATH, f"line 2 of {MANAGER}\n", "user line\n")
    before = snapshot(project)
    finished = tmp_path / "finished"
    shutil.copytree(project, finished)
    upgrade(GenerateRequest(project_dir=finished, kit=kit_v2))
    after = {k: v for k, v in snapshot(finished).items() if not k.startswith(".session-kit/history/")}
    step = 1
    while True:
        try:
            upgrade(GenerateRequest(project_dir=project, kit=kit_v2, environ={"SESSION_KIT_FAULT_STEP": str(step)}))
        except ApplyError:
            assert snapshot(project) == before, f"fault at step {step} left a half-written project"
            step += 1
            continue
        break
    assert step > 3  # the upgrade really has several steps, each tried
    assert {k: v for k, v in snapshot(project).items() if not k.startswith(".session-kit/history/")} == after


def test_new_file_with_a_user_file_in_the_way_is_written_beside_it(project: Path, tmp_path: Path) -> None:
    kit = build_kit(tmp_path / "kit-0.2.0", version="0.2.0")
    kit.manifest.templates  # noqa: B018 - load before editing the copy's module.yaml
    manifest = kit.root / "module.yaml"
    manifest.write_text(manifest.read_text() + "  - {template: core/extra.py.j2, output: extra.py}\n")
    (kit.root / "templates/core/extra.py.j2").write_text("EXTRA = 1\n")
    (project / "app/sessions/extra.py").write_text("mine = True\n")
    report = upgrade(GenerateRequest(project_dir=project, kit=Kit(kit.root)))
    outcome = {f.path: f for f in report.files}["app/sessions/extra.py"]
    assert outcome.outcome is Outcome.BESIDE
    assert (project / "app/sessions/extra.py").read_text() == "mine = True\n"
    assert (project / "app/sessions/extra.py.new").read_text() == "EXTRA = 1\n"


def test_dropped_files_are_removed_only_when_unmodified(project: Path, tmp_path: Path) -> None:
    kit = build_kit(tmp_path / "kit-0.2.0", version="0.2.0")
    manifest = kit.root / "module.yaml"
    lines = [
        ln
        for ln in manifest.read_text().splitlines(keepends=True)
        if "core/clock.py.j2" not in ln and "core/tokens.py.j2" not in ln
    ]
    manifest.write_text("".join(lines))
    for name in ("clock", "tokens"):
        (kit.root / f"templates/core/{name}.py.j2").unlink()
    _edit(project / "app/sessions/tokens.py", "line 0 of", "user-owned line 0 of")
    report = upgrade(GenerateRequest(project_dir=project, kit=Kit(kit.root)))
    outcomes = {f.path: f.outcome for f in report.files}
    assert outcomes["app/sessions/clock.py"] is Outcome.REMOVE
    assert outcomes["app/sessions/tokens.py"] is Outcome.KEEP_DROPPED
    assert not (project / "app/sessions/clock.py").exists()
    assert "user-owned" in (project / "app/sessions/tokens.py").read_text()
    lock = json.loads((project / "session-kit.lock").read_text())
    assert "app/sessions/tokens.py" not in lock["modules"]["session"]["files"]


def test_line_endings_final_newline_modes_and_binary_files_survive(project: Path, kit_v2: Kit) -> None:
    manager = project / MANAGER_PATH
    crlf = manager.read_bytes().replace(b"\n", b"\r\n").replace(f"line 2 of {MANAGER}".encode(), b"crlf user line")
    manager.write_bytes(crlf)
    settings_file = project / SETTINGS_PATH
    settings_file.write_bytes(settings_file.read_bytes().rstrip(b"\n") + b"\n# no final newline")
    os.chmod(settings_file, 0o600)
    blob = project / "app/sessions/legacy.dat"
    blob.write_bytes(b"\xff\xfe latin-1 \xe9\x00")
    upgrade(GenerateRequest(project_dir=project, kit=kit_v2))
    merged = manager.read_bytes()
    assert b"crlf user line\r\n" in merged
    assert b"\r\nline 3 of" in merged  # CRLF kept around the merge
    text = settings_file.read_bytes()
    assert text.endswith(b"# no final newline")
    assert b"hardened in 0.2.0" in text
    assert settings_file.stat().st_mode & 0o777 == 0o600
    assert blob.read_bytes() == b"\xff\xfe latin-1 \xe9\x00"


def test_nothing_outside_the_project_is_touched(project: Path, kit_v2: Kit, tmp_path: Path) -> None:
    outside = tmp_path / "neighbour"
    outside.mkdir()
    (outside / "keep.txt").write_text("untouched")
    before = snapshot(outside)
    kit_before = snapshot(kit_v2.root)
    upgrade(GenerateRequest(project_dir=project, kit=kit_v2))
    rollback(project)
    assert snapshot(outside) == before
    assert snapshot(kit_v2.root) == kit_before


def test_diff_shows_what_an_upgrade_would_change(project: Path, kit_v2: Kit) -> None:
    _edit(project / MANAGER_PATH, f"line 2 of {MANAGER}\n", "user line\n")
    by_path = {d.path: d for d in diff(GenerateRequest(project_dir=project, kit=kit_v2))}
    assert by_path[MANAGER_PATH].status == "differs"
    assert "-user line" in by_path[MANAGER_PATH].diff
    assert "+line 10 of the manager, fixed in 0.2.0" in by_path[MANAGER_PATH].diff
    assert by_path["app/sessions/clock.py"].status == "same"


# --- property: random user edits x random template changes ------------------------------------

EDITABLE = [MANAGER, SETTINGS, "core/tokens.py.j2", "core/models.py.j2"]
LINES = 12


@st.composite
def _changes(draw: st.DrawFn, tag: str) -> dict[str, list[tuple[str, int]]]:
    """Per template: a list of (operation, line) with operation in change/insert/delete."""
    files = draw(st.lists(st.sampled_from(EDITABLE), unique=True, max_size=len(EDITABLE)))
    ops = st.tuples(st.sampled_from(["change", "insert", "delete"]), st.integers(0, LINES - 1))
    return {name: draw(st.lists(ops, min_size=1, max_size=3, unique_by=lambda op: op[1])) for name in files}


def _apply_ops(lines: list[str], ops: list[tuple[str, int]], tag: str, name: str) -> tuple[list[str], list[str]]:
    """Apply line operations from the bottom up; return the new lines and the lines introduced."""
    introduced = []
    out = list(lines)
    for number, (op, index) in enumerate(sorted(ops, key=lambda o: -o[1])):
        line = f"{tag} {number} in {name}\n"
        if op == "change":
            out[index] = line
            introduced.append(line)
        elif op == "insert":
            out.insert(index, line)
            introduced.append(line)
        else:
            del out[index]
    return out, introduced


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kit_ops=_changes("kit"),
    user_ops=_changes("user"),
    deleted=st.lists(st.sampled_from(EDITABLE), unique=True, max_size=1),
    add_file=st.booleans(),
)
def test_random_edits_never_lose_a_user_line_and_apply_every_untouched_kit_change(
    tmp_path_factory: pytest.TempPathFactory,
    kit_ops: dict[str, list[tuple[str, int]]],
    user_ops: dict[str, list[tuple[str, int]]],
    deleted: list[str],
    add_file: bool,
) -> None:
    base_dir = tmp_path_factory.mktemp("prop")
    kit_v1 = build_kit(base_dir / "kit1")
    header = "# {{ package }}: "
    kit_bodies: dict[str, str] = {}
    kit_lines: dict[str, list[str]] = {}
    for name, ops in kit_ops.items():
        body_lines = stand_in_body(name).splitlines(keepends=True)
        new_lines, introduced = _apply_ops(body_lines[1:], ops, "kit", name)
        kit_bodies[name] = header + name + "\n" + "".join(new_lines)
        kit_lines[name] = introduced
    kit_v2 = build_kit(base_dir / "kit2", version="0.2.0", bodies=kit_bodies)
    root = new_project(base_dir / "project")
    generate(GenerateRequest(project_dir=root, kit=kit_v1))

    paths = {name: f"app/sessions/{Path(name).name.removesuffix('.j2')}" for name in EDITABLE}
    user_lines: dict[str, list[str]] = {}
    for name, ops in user_ops.items():
        target = root / paths[name]
        lines = target.read_text().splitlines(keepends=True)
        new_lines, introduced = _apply_ops(lines[1:], ops, "user", name)
        target.write_text(lines[0] + "".join(new_lines))
        user_lines[name] = introduced
    for name in deleted:
        (root / paths[name]).unlink()
    if add_file:
        (root / "app/sessions/mine.py").write_text("user file\n")

    report = upgrade(GenerateRequest(project_dir=root, kit=kit_v2))
    conflicts = set(report.conflicts)
    assert report.exit_code == (1 if conflicts else 0)
    for name in EDITABLE:
        path = paths[name]
        target = root / path
        if name in deleted:
            assert not target.exists()
            continue
        text = target.read_text()
        for line in user_lines.get(name, []):
            assert line in text, f"user line lost from {path}"
        for line in kit_lines.get(name, []):
            assert line in text, f"kit change not applied to {path}"
        assert ("<<<<<<< " in text) == (path in conflicts)
        if name not in user_ops:
            expected = kit_bodies.get(name, stand_in_body(name)).replace("{{ package }}", "app.sessions")
            assert text == expected
    if add_file:
        assert (root / "app/sessions/mine.py").read_text() == "user file\n"
    assert all(t in {paths[n] for n in EDITABLE} for t in conflicts)
    assert set(referenced_templates(kit_v2))  # the kit copy is complete


def test_a_project_from_a_newer_kit_is_not_downgraded(tmp_path: Path, kit_v1: Kit, kit_v2: Kit) -> None:
    root = new_project(tmp_path / "newer")
    generate(GenerateRequest(project_dir=root, kit=kit_v2))
    before = snapshot(root)
    for action in (generate, upgrade):
        with pytest.raises(ProjectError, match=r"0\.2\.0, newer than the installed kit's 0\.1\.0"):
            action(GenerateRequest(project_dir=root, kit=kit_v1))
    assert snapshot(root) == before


def test_add_with_a_changed_option_keeps_the_merge_base_of_an_edited_file(tmp_path: Path) -> None:
    bodies = {SETTINGS: stand_in_body(SETTINGS) + "SAMESITE = {{ options.cookie_samesite | default('lax') | py }}\n"}
    kit = build_kit(tmp_path / "kit", bodies=bodies)
    root = new_project(tmp_path / "project")
    generate(GenerateRequest(project_dir=root, kit=kit))
    _edit(root / SETTINGS_PATH, f"line 1 of {SETTINGS}\n", "line 1, edited\n")
    report = generate(GenerateRequest(project_dir=root, kit=kit, assignments=("cookie_samesite=strict",)))
    assert report.exit_code == 1  # the edited file was not given the new value
    assert 'SAMESITE = "lax"' in (root / SETTINGS_PATH).read_text()
    # The base is still the old render, so an upgrade brings the change in without losing the edit.
    upgraded = upgrade(GenerateRequest(project_dir=root, kit=kit))
    assert upgraded.exit_code == 0
    text = (root / SETTINGS_PATH).read_text()
    assert 'SAMESITE = "strict"' in text
    assert "line 1, edited" in text
