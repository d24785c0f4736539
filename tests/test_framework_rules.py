"""Framework rules: one framework's module per package, switching with `upgrade --set framework=...`,
and `modules vet` rendering every framework plug-in with every store option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import make_kit, new_project, snapshot
from typer.testing import CliRunner, Result

from session_kit.cli import app
from session_kit.engine.kit import Kit
from session_kit.engine.vet import vet
from session_kit.frameworks import PLUGINS

SESSIONS = "app/sessions"


def _invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "240"})


def _lock(root: Path) -> dict[str, object]:
    module: dict[str, object] = json.loads((root / "session-kit.lock").read_text())["modules"]["session"]
    return module


@pytest.fixture
def fastapi_project(tmp_path: Path) -> Path:
    root = new_project(tmp_path / "project")
    created = _invoke("add", "module", "session", "--yes", "--framework", "fastapi", "--project-dir", root)
    assert created.exit_code == 0, created.output
    return root


@pytest.mark.parametrize("how", [("--framework", "starlette"), ("--set", "framework=starlette")])
def test_a_second_framework_in_the_same_package_is_refused_and_nothing_changes(
    fastapi_project: Path, how: tuple[str, str]
) -> None:
    before = snapshot(fastapi_project)
    result = _invoke("add", "module", "session", "--yes", *how, "--project-dir", fastapi_project)

    assert result.exit_code != 0
    message = " ".join(result.output.split())
    assert "package app.sessions already holds the session module for fastapi" in message
    assert "session-kit upgrade --set framework=starlette" in message
    assert "Traceback" not in result.output
    assert snapshot(fastapi_project) == before


def test_switching_framework_follows_the_upgrade_rules(fastapi_project: Path) -> None:
    edited = fastapi_project / "tests/sessions/test_session_policies.py"  # FastAPI only, edited by the user
    edited.write_text(edited.read_text() + "\n# my own helper lives here\n")
    untouched = fastapi_project / "tests/sessions/test_session_cookies.py"  # FastAPI only, as generated
    settings = fastapi_project / SESSIONS / "settings.py"  # shared core, edited by the user
    settings.write_text(settings.read_text() + "\n# tuned by the user\n")
    assert untouched.is_file()

    result = _invoke("upgrade", "--set", "framework=litestar", "--project-dir", fastapi_project)

    assert result.exit_code == 0, result.output
    assert "kept (dropped by the kit, edited by you)" in result.output
    assert "litestar>=" in result.output.split("pip install", 1)[1]
    assert edited.read_text().endswith("# my own helper lives here\n")
    assert not untouched.exists()
    assert settings.read_text().endswith("# tuned by the user\n")
    assert "class SessionPlugin(InitPlugin)" in (fastapi_project / SESSIONS / "integration.py").read_text()
    assert "ASGIMiddleware" in (fastapi_project / SESSIONS / "middleware.py").read_text()
    lock = _lock(fastapi_project)
    assert lock["framework"] == "litestar"
    files = lock["files"]
    assert isinstance(files, dict)
    assert "tests/sessions/test_session_policies.py" not in files  # kept on disk, no longer the kit's file
    assert "tests/sessions/test_session_http.py" in files

    # Now the package is Litestar's: FastAPI is the second framework.
    again = _invoke("add", "module", "session", "--yes", "--framework", "fastapi", "--project-dir", fastapi_project)
    assert again.exit_code != 0
    assert "already holds the session module for litestar" in " ".join(again.output.split())


def test_switching_back_restores_the_first_framework(fastapi_project: Path) -> None:
    original = snapshot(fastapi_project / SESSIONS)
    assert _invoke("upgrade", "--set", "framework=starlette", "--project-dir", fastapi_project).exit_code == 0
    assert (fastapi_project / SESSIONS / "access.py").is_file()
    assert not (fastapi_project / SESSIONS / "dependencies.py").exists()

    back = _invoke("upgrade", "--set", "framework=fastapi", "--project-dir", fastapi_project)
    assert back.exit_code == 0, back.output
    assert not (fastapi_project / SESSIONS / "access.py").exists()
    assert snapshot(fastapi_project / SESSIONS) == original


def test_an_unknown_framework_is_a_clear_error(tmp_path: Path) -> None:
    root = new_project(tmp_path / "project")
    result = _invoke("add", "module", "session", "--yes", "--framework", "bottle", "--project-dir", root)
    assert result.exit_code != 0
    for name in PLUGINS:
        assert name in result.output
    assert "Traceback" not in result.output


def test_vet_renders_every_framework_with_every_store_option(tmp_path: Path) -> None:
    # A template only the redis store selects: the defaults (memory) never render it.
    kit = make_kit(tmp_path, templates={"core/stores/redis.py.j2": "def broken(:\n"})
    report = vet(Kit(kit.root))

    expected = [
        f"{name} (stores=redis): core/stores/redis.py.j2 renders to invalid Python: invalid syntax (line 1)"
        for name in sorted(PLUGINS)
    ]
    assert report.problems == expected  # once per framework, not again for stores=memory,file,sql,redis
    assert report.exit_code == 1


def test_vet_names_every_registered_framework_when_the_kit_is_sound(kit: Kit) -> None:
    report = vet(kit)
    assert report.problems == []
    for name in PLUGINS:
        assert any(line.startswith(f"{name}: every selected template renders") for line in report.passed)
        assert any(line.startswith(f"{name}: ") and "stores=redis" in line for line in report.passed)
