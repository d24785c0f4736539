"""Former options are run-time settings now: fixed defaults in the generated settings, and an
older project's values carried into them (with a notice) instead of being lost."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from helpers import build_file_tree
from typer.testing import CliRunner

from session_kit.cli import app
from session_kit.engine.context import build_context, carried_defaults
from session_kit.engine.kit import Kit
from session_kit.engine.options import resolve
from session_kit.engine.project import resolve_layout
from session_kit.frameworks import get_plugin
from session_kit.generate import GenerateRequest, generate

FIXTURES = Path(__file__).parent / "fixtures" / "release-0.1.0"
SETTINGS_TEMPLATE = "core/settings.py.j2"


def _settings(kit: Kit, root: Path, carried: dict[str, str]) -> str:
    plugin = get_plugin("fastapi")
    values = dict(resolve(kit.options).values)
    context = build_context(kit, resolve_layout(root, "app.sessions"), plugin, values, kit.manifest.version)
    return kit.renderer.render(SETTINGS_TEMPLATE, {**context, "carried": carried})


def test_each_declared_default_is_the_templates_fixed_default(tmp_path: Path) -> None:
    kit = Kit()
    root = build_file_tree(tmp_path / "p", {"app/__init__.py": ""})
    fixed = _settings(kit, root, {})
    for former in kit.options.runtime_defaults:
        literal = carried_defaults(kit.options, {former.name: former.default})
        assert f"{former.constant}" in fixed, f"{former.constant} is not in {SETTINGS_TEMPLATE}"
        assert _settings(kit, root, literal) == fixed, f"{former.name}: `default` differs from the template's"


def test_no_runtime_value_is_a_generator_option() -> None:
    spec = Kit().options
    assert set(spec.names) == {"framework", "stores", "token_format", "transport", "csrf", "management_routes", "audit"}
    assert not {former.name for former in spec.runtime_defaults} & set(spec.names)


@pytest.mark.parametrize(
    ("assignment", "line"),
    [
        ("ttl_seconds=5400", "DEFAULT_TTL = timedelta(hours=1, minutes=30)"),
        ("idle_timeout_seconds=90", "DEFAULT_IDLE_TIMEOUT = timedelta(minutes=1, seconds=30)"),
        ("cookie_name=sid", 'DEFAULT_COOKIE_NAME = "sid"'),
        ("cookie_samesite=strict", 'DEFAULT_COOKIE_SAMESITE: SameSite = "strict"'),
        ("memory_max_sessions=500", "DEFAULT_MEMORY_MAX_SESSIONS = 500"),
        ("session_limit=3", "DEFAULT_MAX_SESSIONS_PER_PRINCIPAL: int | None = 3"),
        ("limit_behavior=reject", 'DEFAULT_BEHAVIOR_ON_LIMIT: LimitBehaviorSetting = "reject"'),
    ],
)
def test_a_set_former_option_becomes_the_generated_default(tmp_path: Path, assignment: str, line: str) -> None:
    root = build_file_tree(tmp_path / "p", {"app/__init__.py": ""})
    report = generate(GenerateRequest(project_dir=root, assignments=(assignment,), environ={}))
    assert line in (root / "app/sessions/settings.py").read_text().splitlines()
    name = assignment.split("=")[0]
    former = Kit().options.runtime_default(name)
    assert former is not None
    assert any(note.startswith(f"{name}=") and former.variable in note for note in report.notes)


@pytest.mark.parametrize(
    ("assignment", "words"),
    [
        ("ttl_seconds=0", "expected a whole number of seconds greater than 0"),
        ("session_limit=-1", "expected a whole number, 0 for no limit"),
        ("cookie_name=a b", "expected a string matching"),
        ("limit_behavior=block", "expected one of: evict_oldest, reject, evict_all"),
    ],
)
def test_a_bad_former_option_is_refused_before_anything_is_written(tmp_path: Path, assignment: str, words: str) -> None:
    root = build_file_tree(tmp_path / "p", {"app/__init__.py": ""})
    result = CliRunner().invoke(
        app, ["add", "module", "session", "--yes", "--set", assignment, "--project-dir", str(root)]
    )
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in root.iterdir()) == ["app"]


def test_an_answers_file_naming_a_former_option_still_works(tmp_path: Path) -> None:
    root = build_file_tree(
        tmp_path / "p", {"app/__init__.py": "", "answers.yaml": "audit: none\nttl_seconds: '3600'\n"}
    )
    report = generate(GenerateRequest(project_dir=root, answers_file=root / "answers.yaml", environ={}))
    assert report.options["ttl_seconds"] == 3600
    assert "DEFAULT_TTL = timedelta(hours=1)" in (root / "app/sessions/settings.py").read_text()


def test_a_0_1_0_project_with_its_own_values_keeps_them_through_an_upgrade(tmp_path: Path) -> None:
    root = tmp_path / "project"
    with tarfile.open(FIXTURES / "fastapi-default.tar.gz") as tar:
        tar.extractall(root, filter="tar")
    lock_path = root / "session-kit.lock"
    lock = json.loads(lock_path.read_text())
    # What a 0.1.0 user who chose these values at generation time has in their lock.
    lock["modules"]["session"]["options"].update(ttl_seconds=3600, cookie_samesite="strict", session_limit=3)
    lock_path.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")

    result = CliRunner().invoke(app, ["upgrade", "--json", "--project-dir", str(root)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)["notes"]
    notes = " ".join(listed)
    for name, variable in (("ttl_seconds", "SESSION_TTL"), ("cookie_samesite", "SESSION_COOKIE_SAMESITE")):
        assert f"{name}=" in notes
        assert f"{variable} changes it at run time" in notes
    # The lock's value equals the fixed default: nothing to say.
    assert not [note for note in listed if note.startswith("idle_timeout_seconds")]
    settings = (root / "app/sessions/settings.py").read_text()
    assert "DEFAULT_TTL = timedelta(hours=1)\n" in settings
    assert 'DEFAULT_COOKIE_SAMESITE: SameSite = "strict"\n' in settings
    assert "DEFAULT_MAX_SESSIONS_PER_PRINCIPAL: int | None = 3\n" in settings
    assert "DEFAULT_IDLE_TIMEOUT = timedelta(minutes=30)\n" in settings
    upgraded = json.loads(lock_path.read_text())["modules"]["session"]
    assert upgraded["version"] == Kit().manifest.version
    assert {k: upgraded["options"].get(k) for k in ("ttl_seconds", "cookie_samesite", "session_limit")} == {
        "ttl_seconds": 3600,
        "cookie_samesite": "strict",
        "session_limit": 3,
    }
    assert "memory_max_sessions" not in upgraded["options"]  # a default is no longer recorded
