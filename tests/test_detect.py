"""The framework and package are found in small, realistic project trees; --framework overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import build_file_tree, snapshot
from typer.testing import CliRunner, Result

from session_kit.cli import app
from session_kit.engine.detect import detect_framework, detect_package
from session_kit.errors import OptionError
from session_kit.frameworks import PLUGINS
from session_kit.generate import GenerateRequest, generate

SIGNATURES = {name: plugin.signature for name, plugin in PLUGINS.items()}

FLASK_APP = """
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "hello"
"""

# The layout of Flask's tutorial project: an application factory in a flat package.
FLASKR = {
    "pyproject.toml": """
    [project]
    name = "flaskr"
    version = "1.0.0"
    dependencies = ["flask"]

    [project.optional-dependencies]
    test = ["pytest"]
    """,
    "flaskr/__init__.py": """
    import os

    from flask import Flask


    def create_app(test_config=None):
        app = Flask(__name__, instance_relative_config=True)
        app.config.from_mapping(SECRET_KEY="dev")
        return app
    """,
    "flaskr/db.py": "import sqlite3\n",
    "flaskr/auth.py": "from flask import Blueprint\n\nbp = Blueprint('auth', __name__)\n",
    "tests/__init__.py": "",
    "tests/conftest.py": "from flaskr import create_app\n",
}

FASTAPI_SRC = {
    "pyproject.toml": """
    [project]
    name = "shop"
    dependencies = ["fastapi[standard]>=0.110", "starlette>=0.37", "sqlalchemy"]
    """,
    "src/shop/__init__.py": "",
    "src/shop/main.py": "from fastapi import FastAPI\n\napp = FastAPI(title='shop')\n",
}


def _invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def test_a_flask_project_from_requirements_and_code_gets_flask(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path / "hello", {"requirements.txt": "Flask>=3.0  # web\n", "hello.py": FLASK_APP})
    found = detect_framework(root, SIGNATURES)
    assert found.chosen == "flask"
    assert found.evidence == {"flask": ("requirements.txt names flask",)}


def test_code_decides_when_no_dependency_names_a_framework(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path / "hello", {"hello.py": FLASK_APP, "notes.py": "# FastAPI( in a comment\n"})
    found = detect_framework(root, SIGNATURES)
    assert (found.chosen, found.evidence) == ("flask", {"flask": ("hello.py:3 builds Flask(...)",)})


def test_flaskr_gets_flask_inside_its_own_package(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path / "flaskr", FLASKR)
    report = generate(GenerateRequest(project_dir=root, environ={}))
    assert (report.framework, report.package) == ("flask", "flaskr.sessions")
    assert (root / "flaskr" / "sessions" / "extension.py").is_file()
    assert not (root / "sessions").exists()  # no top-level package outside the installed one
    assert report.detected == {
        "framework": "flask (pyproject.toml project.dependencies names flask)",
        "package": "flaskr.sessions (flaskr/ holds the app: create_app in flaskr/__init__.py)",
    }


def test_a_src_layout_fastapi_project_from_pyproject(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path / "shop", FASTAPI_SRC)
    found = detect_framework(root, SIGNATURES)
    assert found.chosen == "fastapi"  # Starlette beside FastAPI is FastAPI's foundation, not a second framework
    package = detect_package(root, list(SIGNATURES.values()))
    assert package.package == "shop.sessions"
    result = _invoke("add", "module", "session", "--yes", "--dry-run", "--json", "--project-dir", root)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["detected"]["framework"] == "fastapi (pyproject.toml project.dependencies names fastapi)"
    assert payload["detected"]["package"].startswith("shop.sessions (src/shop/ holds the app")
    assert any(f["path"] == "src/shop/sessions/integration.py" for f in payload["files"])


@pytest.mark.parametrize(
    ("files", "framework", "where"),
    [
        (
            {"pyproject.toml": '[tool.poetry.dependencies]\npython = "^3.11"\nlitestar = "^2.25"\n'},
            "litestar",
            "pyproject.toml tool.poetry.dependencies names litestar",
        ),
        (
            {"pyproject.toml": '[tool.poetry.group.web.dependencies]\nstarlette = "*"\n'},
            "starlette",
            "pyproject.toml tool.poetry.group.web.dependencies names starlette",
        ),
        (
            {"pyproject.toml": '[project]\nname = "x"\n[project.optional-dependencies]\nweb = ["flask>=3"]\n'},
            "flask",
            "pyproject.toml project.optional-dependencies.web names flask",
        ),
        ({"requirements/base.txt": "-r common.txt\nfastapi==0.115.0\n"}, "fastapi", "requirements/base.txt"),
    ],
    ids=["poetry", "poetry group", "optional group", "requirements folder"],
)
def test_every_place_dependencies_are_declared_is_read(
    tmp_path: Path, files: dict[str, str], framework: str, where: str
) -> None:
    found = detect_framework(build_file_tree(tmp_path / "p", files), SIGNATURES)
    assert found.chosen == framework
    assert found.evidence[framework][0].startswith(where)


def test_code_breaks_a_tie_between_declared_frameworks(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path / "p", {"requirements.txt": "flask\nlitestar\n", "app.py": FLASK_APP})
    assert detect_framework(root, SIGNATURES).chosen == "flask"


def test_conflicting_signals_stop_a_non_interactive_run_and_list_what_was_found(tmp_path: Path) -> None:
    root = build_file_tree(
        tmp_path / "p",
        {
            "requirements.txt": "flask\nfastapi\n",
            "web.py": FLASK_APP,
            "api.py": "from fastapi import FastAPI\napi = FastAPI()\n",
        },
    )
    before = snapshot(root)
    result = _invoke("add", "module", "session", "--yes", "--project-dir", root)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for words in ("cannot tell which framework", "requirements.txt names fastapi", "web.py:3 builds Flask(...)"):
        assert words in result.output
    assert "pass --framework (fastapi or flask)" in result.output
    assert snapshot(root) == before
    with pytest.raises(OptionError):
        generate(GenerateRequest(project_dir=root, environ={}, dry_run=True))


def test_framework_on_the_command_line_overrides_detection_and_says_so(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path / "p", {"requirements.txt": "flask\n", "app/__init__.py": ""})
    result = _invoke("add", "module", "session", "--yes", "--framework", "fastapi", "--project-dir", root)
    assert result.exit_code == 0, result.output
    assert "detected framework: fastapi (from --framework; the project also names flask" in result.output
    assert "detected package: app.sessions (app/ is the app package)" in result.output
    assert (root / "app/sessions/dependencies.py").is_file()


def test_an_empty_project_gets_the_default_and_is_told_so(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path / "p", {"README.md": "# p\n"})
    report = generate(GenerateRequest(project_dir=root, environ={}, dry_run=True))
    assert report.framework == "fastapi"
    assert report.detected["framework"].startswith("fastapi (the default: no dependency or code names")
    assert report.detected["package"] == "sessions (the project has no package yet)"


def test_a_broken_pyproject_is_a_note_not_a_crash(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path / "p", {"pyproject.toml": "[project\n", "app.py": FLASK_APP})
    report = generate(GenerateRequest(project_dir=root, environ={}, dry_run=True))
    assert report.framework == "flask"
    assert any(note.startswith("pyproject.toml was not read") for note in report.notes)


def test_virtual_environments_and_hidden_folders_are_not_read(tmp_path: Path) -> None:
    root = build_file_tree(
        tmp_path / "p",
        {
            ".venv/lib/site.py": FLASK_APP,
            "env2/pyvenv.cfg": "home = /usr\n",
            "env2/lib/x.py": FLASK_APP,
            "main.py": "from litestar import Litestar\napp = Litestar([])\n",
        },
    )
    assert detect_framework(root, SIGNATURES).evidence == {"litestar": ("main.py:2 builds Litestar(...)",)}


def test_a_generated_project_keeps_its_framework_whatever_the_files_say(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path / "p", {"app/__init__.py": ""})
    generate(GenerateRequest(project_dir=root, environ={}))
    (root / "requirements.txt").write_text("flask\n")
    result = _invoke("add", "module", "session", "--yes", "--project-dir", root)
    assert result.exit_code == 0, result.output
    assert json.loads((root / "session-kit.lock").read_text())["modules"]["session"]["framework"] == "fastapi"
