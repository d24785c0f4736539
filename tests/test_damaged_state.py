"""Damaged or hand-edited state: exit 2, the file and the key named, what to do, nothing written.

And the two ends of the error spectrum: a wrong accepted hash is a verify finding, and an
unexpected internal error is one line plus the file that holds its traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import new_project, snapshot
from typer.testing import CliRunner, Result

from session_kit.cli import app

LOCK = "session-kit.lock"
PENDING = ".session-kit/pending-upgrade.json"
HISTORY = ".session-kit/history/0001"
MANAGER = "app/sessions/manager.py"


def _invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with the real kit and one recorded upgrade (an option change), made once."""
    root = new_project(tmp_path_factory.mktemp("damaged") / "template")
    assert _invoke("add", "module", "session", "--yes", "--project-dir", root).exit_code == 0
    result = _invoke("upgrade", "--set", "csrf=false", "--project-dir", root)
    assert result.exit_code == 0, result.output
    assert (root / HISTORY / "manifest.json").is_file()
    return root


@pytest.fixture
def project(upgraded: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "project"
    shutil.copytree(upgraded, copy)
    return copy


def _edit_json(path: Path, change: Callable[[dict[str, object]], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _module(data: dict[str, object]) -> dict[str, object]:
    modules = data["modules"]
    assert isinstance(modules, dict)
    return dict.__getitem__(modules, "session")  # type: ignore[no-any-return]


def _lock_options_a_list(root: Path) -> None:
    _edit_json(root / LOCK, lambda d: _module(d).__setitem__("options", ["csrf"]))


def _lock_version_latest(root: Path) -> None:
    _edit_json(root / LOCK, lambda d: _module(d).__setitem__("version", "latest"))


def _lock_generated_hash_short(root: Path) -> None:
    def change(data: dict[str, object]) -> None:
        files = _module(data)["files"]
        assert isinstance(files, dict)
        files[MANAGER]["generated_sha256"] = "abc"

    _edit_json(root / LOCK, change)


def _lock_not_json(root: Path) -> None:
    (root / LOCK).write_text("{ half a lock")


def _pending_not_json(root: Path) -> None:
    (root / PENDING).write_text("{ nope")


def _pending_conflicts_not_a_list(root: Path) -> None:
    lock = (root / LOCK).read_text()
    (root / PENDING).write_text(json.dumps({"module": "session", "lock": lock, "conflicts": "settings.py"}))


def _manifest_not_json(root: Path) -> None:
    (root / HISTORY / "manifest.json").write_text("[")


def _manifest_mode_a_string(root: Path) -> None:
    def change(data: dict[str, object]) -> None:
        files = data["files"]
        assert isinstance(files, dict)
        files[LOCK]["mode"] = "rw-r--r--"

    _edit_json(root / HISTORY / "manifest.json", change)


def _saved_file_missing(root: Path) -> None:
    (root / HISTORY / "files" / LOCK).unlink()


def _journal_damaged(root: Path) -> None:
    (root / ".session-kit/journal.json").write_text('{"journal_format": 1, "state": "half"}')


CASES = [
    # (damage, command, file named, key named)
    (_lock_options_a_list, ["modules", "verify"], LOCK, "modules.session.options: must be a mapping"),
    (_lock_options_a_list, ["upgrade"], LOCK, "modules.session.options"),
    (_lock_options_a_list, ["add", "module", "session", "--yes"], LOCK, "modules.session.options"),
    (_lock_version_latest, ["upgrade"], LOCK, "modules.session.version: 'latest' is not a version"),
    (_lock_version_latest, ["modules", "verify"], LOCK, "modules.session.version"),
    (_lock_generated_hash_short, ["modules", "verify"], LOCK, "generated_sha256: 'abc' is not a sha256"),
    (_lock_not_json, ["diff"], LOCK, "not a readable session-kit lock"),
    (_pending_not_json, ["upgrade", "--continue"], PENDING, "not a readable record of an unfinished upgrade"),
    (_pending_not_json, ["modules", "verify"], PENDING, "session-kit rollback"),
    (_pending_not_json, ["upgrade"], PENDING, "not a readable record"),
    (_pending_conflicts_not_a_list, ["upgrade", "--continue"], PENDING, "conflicts: must be a list of strings"),
    (_manifest_not_json, ["rollback"], f"{HISTORY}/manifest.json", "not a readable history manifest"),
    (_manifest_not_json, ["upgrade", "--set", "csrf=true"], f"{HISTORY}/manifest.json", "delete that folder"),
    (_manifest_mode_a_string, ["rollback"], f"{HISTORY}/manifest.json", f"files.{LOCK}.mode: must be an integer"),
    (_saved_file_missing, ["rollback"], f"{HISTORY}/manifest.json", f"the saved copy {HISTORY}/files/{LOCK}"),
    (_journal_damaged, ["modules", "verify"], ".session-kit/journal.json", "kind: must be a string"),
]


@pytest.mark.parametrize(
    ("damage", "command", "named", "key"), CASES, ids=[f"{c[0].__name__}-{'-'.join(c[1])}" for c in CASES]
)
def test_damaged_state_exits_2_naming_file_and_key_and_writes_nothing(
    project: Path, damage: Callable[[Path], None], command: list[str], named: str, key: str
) -> None:
    damage(project)
    before = snapshot(project)
    result = _invoke(*command, "--project-dir", project)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    message = " ".join(result.output.split())  # rich wraps long lines
    assert str(project / named) in message.replace(" ", "") or named in message
    assert key in message
    assert "nothing was written" in message
    assert snapshot(project) == before


def test_a_wrong_accepted_hash_is_reported_by_verify(project: Path) -> None:
    _edit_json(project / LOCK, lambda d: _module(d)["files"][MANAGER].__setitem__("sha256", "not-a-hash"))  # type: ignore[index]
    result = _invoke("modules", "verify", "--json", "--project-dir", project)
    assert result.exit_code == 1, result.output
    findings = json.loads(result.stdout)["findings"]
    assert [f["status"] for f in findings if f["path"] == MANAGER] == ["wrong-accepted-hash"]
    table = _invoke("modules", "verify", "--project-dir", project)
    assert "wrong-accepted-hash" in table.output
    assert "modules lock --overwrite" in table.output


def test_an_internal_error_is_one_line_and_a_saved_traceback(
    project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import session_kit.upgrade

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug in session-kit")

    monkeypatch.setattr(session_kit.upgrade, "rollback", broken)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = _invoke("rollback", "--project-dir", project)
    assert result.exit_code == 3
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("internal error: RuntimeError: a bug in session-kit; the full traceback is in ")
    saved = next((tmp_path / "cache" / "session-kit" / "errors").glob("error-*.txt"))
    assert "Traceback" in saved.read_text()
    assert "a bug in session-kit" in saved.read_text()

    debug = _invoke("--debug", "rollback", "--project-dir", project)
    assert isinstance(debug.exception, RuntimeError)  # --debug lets the traceback through
