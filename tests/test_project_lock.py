"""One writer per project: a second process waits, then refuses naming the holder; a killed
holder never blocks anyone; two upgrades started together never both write."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kitbuilder import build_kit, new_project, stand_in_body

from session_kit.engine.kit import KIT_ROOT, Kit
from session_kit.engine.project_lock import project_lock
from session_kit.errors import ProjectBusy
from session_kit.generate import GenerateRequest, generate
from session_kit.upgrade import rollback, upgrade

HOLD = """
import sys, time
from pathlib import Path
from session_kit.engine.project_lock import project_lock
with project_lock(Path(sys.argv[1]).resolve(), exclusive=sys.argv[2] == "exclusive"):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(root: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(KIT_ROOT.parent)}
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root), mode], env=env, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.stdout is not None
    process.stdout.close()


def test_a_second_writer_waits_then_names_the_holder(tmp_path: Path) -> None:
    root = new_project(tmp_path / "project").resolve()
    holder = _holder(root, "exclusive")
    try:
        started = time.monotonic()
        with pytest.raises(ProjectBusy) as caught, project_lock(root, exclusive=True, timeout=0.4):
            pass
        assert time.monotonic() - started >= 0.4  # it waited before giving up
        assert f"session-kit process {holder.pid}" in str(caught.value)
        assert caught.value.exit_code == 75
        with pytest.raises(ProjectBusy), project_lock(root, exclusive=False, timeout=0.1):
            pass  # readers wait for a writer too
    finally:
        _stop(holder)


def test_readers_share_and_keep_writers_out(tmp_path: Path) -> None:
    root = new_project(tmp_path / "project").resolve()
    reader = _holder(root, "shared")
    try:
        with project_lock(root, exclusive=False, timeout=0.1):
            pass  # a second reader gets in at once
        with pytest.raises(ProjectBusy), project_lock(root, exclusive=True, timeout=0.2):
            pass
    finally:
        _stop(reader)


def test_the_lock_of_a_killed_process_is_taken_over_at_once(tmp_path: Path) -> None:
    root = new_project(tmp_path / "project").resolve()
    before = sorted(p.name for p in root.rglob("*"))
    _stop(_holder(root, "exclusive"))  # kill -9 while holding it
    started = time.monotonic()
    with project_lock(root, exclusive=True, timeout=5):
        assert time.monotonic() - started < 1
    assert sorted(p.name for p in root.rglob("*")) == before  # taking the lock writes nothing


def test_the_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    root = new_project(tmp_path / "project").resolve()
    with project_lock(root, exclusive=False), project_lock(root, exclusive=True, timeout=0.2):
        pass


def _state(root: Path) -> dict[str, tuple[bytes | None, int]]:
    return {
        p.relative_to(root).as_posix(): (None if p.is_dir() else p.read_bytes(), p.stat().st_mode)
        for p in sorted(root.rglob("*"))
    }


def _race(root: Path, kit: Kit) -> list[int]:
    """Two forked processes released at the same instant, each upgrading `root`; their exit codes."""
    go_read, go_write = os.pipe()
    children = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(go_write)
                os.read(go_read, 1)
                report = upgrade(GenerateRequest(project_dir=root, kit=kit))
                code = report.exit_code
            except ProjectBusy:
                code = 75
            except BaseException:
                code = 99
            os._exit(code)
        children.append(pid)
    os.close(go_read)
    os.write(go_write, b"go")
    os.close(go_write)
    return [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]


def test_fifty_double_upgrades_one_writes_and_rollback_restores_the_state_before(tmp_path: Path) -> None:
    v1 = build_kit(tmp_path / "kit-1")
    body = stand_in_body("core/manager.py.j2").replace("line 10 of", "line 10, changed in 0.3.0, of")
    v2 = build_kit(tmp_path / "kit-2", version="0.3.0", bodies={"core/manager.py.j2": body})
    template = new_project(tmp_path / "template")
    generate(GenerateRequest(project_dir=template, kit=v1))
    before = _state(template)
    outcomes: dict[int, int] = {}
    for trial in range(50):
        root = tmp_path / f"trial-{trial}"
        shutil.copytree(template, root)
        codes = _race(root, v2)
        assert all(code in (0, 75) for code in codes), codes  # completed, or refused cleanly
        assert 0 in codes
        for code in codes:
            outcomes[code] = outcomes.get(code, 0) + 1
        history = sorted(p.name for p in (root / ".session-kit/history").iterdir())
        assert history == ["0001"], f"trial {trial}: {history}"
        lock = json.loads((root / "session-kit.lock").read_text())
        assert lock["modules"]["session"]["version"] == "0.3.0"
        rollback(root)
        assert _state(root) == before, f"trial {trial}: rollback did not restore the state before the upgrade"
    assert outcomes.get(0, 0) >= 50
