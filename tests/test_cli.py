"""The `session-kit` command: exit codes, messages without tracebacks, --json, and every --help."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from helpers import build_file_tree, line_of, make_kit, snapshot
from typer.testing import CliRunner, Result

from session_kit.cli import app
from session_kit.engine.kit import Kit
from session_kit.engine.vet import vet
from session_kit.frameworks import PLUGINS
from session_kit.generate import GenerateRequest, generate

MANAGER = "app/sessions/manager.py"


def _invoke(*args: str | Path) -> Result:
    # A wide terminal keeps rich tables from wrapping names mid-word.
    return CliRunner().invoke(app, [str(arg) for arg in args], env={"COLUMNS": "200"})


def _assert_exit(result: Result, code: int, *texts: str) -> None:
    """The exit code, the expected words, and never a traceback."""
    assert result.exit_code == code, result.output
    if code:
        assert isinstance(result.exception, SystemExit), result.exception
    else:
        assert result.exception is None, result.exception
    assert "Traceback" not in result.output
    for text in texts:
        assert text in result.output, result.output


@pytest.fixture
def generated(kit: Kit, project: Path) -> Path:
    generate(GenerateRequest(project_dir=project, kit=kit, environ={}))
    return project


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path under `command` (typer vendors click, so groups are found by their `commands`)."""
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


ALL_COMMANDS = list(_commands(typer.main.get_command(app)))


def test_every_command_is_reached_by_the_help_test() -> None:
    names = {" ".join(path) for path in ALL_COMMANDS}
    assert {"add module", "modules list", "modules lock", "modules verify", "modules vet", "upgrade"} <= names


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda path: " ".join(path) or "session-kit")
def test_help_works_for_every_command(path: tuple[str, ...]) -> None:
    result = _invoke(*path, "--help")
    _assert_exit(result, 0, "Usage:")


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda path: " ".join(path) or "session-kit")
def test_help_shows_no_type_beside_a_flag_and_names_each_value(path: tuple[str, ...]) -> None:
    output = _invoke(*path, "--help").output
    for typed in ("<bool>", "<str>", "<path>", "<int>"):
        assert typed not in output, f"{' '.join(path)} --help shows {typed}"
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    for param in command.params:
        if param.param_type_name == "option" and not param.is_flag:
            assert param.metavar, f"{' '.join(path)}: {param.opts[0]} takes a value but names none"
            assert param.metavar in output


def test_add_module_help_names_the_real_frameworks_and_every_option() -> None:
    output = " ".join(_invoke("add", "module", "--help").output.split())  # rich wraps long lines
    for framework in PLUGINS:
        assert framework in output
    for metavar in ("--framework NAME", "--project-dir DIR", "--package NAME", "--answers FILE", "--set KEY=VALUE"):
        assert " ".join(metavar.split()) in " ".join(output.replace("│", " ").split())
    for option in Kit().options.options:
        listed = f"{option.name} ({', '.join(option.choices or ('true', 'false'))}"
        assert listed in output, f"add module --help does not list {listed})"


def test_version_flag_prints_the_package_version() -> None:
    from session_kit import __version__

    _assert_exit(_invoke("--version"), 0, f"session-kit {__version__}")


# --- add module (the real kit and its templates) ----------------------------------------------


def test_add_module_creates_files_and_a_rerun_is_up_to_date(project: Path) -> None:
    result = _invoke("add", "module", "session", "--yes", "--project-dir", project)
    _assert_exit(result, 0, MANAGER, "create", "pip install", "Next steps")
    assert (project / MANAGER).is_file()
    _assert_exit(_invoke("add", "module", "session", "--yes", "--project-dir", project), 0, "up to date")


def test_add_module_json_report_parses(project: Path) -> None:
    result = _invoke("add", "module", "session", "--json", "--dry-run", "--project-dir", project)
    _assert_exit(result, 0)
    report = json.loads(result.stdout)
    assert (report["status"], report["dry_run"], report["exit_code"]) == ("dry run", True, 0)
    assert {"path": MANAGER, "action": "create", "blocking": False} in report["files"]
    assert f"+++ b/{MANAGER}" in report["diff"]
    assert not (project / MANAGER).exists()


def test_a_foreign_file_in_the_way_exits_1_and_writes_nothing(project: Path) -> None:
    build_file_tree(project, {MANAGER: "# mine\n"})
    before = snapshot(project)
    result = _invoke("add", "module", "session", "--yes", "--project-dir", project)
    _assert_exit(result, 1, "refused", "nothing was written")
    assert snapshot(project) == before


def test_an_unknown_module_exits_2_listing_the_modules(project: Path) -> None:
    result = _invoke("add", "module", "billing", "--yes", "--project-dir", project)
    _assert_exit(result, 2, "unknown module 'billing'; available modules: session")


def test_an_unknown_framework_exits_2_listing_the_supported_ones(project: Path) -> None:
    result = _invoke("add", "module", "session", "--framework", "django", "--yes", "--project-dir", project)
    _assert_exit(
        result, 2, "framework 'django' is not supported; supported frameworks: fastapi, flask, litestar, starlette"
    )


def test_an_invalid_set_value_exits_2_saying_what_is_allowed(project: Path) -> None:
    before = snapshot(project)
    result = _invoke("add", "module", "session", "--yes", "--set", "audit=syslog", "--project-dir", project)
    _assert_exit(result, 2, "'syslog' is not allowed for audit; expected one of: none, logger, sql, metrics")
    result = _invoke("add", "module", "session", "--yes", "--set", "ttl_seconds=soon", "--project-dir", project)
    _assert_exit(result, 2, "'soon' is not allowed for ttl_seconds; expected a whole number of seconds", "SESSION_TTL")
    assert snapshot(project) == before


def test_a_former_option_becomes_the_generated_default_with_a_notice(project: Path) -> None:
    args = ("add", "module", "session", "--yes", "--set", "ttl_seconds=3600", "--project-dir", project)
    result = _invoke(*args, "--set", "cookie_samesite=lax", "--json")
    _assert_exit(result, 0)
    report = json.loads(result.output)
    notes = " ".join(report["notes"])
    assert "ttl_seconds=3600 (from --set) is a run-time setting now" in notes
    assert "DEFAULT_TTL" in notes
    assert "SESSION_TTL changes it at run time" in notes
    assert "cookie_samesite is a run-time setting now and 'lax' is already its default" in notes
    assert "DEFAULT_TTL = timedelta(hours=1)" in (project / "app/sessions/settings.py").read_text()
    # The lock keeps the value, so the next upgrade renders it again instead of the fixed default.
    lock = json.loads((project / "session-kit.lock").read_text())
    assert lock["modules"]["session"]["options"]["ttl_seconds"] == 3600
    assert "cookie_samesite" not in lock["modules"]["session"]["options"]


def test_an_unknown_set_key_exits_2_with_the_closest_name(project: Path) -> None:
    result = _invoke("add", "module", "session", "--yes", "--set", "ttl=900", "--project-dir", project)
    _assert_exit(result, 2, "unknown option (did you mean 'ttl_seconds'?)")


def test_a_malformed_answers_file_exits_2_with_file_and_line(tmp_path: Path, project: Path) -> None:
    text = "ttl_seconds: 900\ncookie_samesite: lax: strict\n"
    answers = build_file_tree(tmp_path, {"answers.yaml": text}) / "answers.yaml"
    result = _invoke("add", "module", "session", "--yes", "--answers", answers, "--project-dir", project)
    _assert_exit(result, 2, f"{answers}:{line_of(text, 'lax: strict')}: invalid YAML")


def test_a_missing_project_directory_exits_2(tmp_path: Path) -> None:
    result = _invoke("add", "module", "session", "--yes", "--project-dir", tmp_path / "nope")
    _assert_exit(result, 2, "does not exist")


def test_a_broken_hooks_file_exits_2_naming_it(project: Path) -> None:
    build_file_tree(project, {"session_kit_hooks.py": "raise RuntimeError('half-written hook')\n"})
    result = _invoke("add", "module", "session", "--yes", "--project-dir", project)
    _assert_exit(result, 2, "session_kit_hooks.py", "RuntimeError: half-written hook")


# --- modules list / verify / lock --------------------------------------------------------------


def test_modules_list_shows_name_version_and_frameworks() -> None:
    manifest = Kit().manifest
    result = _invoke("modules", "list")
    frameworks = [f"{name} {spec}" for name, spec in manifest.frameworks.items()]
    _assert_exit(result, 0, manifest.name, manifest.version, *frameworks)


def test_modules_list_json_parses() -> None:
    result = _invoke("modules", "list", "--json")
    _assert_exit(result, 0)
    (row,) = json.loads(result.stdout)
    manifest = Kit().manifest
    assert (row["module"], row["version"], row["frameworks"]) == (manifest.name, manifest.version, manifest.frameworks)


def test_verify_exits_0_on_a_clean_project_and_1_on_drift(generated: Path) -> None:
    _assert_exit(_invoke("modules", "verify", "--project-dir", generated), 0, "verified")
    (generated / MANAGER).write_text("# edited\n")
    _assert_exit(_invoke("modules", "verify", "--project-dir", generated), 1, MANAGER, "modified")


def test_verify_json_lists_the_findings(generated: Path) -> None:
    (generated / MANAGER).unlink()
    result = _invoke("modules", "verify", "--json", "--project-dir", generated)
    _assert_exit(result, 1)
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["findings"] == [{"path": MANAGER, "status": "missing", "module": "session"}]


def test_verify_without_a_lock_exits_2(project: Path) -> None:
    _assert_exit(_invoke("modules", "verify", "--project-dir", project), 2, "session-kit.lock not found")


def test_modules_lock_refuses_an_existing_lock_without_overwrite(generated: Path) -> None:
    before = snapshot(generated)
    _assert_exit(_invoke("modules", "lock", "--project-dir", generated), 1, "pass --overwrite")
    assert snapshot(generated) == before


def test_modules_lock_overwrite_accepts_edits_so_verify_passes(generated: Path) -> None:
    (generated / MANAGER).write_text("# edited\n")
    _assert_exit(_invoke("modules", "lock", "--overwrite", "--project-dir", generated), 0, "locked")
    _assert_exit(_invoke("modules", "verify", "--project-dir", generated), 0, "verified")


def test_modules_lock_rebuilds_a_deleted_lock_from_the_vendor_record(generated: Path) -> None:
    original = (generated / "session-kit.lock").read_text()
    (generated / "session-kit.lock").unlink()
    _assert_exit(_invoke("modules", "lock", "--project-dir", generated), 0, "locked")
    assert (generated / "session-kit.lock").read_text() == original
    _assert_exit(_invoke("modules", "verify", "--project-dir", generated), 0)


# --- modules vet -------------------------------------------------------------------------------


def test_vet_passes_on_the_real_kit() -> None:
    """Needs the real templates and docs; it is the gate they must pass."""
    _assert_exit(_invoke("modules", "vet"), 0, "ok")


def test_vet_passes_on_a_complete_test_kit(kit: Kit) -> None:
    report = vet(kit)
    assert report.problems == []
    assert any("every selected template renders and compiles with the defaults" in line for line in report.passed)


def test_vet_collects_every_problem_of_a_broken_kit(tmp_path: Path) -> None:
    templates = {
        "core/clock.py.j2": "def broken(:\n",
        "core/models.py.j2": "X = {{ options.no_such_option | py }}\n",
        "core/orphan.py.j2": "X = 1\n",
    }
    kit = make_kit(tmp_path, templates=templates)
    (kit.root / "docs/monitoring.md").write_text("")
    (kit.root / "__init__.py").write_text('__version__ = "9.9.9"\n')
    report = vet(Kit(kit.root))
    assert report.exit_code == 1
    problems = "\n".join(report.problems)
    for problem in (
        "versions disagree",
        "documentation.monitoring: docs/monitoring.md is missing or empty",
        "fastapi: core/clock.py.j2 renders to invalid Python: invalid syntax (line 1)",
        "core/models.py.j2: template failed to render: 'dict object' has no attribute 'no_such_option'",
        "templates/core/orphan.py.j2 is not referenced by module.yaml or any framework plug-in",
    ):
        assert problem in problems
    # The two broken core templates are reported once per framework, not once per option variant.
    assert len(report.problems) == 3 + 2 * len(PLUGINS)
    assert not any("documentation map resolves" in line or "templates render" in line for line in report.passed)


def test_vet_reports_a_missing_template_once_per_framework(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    (kit.root / "templates/core/tokens.py.j2").unlink()
    report = vet(kit)
    assert report.problems[0].endswith(
        "record them with `session-kit modules vet --record-fingerprint` "
        f"(and say what changed in the changelog entry for {kit.manifest.version})"
    )
    assert report.problems[1:] == [
        f"{name}: template core/tokens.py.j2 does not exist under templates/" for name in sorted(PLUGINS)
    ]


def test_vet_reports_an_invalid_spec_without_crashing(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, files={"config/base.yaml": "options:\n  ttl:\n    type: float\n"})
    report = vet(kit)
    assert len(report.problems) == 1
    assert "base.yaml:3: options.ttl.type: 'float' is not a type" in report.problems[0]


# --- import cost -------------------------------------------------------------------------------


def test_importing_the_cli_does_not_import_jinja2_or_yaml() -> None:
    code = (
        "import sys; import session_kit.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jinja2', 'yaml')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
