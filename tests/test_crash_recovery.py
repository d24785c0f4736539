"""Real process death at every write step of add, upgrade, rollback and --continue.

A forked child runs the command with a hook that ends the process with os._exit at write step k
(no finally blocks, no cleanup: what kill -9 leaves). The parent then runs the next command,
which recovers; the project must be byte for byte the state before or the state after, with no
staging folder or journal left, and an upgrade that was completed by recovery must roll back to
the state before it. A few runs through the real CLI end with SIGKILL instead.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kitbuilder import build_kit, new_project, stand_in_body

from session_kit.engine.faults import CRASH_EXIT_CODE, install_crash_hook
from session_kit.engine.guard import guarded
from session_kit.engine.journal import JOURNAL, Recovery
from session_kit.engine.kit import KIT_ROOT, Kit
from session_kit.generate import GenerateRequest, generate
from session_kit.upgrade import continue_upgrade, rollback, upgrade

MANAGER = "core/manager.py.j2"
SETTINGS = "core/settings.py.j2"
MANAGER_PATH = "app/sessions/manager.py"
SETTINGS_PATH = "app/sessions/settings.py"

State = dict[str, tuple[bytes | None, int]]


def _state(root: Path) -> State:
    """Every file and folder with its bytes and mode."""
    return {
        p.relative_to(root).as_posix(): (None if p.is_dir() else p.read_bytes(), p.stat().st_mode)
        for p in sorted(root.rglob("*"))
    }


def _crash_at(step: int, action: Callable[[], object]) -> int:
    """Run `action` in a child that dies at write step `step`; its exit status (0: it finished)."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            install_crash_hook(step)
            action()
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _next_command(root: Path) -> Recovery | None:
    """What every command does first: take the lock and recover."""
    with guarded(root, write=False) as recovery:
        return recovery


def _sweep(template: Path, action: Callable[[Path], object], tmp: Path) -> tuple[State, State, list[Path]]:
    """Crash `action` at step 1, 2, ... on copies of `template` until it finishes; returns the
    states before and after and the copies whose recovery completed the command."""
    old = _state(template)
    finished = tmp / "finished"
    shutil.copytree(template, finished, symlinks=True)
    action(finished)
    new = _state(finished)
    assert new != old
    completed = []
    step = 1
    while True:
        root = tmp / f"crash-{step}"
        shutil.copytree(template, root, symlinks=True)
        code = _crash_at(step, lambda root=root: action(root))  # type: ignore[misc]
        if code == 0:
            break
        assert code == CRASH_EXIT_CODE, f"step {step}: the child failed instead of dying"
        recovery = _next_command(root)
        state = _state(root)
        assert state in (old, new), f"a crash at step {step} left a mixed project"
        assert not list((root / ".session-kit").glob(".staging-*")) if (root / ".session-kit").exists() else True
        assert not (root / JOURNAL).exists()
        if state == new:
            # Completed by recovery, or the crash came after the journal was gone (only staging was left).
            assert recovery is not None, f"step {step}"
            assert recovery.action in ("completed", "cleaned up"), f"step {step}"
            completed.append(root)
        else:
            assert recovery is None or recovery.action in ("rolled back", "cleaned up"), f"step {step}"
        step += 1
    assert step > 4, "the command has several write steps, each one tried"
    assert completed, "no crash happened after the commit point"
    return old, new, completed


@pytest.fixture
def kits(tmp_path: Path) -> tuple[Kit, Kit]:
    v1 = build_kit(tmp_path / "kit-1")
    bodies = {
        MANAGER: stand_in_body(MANAGER).replace(f"line 10 of {MANAGER}\n", "line 10, fixed in 0.3.0\n"),
        SETTINGS: stand_in_body(SETTINGS).replace(f"line 3 of {SETTINGS}\n", "line 3, hardened in 0.3.0\n"),
    }
    return v1, build_kit(tmp_path / "kit-2", version="0.3.0", bodies=bodies)


def _generated(root: Path, kit: Kit) -> Path:
    new_project(root)
    generate(GenerateRequest(project_dir=root, kit=kit))
    return root


def _edited(root: Path) -> None:
    manager = root / MANAGER_PATH
    manager.write_text(manager.read_text().replace(f"line 2 of {MANAGER}\n", "line 2, the user's\n"))


def test_a_crash_at_any_step_of_add_leaves_nothing_or_everything(tmp_path: Path, kits: tuple[Kit, Kit]) -> None:
    v1, _ = kits
    template = new_project(tmp_path / "empty")
    _sweep(template, lambda root: generate(GenerateRequest(project_dir=root, kit=v1)), tmp_path)


def test_a_crash_at_any_step_of_upgrade_then_rollback_restores_the_state_before(
    tmp_path: Path, kits: tuple[Kit, Kit]
) -> None:
    v1, v2 = kits
    template = _generated(tmp_path / "template", v1)
    _edited(template)
    old, _, completed = _sweep(template, lambda root: upgrade(GenerateRequest(project_dir=root, kit=v2)), tmp_path)
    for root in completed:
        rollback(root)
        assert _state(root) == old, f"{root.name}: rollback after a recovered crash"


def test_a_crash_at_any_step_of_rollback(tmp_path: Path, kits: tuple[Kit, Kit]) -> None:
    v1, v2 = kits
    template = _generated(tmp_path / "template", v1)
    _edited(template)
    before_upgrade = _state(template)
    upgrade(GenerateRequest(project_dir=template, kit=v2))
    _, new, _ = _sweep(template, rollback, tmp_path)
    assert new == before_upgrade


def test_a_crash_at_any_step_of_continue(tmp_path: Path, kits: tuple[Kit, Kit]) -> None:
    v1, v2 = kits
    template = _generated(tmp_path / "template", v1)
    settings = template / SETTINGS_PATH
    settings.write_text(settings.read_text().replace(f"line 3 of {SETTINGS}\n", "line 3, the user's\n"))
    assert upgrade(GenerateRequest(project_dir=template, kit=v2)).exit_code == 1
    text = settings.read_text()
    settings.write_text(re.sub(r"<<<<<<< .*?\n(.*?)\|\|\|\|\|\|\| .*?>>>>>>> [^\n]*\n", r"\1", text, flags=re.S))
    _sweep(template, continue_upgrade, tmp_path)


# --- kill -9 through the real CLI ----------------------------------------------------------------


def _cli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "session_kit", *map(str, args)]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(KIT_ROOT.parent)}


@pytest.mark.parametrize("delay", [0.05, 0.15, 0.3, 0.5])
def test_sigkill_during_a_real_add_then_the_next_command_recovers(tmp_path: Path, delay: float) -> None:
    """Whenever the kill lands, the next command leaves the old or the complete new project."""
    root = new_project(tmp_path / "project")
    before = _state(root)
    reference = new_project(tmp_path / "reference")
    subprocess.run(_cli("add", "module", "session", "--yes", "--project-dir", reference), env=_env(), check=True)
    after = _state(reference)

    process = subprocess.Popen(
        _cli("add", "module", "session", "--yes", "--project-dir", root),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    nxt = subprocess.run(_cli("diff", "--project-dir", root), env=_env(), capture_output=True, text=True)
    assert "Traceback" not in nxt.stderr
    assert _state(root) in (before, after)
    assert not (root / JOURNAL).exists()
    if (root / ".session-kit").exists():
        assert not list((root / ".session-kit").glob(".staging-*"))


def test_a_staged_file_cut_short_by_a_power_loss_is_rolled_back(tmp_path: Path, kits: tuple[Kit, Kit]) -> None:
    """The journal's hashes catch what an unflushed staged file lost; completing it would write garbage."""
    v1, v2 = kits
    template = _generated(tmp_path / "template", v1)
    old = _state(template)
    step = 1
    while True:  # the first step at which the journal exists
        root = tmp_path / f"attempt-{step}"
        shutil.copytree(template, root)
        assert _crash_at(step, lambda root=root: upgrade(GenerateRequest(project_dir=root, kit=v2))) != 0
        if (root / JOURNAL).exists():
            break
        step += 1
    staged = sorted((root / ".session-kit").glob(".staging-*/*.new"))
    staged[0].write_bytes(b"")
    recovery = _next_command(root)
    assert recovery is not None
    assert recovery.action == "rolled back"
    assert _state(root) == old
