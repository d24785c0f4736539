"""Planning and writing: what a run decides per file, and that it writes everything or nothing."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import build_file_tree, make_kit, new_project, snapshot, stat_snapshot

from session_kit.engine.kit import KIT_ROOT, Kit
from session_kit.engine.plan import Action
from session_kit.engine.project import default_package, resolve_layout
from session_kit.errors import ApplyError, ProjectError, SpecError
from session_kit.generate import GenerateReport, GenerateRequest, generate

MANAGER = "app/sessions/manager.py"
SETTINGS = "app/sessions/settings.py"
SAMESITE_SETTINGS = {
    "core/settings.py.j2": "# {{ package }}\nSAMESITE = {{ options.cookie_samesite | default('lax') | py }}\n"
}

# The plan of a fresh project with an `app` package, on the default options.
GOLDEN_PLAN = [
    "app/sessions/__init__.py",
    "app/sessions/py.typed",
    "app/sessions/settings.py",
    "app/sessions/errors.py",
    "app/sessions/clock.py",
    "app/sessions/models.py",
    "app/sessions/tokens.py",
    "app/sessions/session.py",
    "app/sessions/manager.py",
    "app/sessions/bootstrap.py",
    "app/sessions/stores/__init__.py",
    "app/sessions/stores/base.py",
    "app/sessions/stores/encrypted.py",
    "app/sessions/stores/memory.py",
    "app/sessions/stores/_support.py",
    "tests/sessions/store_contract.py",
    "tests/sessions/test_session_key_rotation.py",
    "tests/sessions/test_session_encryption.py",
    "app/sessions/transports/__init__.py",
    "app/sessions/transports/base.py",
    "app/sessions/transports/cookie.py",
    "app/sessions/transports/header.py",
    "app/sessions/policy.py",
    "app/sessions/events.py",
    "app/sessions/enrichment.py",
    "app/sessions/testing.py",
    "app/sessions/csrf.py",
    "app/sessions/codec.py",
    "app/sessions/audit.py",
    "app/sessions/asgi.py",
    "app/sessions/middleware.py",
    "app/sessions/dependencies.py",
    "app/sessions/integration.py",
    "tests/sessions/conftest.py",
    "tests/sessions/test_session_lifecycle.py",
    "tests/sessions/test_session_cookies.py",
    "tests/sessions/test_memory_store.py",
    "tests/sessions/test_session_settings.py",
    "tests/sessions/test_session_policies.py",
    "tests/sessions/test_session_transports.py",
    "tests/sessions/test_session_events.py",
    "tests/sessions/test_session_fuzz.py",
    "tests/sessions/test_session_audit.py",
    "tests/sessions/test_session_csrf.py",
]


def _run(project: Path, kit: Kit, *, environ: dict[str, str] | None = None, **changes: Any) -> GenerateReport:
    return generate(GenerateRequest(project_dir=project, kit=kit, environ=environ or {}, **changes))


def _actions(report: GenerateReport) -> dict[str, Action]:
    return {plan.path: plan.action for plan in report.files}


# --- the plan ----------------------------------------------------------------------------------


def test_golden_plan_for_a_fresh_project_with_an_app_package(kit: Kit, project: Path) -> None:
    report = _run(project, kit, dry_run=True)
    assert [(plan.path, plan.action) for plan in report.files] == [(path, Action.CREATE) for path in GOLDEN_PLAN]
    assert (report.package, report.framework, report.status, report.exit_code) == (
        "app.sessions",
        "fastapi",
        "dry run",
        0,
    )


def test_files_are_rendered_with_the_project_context(kit: Kit, project: Path) -> None:
    report = _run(project, kit)
    assert report.status == "created"
    assert (project / MANAGER).read_text() == (
        f'# app.sessions {report.version}: core/manager.py.j2\nTEMPLATE = "core/manager.py.j2"\n'
    )
    written = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    assert {p for p in written if not p.startswith(".session-kit/")} == {
        "app/__init__.py",
        "session-kit.lock",
        *GOLDEN_PLAN,
    }


def test_a_template_is_only_rendered_when_its_condition_holds(kit: Kit, project: Path) -> None:
    memory_only = _actions(_run(project, kit, dry_run=True))
    assert "app/sessions/stores/redis.py" not in memory_only
    assert "tests/sessions/test_redis_store.py" not in memory_only
    both = _actions(_run(project, kit, dry_run=True, assignments=("stores=memory,redis",)))
    assert both["app/sessions/stores/redis.py"] is Action.CREATE
    assert both["tests/sessions/test_redis_store.py"] is Action.CREATE
    redis_only = _actions(_run(project, kit, dry_run=True, assignments=("stores=redis",)))
    assert "app/sessions/stores/sql.py" not in redis_only
    assert "app/sessions/stores/file.py" not in redis_only


def test_two_templates_writing_one_file_are_refused(tmp_path: Path, project: Path) -> None:
    clash = (KIT_ROOT / "module.yaml").read_text() + "  - {template: core/clock.py.j2, output: manager.py}\n"
    kit = make_kit(tmp_path, files={"module.yaml": clash})
    with pytest.raises(SpecError, match=r"core/manager\.py\.j2 and core/clock\.py\.j2 both write manager\.py"):
        _run(project, kit, dry_run=True)


@pytest.mark.parametrize(
    ("files", "package", "source_root"),
    [
        ({"app/__init__.py": ""}, "app.sessions", "."),
        ({"src/shop/__init__.py": ""}, "shop.sessions", "src"),
        ({"src/shop/__init__.py": "", "src/admin/__init__.py": ""}, "sessions", "."),
        ({"app/views.py": ""}, "sessions", "."),  # a folder without __init__.py is not a package
        ({"README.md": ""}, "sessions", "."),
    ],
    ids=["app package", "single src package", "two src packages", "app folder", "nothing"],
)
def test_the_default_package_is_found_from_the_layout(
    tmp_path: Path, files: dict[str, str], package: str, source_root: str
) -> None:
    root = build_file_tree(tmp_path / "project", files)
    assert default_package(root) == package
    layout = resolve_layout(root, None)
    assert (layout.package, layout.source_root) == (package, source_root)


def test_a_src_layout_project_gets_the_package_under_src(tmp_path: Path, kit: Kit) -> None:
    root = build_file_tree(tmp_path / "project", {"src/shop/__init__.py": ""})
    report = _run(root, kit)
    assert report.package == "shop.sessions"
    assert (root / "src/shop/sessions/manager.py").is_file()
    assert (root / "tests/sessions/conftest.py").is_file()


@pytest.mark.parametrize(
    ("package", "reason"),
    [
        ("app.1sessions", "'1sessions' is not a Python identifier"),
        ("app.class", "'class' is not a Python identifier"),
        ("app..sessions", "'' is not a Python identifier"),
        ("../sessions", "is not a Python identifier"),
        ("app-sessions", "is not a Python identifier"),
        ("billing.sessions", "the parent package billing does not exist (no billing/__init__.py)"),
        ("escape.sessions", "outside the project directory"),
    ],
)
def test_bad_package_paths_are_refused_before_anything_is_written(
    tmp_path: Path, kit: Kit, project: Path, package: str, reason: str
) -> None:
    outside = build_file_tree(tmp_path / "elsewhere", {"__init__.py": ""})
    (project / "escape").symlink_to(outside, target_is_directory=True)
    before = snapshot(project)
    with pytest.raises(ProjectError, match=re.escape(reason)) as caught:
        _run(project, kit, package=package)
    assert f"--package {package!r}" in str(caught.value) or "outside the project" in str(caught.value)
    assert snapshot(project) == before
    assert snapshot(outside) == {"__init__.py": b""}


def test_a_project_directory_that_does_not_exist_is_named(tmp_path: Path, kit: Kit) -> None:
    with pytest.raises(ProjectError, match="does not exist"):
        _run(tmp_path / "missing", kit)


# --- re-runs, edits, foreign files -----------------------------------------------------------


def test_a_rerun_is_up_to_date_and_touches_nothing(kit: Kit, project: Path) -> None:
    _run(project, kit)
    before = stat_snapshot(project)
    report = _run(project, kit)
    assert report.status == "up to date"
    assert set(_actions(report).values()) == {Action.UNCHANGED}
    assert report.exit_code == 0
    assert stat_snapshot(project) == before


def test_an_edited_file_is_kept_and_reported(tmp_path: Path, project: Path) -> None:
    kit = make_kit(tmp_path, templates=SAMESITE_SETTINGS)
    _run(project, kit)
    (project / SETTINGS).write_text("# mine\n")

    same = _run(project, kit)
    assert _actions(same)[SETTINGS] is Action.SKIP_MODIFIED
    assert (same.status, same.exit_code) == ("up to date", 0)  # nothing new for it: no reason to fail

    changed = _run(project, kit, assignments=("cookie_samesite=strict",))
    assert _actions(changed)[SETTINGS] is Action.SKIP_MODIFIED
    assert changed.exit_code == 1  # the kit had new content for an edited file
    assert (project / SETTINGS).read_text() == "# mine\n"


def test_force_overwrites_an_edited_file_and_keeps_the_old_copy(tmp_path: Path, project: Path) -> None:
    kit = make_kit(tmp_path, templates=SAMESITE_SETTINGS)
    _run(project, kit)
    (project / SETTINGS).write_text("# mine\n")
    report = _run(project, kit, assignments=("cookie_samesite=strict",), force=True)
    assert _actions(report)[SETTINGS] is Action.OVERWRITE
    assert report.exit_code == 0
    assert (project / SETTINGS).read_text() == '# app.sessions\nSAMESITE = "strict"\n'
    assert (project / f"{SETTINGS}.orig").read_text() == "# mine\n"


def test_a_generated_file_the_user_never_touched_follows_option_changes(tmp_path: Path, project: Path) -> None:
    kit = make_kit(tmp_path, templates=SAMESITE_SETTINGS)
    _run(project, kit)
    report = _run(project, kit, assignments=("cookie_samesite=none",))
    assert (_actions(report)[SETTINGS], report.status) == (Action.UPDATE, "updated")
    assert (project / SETTINGS).read_text().endswith('SAMESITE = "none"\n')
    assert not (project / f"{SETTINGS}.orig").exists()


def test_an_accepted_edit_is_never_overwritten_by_a_rerun(tmp_path: Path, project: Path) -> None:
    """`modules lock --overwrite` makes an edit the baseline; it is still the user's code."""
    from session_kit.engine.state import relock, verify

    kit = make_kit(tmp_path, templates=SAMESITE_SETTINGS)
    _run(project, kit)
    (project / SETTINGS).write_text("# mine, accepted\n")
    (project / "session-kit.lock").write_text(relock(project, "0.0.0", overwrite=True).text())

    rerun = _run(project, kit)
    assert (_actions(rerun)[SETTINGS], rerun.exit_code) == (Action.SKIP_MODIFIED, 0)
    changed = _run(project, kit, assignments=("cookie_samesite=strict",))
    assert (_actions(changed)[SETTINGS], changed.exit_code) == (Action.SKIP_MODIFIED, 1)
    assert (project / SETTINGS).read_text() == "# mine, accepted\n"
    assert verify(project).findings == []


def test_a_foreign_file_in_the_way_refuses_the_whole_run(kit: Kit, project: Path) -> None:
    build_file_tree(project, {MANAGER: "# my own manager\n"})
    before = snapshot(project)
    report = _run(project, kit)
    assert (report.status, report.exit_code) == ("refused", 1)
    assert _actions(report)[MANAGER] is Action.REFUSE
    assert snapshot(project) == before
    assert not (project / ".session-kit").exists()


def test_a_directory_in_the_way_is_refused_even_with_force(kit: Kit, project: Path) -> None:
    (project / MANAGER).mkdir(parents=True)
    before = snapshot(project)
    report = _run(project, kit, force=True)
    assert (report.status, _actions(report)[MANAGER]) == ("refused", Action.REFUSE)
    assert snapshot(project) == before


def test_force_takes_over_a_foreign_file_keeping_it_as_orig(kit: Kit, project: Path) -> None:
    build_file_tree(project, {MANAGER: "# my own manager\n"})
    report = _run(project, kit, force=True)
    assert (_actions(report)[MANAGER], report.status) == (Action.OVERWRITE, "created")
    assert (project / f"{MANAGER}.orig").read_text() == "# my own manager\n"


@pytest.fixture
def read_only(project: Path) -> Iterator[Path]:
    project.chmod(0o555)
    try:
        yield project
    finally:
        project.chmod(0o755)


def test_a_read_only_project_is_refused_and_nothing_is_written(kit: Kit, read_only: Path) -> None:
    before = snapshot(read_only)
    with pytest.raises(ProjectError, match="read-only; nothing was written"):
        _run(read_only, kit)
    assert snapshot(read_only) == before


def test_a_dry_run_writes_nothing_and_shows_a_unified_diff(tmp_path: Path, project: Path) -> None:
    kit = make_kit(tmp_path, templates=SAMESITE_SETTINGS)
    before = stat_snapshot(project)
    fresh = _run(project, kit, dry_run=True)
    assert stat_snapshot(project) == before
    created = next(plan for plan in fresh.files if plan.path == SETTINGS)
    assert created.diff() == (f'--- /dev/null\n+++ b/{SETTINGS}\n@@ -0,0 +1,2 @@\n+# app.sessions\n+SAMESITE = "lax"\n')
    assert fresh.diff().count("--- /dev/null\n") == len(GOLDEN_PLAN)

    _run(project, kit)
    (project / SETTINGS).write_text("# app.sessions\nSAMESITE = 'lax'  # mine")
    before = stat_snapshot(project)
    forced = _run(project, kit, dry_run=True, force=True, assignments=("cookie_samesite=strict",))
    assert stat_snapshot(project) == before
    assert forced.diff() == (
        f"--- a/{SETTINGS}\n+++ b/{SETTINGS}\n@@ -1,2 +1,2 @@\n # app.sessions\n"
        "-SAMESITE = 'lax'  # mine\n\\ No newline at end of file\n+SAMESITE = \"strict\"\n"
    )


# --- all or nothing ----------------------------------------------------------------------------


def _every_fault(project: Path, kit: Kit, **changes: object) -> int:
    """Fail the run at step 1, 2, ... until it succeeds; each failure must leave the project as it was."""
    before = snapshot(project)
    modes = {rel: (project / rel).stat().st_mode for rel in before}
    step = 1
    while True:
        try:
            _run(project, kit, environ={"SESSION_KIT_FAULT_STEP": str(step)}, **changes)
        except ApplyError as exc:
            message = str(exc)
        else:
            return step - 1
        assert f"fault injected at write step {step}" in message
        assert snapshot(project) == before, f"a fault at step {step} left the project changed"
        assert {rel: (project / rel).stat().st_mode for rel in before} == modes
        step += 1


def test_a_fault_at_any_step_of_a_first_run_leaves_the_project_untouched(kit: Kit, project: Path) -> None:
    failed_steps = _every_fault(project, kit)
    assert failed_steps > 2 * len(GOLDEN_PLAN)  # every file and its vendor copy is a step of its own
    assert (project / MANAGER).is_file()


def test_a_fault_at_any_step_of_a_forced_update_restores_every_byte(tmp_path: Path, project: Path) -> None:
    kit = make_kit(tmp_path, templates=SAMESITE_SETTINGS)
    _run(project, kit)
    (project / SETTINGS).write_text("# mine\n")
    os.chmod(project / SETTINGS, 0o600)
    (project / MANAGER).unlink()
    failed_steps = _every_fault(project, kit, force=True, assignments=("cookie_samesite=strict",))
    assert failed_steps >= 6  # settings.py, its .orig, manager.py, two vendor copies, the record, the lock
    assert (project / f"{SETTINGS}.orig").read_text() == "# mine\n"
    assert (project / SETTINGS).stat().st_mode & 0o777 == 0o600


def test_a_bad_fault_step_is_a_project_error(kit: Kit, project: Path) -> None:
    before = snapshot(project)
    with pytest.raises(ProjectError, match="SESSION_KIT_FAULT_STEP='soon' must be an integer"):
        _run(project, kit, environ={"SESSION_KIT_FAULT_STEP": "soon"})
    assert snapshot(project) == before


# --- the kit's own tree ------------------------------------------------------------------------


def test_the_generator_refuses_to_write_into_the_kit(kit: Kit) -> None:
    inner = new_project(kit.root / "example")
    before = snapshot(kit.root)
    for target in (kit.root, inner):
        with pytest.raises(ProjectError, match="inside session-kit's own source tree"):
            _run(target, kit)
    assert snapshot(kit.root) == before


def test_the_generator_refuses_outputs_that_land_in_a_kit_inside_the_project(tmp_path: Path, project: Path) -> None:
    kit = make_kit(project, name="vendored_kit")
    before = snapshot(project)
    with pytest.raises(ProjectError, match="would be written into session-kit's own tree"):
        _run(project, kit, package="vendored_kit.sessions")
    assert snapshot(project) == before


def test_the_real_kit_refuses_its_own_tree() -> None:
    with pytest.raises(ProjectError, match="own source tree"):
        generate(GenerateRequest(project_dir=Kit().root, environ={}))
