"""Generated packages inside apps shaped like the real ones users have.

Each finding of the host-conventions review, reproduced in a small app and now passing: a
Flask app factory in the shape of the Flask tutorial (`create_app(test_config)`, blueprints
registered before `init_app`, a `load_logged_in_user` hook reading the session, `flask
init-db` and `flask routes` without a secret key), a project whose `.env` holds the secret
key, a FastAPI project that already has its own `SessionDep`, and the test helper that looks
inside the session after a request.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from runtime_support import generated_package

flask = pytest.importorskip("flask")

KEY = secrets.token_urlsafe(32)
FLASKR = '''
"""A tutorial-shaped Flask app: an app factory, an auth blueprint, a login hook."""

import functools

from flask import Blueprint, Flask, g, redirect, request, url_for

from hostfl.sessions import Sessions, get_session

sessions = Sessions()
bp = Blueprint("auth", __name__, url_prefix="/auth")
USERS: dict[str, str] = {}


@bp.before_app_request
def load_logged_in_user():
    user_id = get_session().data.get("user_id")
    g.user = user_id if user_id in USERS else None


def login_required(view):
    @functools.wraps(view)
    def wrapped(**kwargs):
        if g.user is None:
            return redirect(url_for("auth.login"))
        return view(**kwargs)

    return wrapped


@bp.route("/register", methods=("POST",))
def register():
    USERS[request.form["username"]] = request.form["password"]
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=("GET", "POST"))
def login():
    if request.method == "POST":
        name = request.form["username"]
        if USERS.get(name) != request.form["password"]:
            return "Incorrect username or password.", 400
        session = get_session()
        session.clear_data()
        session.data["user_id"] = name
        return redirect(url_for("index"))
    return "log in"


@bp.route("/logout")
def logout():
    get_session().clear_data()
    return redirect(url_for("index"))


def create_app(test_config=None):
    app = Flask(__name__)
    app.config.from_mapping(SECRET_KEY="dev")
    if test_config is not None:
        app.config.from_mapping(test_config)
    app.register_blueprint(bp)  # before the sessions, as the tutorial does

    @app.route("/")
    @login_required
    def index():
        return f"hello {g.user}"

    @app.cli.command("init-db")
    def init_db():
        USERS.clear()
        print("Initialized the database.")

    sessions.init_app(app)
    return app
'''


@pytest.fixture(autouse=True)
def no_session_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SESSION_* variable and no .env file unless a test writes one."""
    for name in list(os.environ):
        if name.startswith("SESSION_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def flask_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ModuleType]]:
    root = tmp_path_factory.mktemp("host-flask")
    with generated_package(root, "hostfl", framework="flask") as package:
        (root / "flaskr.py").write_text(FLASKR)
        sys.modules.pop("flaskr", None)
        try:
            yield root, package
        finally:
            sys.modules.pop("flaskr", None)


@pytest.fixture
def flaskr(flask_project: tuple[Path, ModuleType]) -> ModuleType:
    import flaskr

    flaskr.USERS.clear()
    return flaskr


@pytest.fixture
def client(flaskr: ModuleType) -> Any:
    app = flaskr.create_app({"TESTING": True, "SESSION_SECRET_KEY": KEY, "SESSION_STORE_URL": "memory://"})
    return app.test_client()


def register_and_log_in(client: Any, name: str = "test") -> Any:
    client.post("/auth/register", data={"username": name, "password": "pw"})
    return client.post("/auth/login", data={"username": name, "password": "pw"})


def test_the_factory_configures_sessions_from_test_config(flaskr: ModuleType) -> None:
    app = flaskr.create_app({"SESSION_SECRET_KEY": KEY, "SESSION_TTL": 7200})
    settings = flaskr.sessions.manager_for(app).settings
    assert settings.secret_key.get_secret_value() == KEY
    assert settings.ttl.total_seconds() == 7200


def test_login_sets_the_user_that_the_early_hook_loads(client: Any) -> None:
    response = register_and_log_in(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    with client:
        assert client.get("/").get_data(as_text=True) == "hello test"
        assert flask.g.user == "test"


def test_login_required_redirects_and_logout_forgets_the_user(client: Any) -> None:
    assert client.get("/").headers["Location"] == "/auth/login"
    register_and_log_in(client)
    assert client.get("/").status_code == 200
    client.get("/auth/logout")
    with client:
        assert client.get("/").status_code == 302
        assert flask.g.user is None


def test_a_wrong_password_keeps_the_visitor_signed_out(client: Any) -> None:
    client.post("/auth/register", data={"username": "test", "password": "pw"})
    refused = client.post("/auth/login", data={"username": "test", "password": "nope"})
    assert refused.status_code == 400
    assert client.get("/").status_code == 302


def test_a_test_reads_and_sets_the_session_like_with_flask_s_own(
    client: Any, flaskr: ModuleType, flask_project: tuple[Path, ModuleType]
) -> None:
    session_transaction = importlib_testing(flask_project[1]).session_transaction
    register_and_log_in(client)
    with session_transaction(client) as session:
        assert session.data["user_id"] == "test"
        session.data["user_id"] = "other"
    flaskr.USERS["other"] = "pw"
    assert client.get("/").get_data(as_text=True) == "hello other"


def test_init_db_needs_no_secret_key(flaskr: ModuleType) -> None:
    app = flaskr.create_app({"TESTING": True})
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert "Initialized the database." in result.output


def test_flask_routes_runs_without_a_secret_key(flask_project: tuple[Path, ModuleType]) -> None:
    root, _ = flask_project
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSION_", "PYTHONPATH", "FLASK_"))}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "flaskr", "routes"],
        cwd=root, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "auth.login" in result.stdout


def test_without_a_secret_key_the_first_request_fails_and_says_why(
    flaskr: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    app = flaskr.create_app({"TESTING": True})
    response = app.test_client().get("/")
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "session.configuration"
    assert "SESSION_SECRET_KEY is required" in caplog.text


def test_flask_s_own_cookie_keys_stay_flask_s(flaskr: ModuleType) -> None:
    app = flaskr.create_app({"SESSION_SECRET_KEY": KEY, "SESSION_COOKIE_NAME": "flask", "SESSION_COOKIE_SECURE": False})
    settings = flaskr.sessions.manager_for(app).settings
    assert settings.cookie_name != "flask"
    assert settings.cookie_secure is True


def test_the_secret_key_comes_from_the_project_s_env_file(
    flaskr: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(f"DOMAIN=localhost\nSESSION_SECRET_KEY={KEY}\n")
    client = flaskr.create_app({"TESTING": True}).test_client()
    register_and_log_in(client)
    assert client.get("/").get_data(as_text=True) == "hello test"

    monkeypatch.setenv("SESSION_ENV_FILE", "")  # no file read: the key is missing again
    assert flaskr.create_app({"TESTING": True}).test_client().get("/").status_code == 500


@pytest.fixture(scope="module")
def fastapi_sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    pytest.importorskip("fastapi")
    root = tmp_path_factory.mktemp("host-fastapi")
    with generated_package(root, "hostfa", framework="fastapi") as package:
        yield package


def test_a_fastapi_project_with_its_own_session_dep_and_a_dotenv(fastapi_sessions: ModuleType, tmp_path: Path) -> None:
    """The full-stack template's shape: `SessionDep` is the database session, settings in `.env`."""
    from typing import Annotated

    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    (tmp_path / ".env").write_text(f"PROJECT_NAME=shop\nSESSION_SECRET_KEY={KEY}\n")
    namespace: dict[str, Any] = {}
    exec(f"from {fastapi_sessions.__name__} import *", namespace)
    assert "SessionDep" not in namespace  # a star import never shadows the project's own
    assert "WebSessionDep" in namespace

    class Database:
        name = "db"

    def get_db() -> Database:
        return Database()

    SessionDep = Annotated[Database, Depends(get_db)]  # the project's database session
    WebSessionDep = fastapi_sessions.WebSessionDep
    app = FastAPI()
    fastapi_sessions.setup_sessions(app)  # no settings: environment and .env

    async def visit(db: Any, session: Any) -> dict[str, Any]:
        session.data["visits"] = session.data.get("visits", 0) + 1
        return {"db": db.name, "visits": session.data["visits"]}

    # Annotations are postponed in this file; hand FastAPI the real aliases.
    visit.__annotations__.update(db=SessionDep, session=WebSessionDep)
    app.add_api_route("/visit", visit, methods=["POST"])
    with TestClient(app, base_url="https://testserver") as client:
        assert client.post("/visit").json() == {"db": "db", "visits": 1}
        assert client.post("/visit").json() == {"db": "db", "visits": 2}
        session_transaction = importlib_testing(fastapi_sessions).session_transaction
        with session_transaction(client) as session:
            assert session.data["visits"] == 2


def importlib_testing(package: ModuleType) -> Any:
    import importlib

    return importlib.import_module(f"{package.__name__}.testing")
