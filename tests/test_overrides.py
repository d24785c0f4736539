"""The override contract: SESSION_KIT_* environment variables and the project's generation hooks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import build_file_tree, snapshot

from session_kit.engine.kit import Kit
from session_kit.engine.spec import OptionSpecSet
from session_kit.engine.state import verify
from session_kit.errors import OptionError, ProjectError
from session_kit.generate import GenerateRequest, generate, prepare
from session_kit.overrides import RESERVED_VARIABLES, environment_overrides

SETTINGS = "app/sessions/settings.py"


def test_environment_values_are_converted_like_set_values(spec: OptionSpecSet) -> None:
    environ = {
        "SESSION_KIT_TTL_SECONDS": "120",
        "SESSION_KIT_SECURE": "no",
        "SESSION_KIT_STORES": "memory,redis",
        "PATH": "/usr/bin",
        "SESSION_SECRET_KEY": "runtime settings are not generation options",
    }
    overrides = environment_overrides(spec, environ)
    assert overrides.values == {"ttl_seconds": 120, "secure": False, "stores": ["memory", "redis"]}
    assert overrides.warnings == ()


def test_the_process_environment_is_the_default(spec: OptionSpecSet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_KIT_COOKIE_NAME", "token")
    assert environment_overrides(spec).values == {"cookie_name": "token"}


@pytest.mark.parametrize(
    ("variable", "text", "allowed"),
    [
        ("SESSION_KIT_SECURE", "maybe", "'maybe' is not allowed for secure; expected true or false"),
        ("SESSION_KIT_TTL_SECONDS", "soon", "'soon' is not allowed for ttl_seconds; expected an integer"),
        ("SESSION_KIT_STORES", "disk", "not allowed for stores; expected a comma-separated subset of: memory, redis"),
        ("SESSION_KIT_COOKIE_NAME", "Bad Name", "not allowed for cookie_name; expected a string matching"),
    ],
)
def test_an_invalid_environment_value_names_the_variable_and_what_is_allowed(
    spec: OptionSpecSet, variable: str, text: str, allowed: str
) -> None:
    with pytest.raises(OptionError) as caught:
        environment_overrides(spec, {variable: text})
    assert str(caught.value).startswith(f"{variable}: ")
    assert allowed in str(caught.value)


@pytest.mark.parametrize(("text", "clamped"), [("10", 60), ("99999", 3600)])
def test_an_integer_out_of_range_is_clamped_with_a_warning(spec: OptionSpecSet, text: str, clamped: int) -> None:
    overrides = environment_overrides(spec, {"SESSION_KIT_TTL_SECONDS": text})
    assert overrides.values == {"ttl_seconds": clamped}
    assert overrides.warnings == (f"SESSION_KIT_TTL_SECONDS={text} is out of range; clamped to {clamped}",)


def test_an_unknown_variable_is_reported_with_the_closest_name(spec: OptionSpecSet) -> None:
    overrides = environment_overrides(spec, {"SESSION_KIT_TTL": "120", "SESSION_KIT_COOKIE_NAMES": "x"})
    assert overrides.values == {}
    assert overrides.warnings == (
        "SESSION_KIT_COOKIE_NAMES is not a session-kit option and was ignored; did you mean SESSION_KIT_COOKIE_NAME?",
        "SESSION_KIT_TTL is not a session-kit option and was ignored; did you mean SESSION_KIT_TTL_SECONDS?",
    )


def test_reserved_variables_configure_the_kit_and_are_not_options(spec: OptionSpecSet) -> None:
    environ = dict.fromkeys(RESERVED_VARIABLES, "1")
    assert set(environ) >= {"SESSION_KIT_HOOKS", "SESSION_KIT_FAULT_STEP", "SESSION_KIT_REQUIRE_SERVICES"}
    overrides = environment_overrides(spec, environ)
    assert (overrides.values, overrides.warnings) == ({}, ())


def test_environment_warnings_reach_the_report(kit: Kit, project: Path) -> None:
    environ = {"SESSION_KIT_AUDIT": "none", "SESSION_KIT_AUDT": "sql"}
    report = generate(GenerateRequest(project_dir=project, kit=kit, environ=environ))
    assert report.options["audit"] == "none"
    assert any(w.startswith("SESSION_KIT_AUDT is not a session-kit option") for w in report.warnings)
    assert any("did you mean SESSION_KIT_AUDIT?" in w for w in report.warnings)


def test_a_former_option_in_the_environment_still_sets_the_generated_default(kit: Kit, project: Path) -> None:
    environ = {"SESSION_KIT_TTL_SECONDS": "3600"}
    report = generate(GenerateRequest(project_dir=project, kit=kit, environ=environ))
    assert report.options["ttl_seconds"] == 3600
    assert any("ttl_seconds=3600 (from environment)" in n and "SESSION_TTL" in n for n in report.notes)


def test_a_bad_former_option_in_the_environment_names_the_variable(kit: Kit, project: Path) -> None:
    before = snapshot(project)
    with pytest.raises(OptionError, match=r"SESSION_KIT_COOKIE_SAMESITE: 'loose' is not allowed for cookie_samesite"):
        generate(GenerateRequest(project_dir=project, kit=kit, environ={"SESSION_KIT_COOKIE_SAMESITE": "loose"}))
    assert snapshot(project) == before


# --- hooks -------------------------------------------------------------------------------------


def _hooks(project: Path, text: str, name: str = "session_kit_hooks.py") -> None:
    build_file_tree(project, {name: text})


def test_before_render_changes_options_and_the_lock_records_them(kit: Kit, project: Path) -> None:
    _hooks(
        project,
        """
        def before_render(options):
            return {"audit": "none" if options["csrf"] else "sql", "cookie_samesite": "strict"}
        """,
    )
    prepared = prepare(GenerateRequest(project_dir=project, kit=kit, environ={}))
    assert prepared.options.values["audit"] == "none"  # computed from the resolved default
    assert prepared.options.sources["cookie_samesite"] == "hooks"  # a former option, kept as a default
    generate(GenerateRequest(project_dir=project, kit=kit, environ={}))
    lock = json.loads((project / "session-kit.lock").read_text())
    assert lock["modules"]["session"]["options"]["audit"] == "none"
    assert lock["modules"]["session"]["options"]["cookie_samesite"] == "strict"


def test_before_render_may_return_nothing(kit: Kit, project: Path) -> None:
    _hooks(project, "def before_render(options):\n    options['audit'] = 'sql'  # a copy: no effect\n")
    assert prepare(GenerateRequest(project_dir=project, kit=kit, environ={})).options.values["audit"] == "logger"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            '{"audit": "syslog"}',
            "'syslog' is not allowed for audit; expected one of: none, logger, sql, metrics (from hooks)",
        ),
        (
            '{"ttl_seconds": 0}',
            "0 is not allowed for ttl_seconds; expected a whole number of seconds greater than 0 "
            "(from hooks; it is the run-time setting SESSION_TTL now)",
        ),
        ('{"ttl_second": 900}', "before_render returned unknown option 'ttl_second' (did you mean 'ttl_seconds'?)"),
        ('["ttl_seconds"]', "before_render must return a mapping of option changes or None"),
    ],
    ids=["invalid value", "invalid former option", "unknown option", "not a mapping"],
)
def test_before_render_changes_are_validated_again(kit: Kit, project: Path, changes: str, message: str) -> None:
    _hooks(project, f"def before_render(options):\n    return {changes}\n")
    before = snapshot(project)
    with pytest.raises((OptionError, ProjectError)) as caught:
        generate(GenerateRequest(project_dir=project, kit=kit, environ={}))
    assert message in str(caught.value)
    assert snapshot(project) == before


def test_after_render_changes_the_written_text_and_the_lock_accepts_it(kit: Kit, project: Path) -> None:
    _hooks(
        project,
        """
        def after_render(path, text):
            return "# owned by the payments team\\n" + text if path.endswith(".py") else text
        """,
    )
    report = generate(GenerateRequest(project_dir=project, kit=kit, environ={}))
    text = (project / SETTINGS).read_text()
    assert text.startswith("# owned by the payments team\n# app.sessions ")
    assert (project / "app/sessions/py.typed").read_text().startswith("# app.sessions")
    vendor = project / ".session-kit/vendor/session" / report.version / SETTINGS
    assert vendor.read_text() == text
    assert verify(project).findings == []


def test_a_hooks_file_that_fails_to_import_stops_generation(kit: Kit, project: Path) -> None:
    _hooks(project, "import not_a_module_anywhere\n")
    before = snapshot(project)
    with pytest.raises(ProjectError) as caught:
        generate(GenerateRequest(project_dir=project, kit=kit, environ={}))
    message = str(caught.value)
    assert str(project / "session_kit_hooks.py") in message
    assert "ModuleNotFoundError" in message
    assert caught.value.__cause__ is None  # no chained traceback for the CLI to show
    assert snapshot(project) == before


@pytest.mark.parametrize(
    "hooks",
    [
        "def before_render(options):\n    raise KeyError('stores')\n",
        "def after_render(path, text):\n    return text.nope()\n",
        "def after_render(path, text):\n    return None\n",
    ],
    ids=["before_render raises", "after_render raises", "after_render returns None"],
)
def test_a_hook_that_fails_is_a_project_error_naming_the_file(kit: Kit, project: Path, hooks: str) -> None:
    _hooks(project, hooks)
    before = snapshot(project)
    with pytest.raises(ProjectError) as caught:
        generate(GenerateRequest(project_dir=project, kit=kit, environ={}))
    assert str(caught.value).startswith(f"{project / 'session_kit_hooks.py'}: ")
    assert "_render" in str(caught.value)
    assert snapshot(project) == before


def test_session_kit_hooks_names_another_hooks_file(kit: Kit, project: Path) -> None:
    _hooks(project, "def before_render(options):\n    return {'cookie_samesite': 'none'}\n", name="ci/hooks.py")
    environ = {"SESSION_KIT_HOOKS": "ci/hooks.py"}
    report = generate(GenerateRequest(project_dir=project, kit=kit, environ=environ))
    assert report.options["cookie_samesite"] == "none"


def test_session_kit_hooks_naming_a_missing_file_is_an_error(kit: Kit, project: Path) -> None:
    before = snapshot(project)
    with pytest.raises(ProjectError, match=r"SESSION_KIT_HOOKS=ci/missing\.py: no such file"):
        generate(GenerateRequest(project_dir=project, kit=kit, environ={"SESSION_KIT_HOOKS": "ci/missing.py"}))
    assert snapshot(project) == before
