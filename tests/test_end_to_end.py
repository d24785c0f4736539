"""End to end: the real CLI generates into a FastAPI project, and the generated code works.

One project is generated per module run; the app built from it is driven through httpx
(FastAPI's TestClient) with a fake clock, and the project's own tests, ruff and
mypy --strict run inside it.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from session_kit.engine.kit import Kit

SECRET = "e2e-secret-key-that-is-long-enough-0123456789"
PACKAGE = "shop.sessions"
RUFF_RULES = "E,F,W,I,UP,B,SIM,RUF,C4,PT,RET"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_KIT_")}
    return subprocess.run(
        [sys.executable, "-m", "session_kit", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    (root / "shop").mkdir()
    (root / "shop" / "__init__.py").write_text("")
    result = _cli("add", "module", "session", "--yes", "--package", PACKAGE, "--project-dir", str(root), cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    return root


@pytest.fixture(scope="module")
def sessions(project: Path) -> Iterator[ModuleType]:
    sys.path.insert(0, str(project))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(project))
        for name in [m for m in sys.modules if m == "shop" or m.startswith("shop.")]:
            del sys.modules[name]


@dataclass
class FakeClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def client(sessions: ModuleType, clock: FakeClock) -> Iterator[Any]:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()
    settings = sessions.SessionSettings(secret_key=SECRET)
    sessions.setup_sessions(app, settings, clock=clock)
    # Defaults rather than annotations: with postponed annotations FastAPI could not resolve a local alias.
    session_dep = Depends(sessions.get_session)

    @app.get("/put/{value}")
    async def put(value: str, session: Any = session_dep) -> dict[str, str]:
        session.data["value"] = value
        return {"value": value}

    @app.get("/get")
    async def get(session: Any = session_dep) -> dict[str, Any]:
        return {"value": session.data.get("value")}

    @app.post("/login/{user}")
    async def login(user: str, session: Any = session_dep) -> dict[str, str]:
        session.mark_authenticated(sessions.SessionPrincipal(kind="user", id=user))
        return {"user": user}

    @app.post("/logout")
    async def logout(session: Any = session_dep) -> dict[str, bool]:
        session.destroy()
        return {"ok": True}

    principal_dep = Depends(sessions.require_principal)

    @app.get("/me")
    async def me(principal: Any = principal_dep) -> dict[str, str]:
        return {"id": principal.id}

    with TestClient(app, base_url="https://testserver") as test_client:
        yield test_client


def _session_cookie(response: Any) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == "__Host-session":
            return rest.split(";", 1)[0]
    return None


def test_cli_reports_created_files_and_requirements(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    result = _cli("add", "module", "session", "--yes", "--project-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "app/sessions/manager.py" in result.stdout
    assert "create" in result.stdout
    assert "pip install" in result.stdout
    assert "fastapi>=" in result.stdout
    vendor = tmp_path / ".session-kit" / "vendor" / "session" / Kit().manifest.version
    assert (vendor / "app" / "sessions" / "manager.py").is_file()

    again = _cli("add", "module", "session", "--yes", "--project-dir", str(tmp_path), cwd=tmp_path)
    assert again.returncode == 0
    assert "up to date" in again.stdout


def test_anonymous_data_is_kept_across_requests(client: Any) -> None:
    first = client.get("/put/apple")
    assert _session_cookie(first) is not None
    assert first.headers["cache-control"] == "no-store"
    second = client.get("/get")
    assert second.json() == {"value": "apple"}
    assert _session_cookie(second) is None  # nothing changed: no new cookie


def test_an_empty_anonymous_session_sets_no_cookie(client: Any) -> None:
    response = client.get("/get")
    assert response.json() == {"value": None}
    assert "set-cookie" not in response.headers


def test_login_rotates_the_id_and_the_old_cookie_is_dead(client: Any) -> None:
    anonymous = _session_cookie(client.get("/put/cart"))
    login = client.post("/login/alice")
    rotated = _session_cookie(login)
    assert rotated is not None
    assert anonymous is not None
    assert rotated.split(".")[0] != anonymous.split(".")[0]
    assert client.get("/me").json() == {"id": "alice"}
    assert client.get("/get").json() == {"value": "cart"}  # data survives rotation

    client.cookies.clear()
    client.cookies.set("__Host-session", anonymous)
    assert client.get("/get").json() == {"value": None}


def test_logout_deletes_the_session_and_clears_the_cookie(client: Any) -> None:
    client.post("/login/bob")
    token = client.cookies.get("__Host-session")
    response = client.post("/logout")
    cleared = [h for h in response.headers.get_list("set-cookie") if h.startswith("__Host-session=")]
    assert cleared
    assert "Max-Age=0" in cleared[0]
    client.cookies.clear()
    client.cookies.set("__Host-session", token)
    assert client.get("/me").status_code == 401


def test_a_tampered_cookie_gives_a_fresh_session_never_an_error(client: Any) -> None:
    client.get("/put/secret")
    token = client.cookies.get("__Host-session")
    session_id, secret = token.split(".")
    forged = f"{session_id}.{secret[:-2]}{'A' if secret[-2] != 'A' else 'B'}{secret[-1]}"
    client.cookies.clear()
    for bad in (forged, "garbage", f"{session_id}.", "a" * 5000, "../../etc/passwd"):
        client.cookies.set("__Host-session", bad)
        response = client.get("/put/fresh")
        assert response.status_code == 200
        new_token = _session_cookie(response)
        assert new_token is not None
        assert new_token.split(".")[0] != session_id
        client.cookies.clear()


def test_idle_timeout_ends_the_session(client: Any, clock: FakeClock) -> None:
    client.post("/login/carol")
    clock.advance(minutes=29)
    assert client.get("/me").status_code == 200
    clock.advance(minutes=31)
    assert client.get("/me").status_code == 401


def test_absolute_timeout_holds_for_an_active_session(client: Any, clock: FakeClock) -> None:
    client.post("/login/dave")
    for _ in range(7 * 24 * 3):  # every 20 minutes for 7 days
        clock.advance(minutes=20)
        if client.get("/me").status_code != 200:
            break
    assert clock.now - datetime(2026, 1, 1, 12, 0, tzinfo=UTC) <= timedelta(days=7, minutes=20)
    assert client.get("/me").status_code == 401


def test_generated_project_passes_its_own_tests(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/sessions"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def test_generated_code_passes_ruff_and_mypy_strict(project: Path) -> None:
    ruff = [sys.executable, "-m", "ruff"]
    targets = ["shop", "tests"]
    lint = subprocess.run(
        [*ruff, "check", "--isolated", "--target-version", "py311", "--select", RUFF_RULES, *targets],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = subprocess.run(
        [*ruff, "format", "--isolated", "--check", *targets], cwd=project, capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    types = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull, *targets],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert types.returncode == 0, types.stdout + types.stderr
