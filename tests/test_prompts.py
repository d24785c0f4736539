"""Prompts: asked on a terminal (rich, with defaults and choices), never without one."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from session_kit.engine.kit import Kit
from session_kit.engine.spec import OptionSpec
from session_kit.generate import GenerateRequest, generate


def _project(root: Path) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    return root


def test_the_prompter_is_asked_in_spec_order_except_for_values_given_on_the_command_line(tmp_path: Path) -> None:
    asked: list[tuple[str, Any]] = []

    def prompter(option: OptionSpec, default: Any) -> Any:
        asked.append((option.name, default))
        return "strict" if option.name == "cookie_samesite" else default

    project = _project(tmp_path / "p")
    report = generate(GenerateRequest(project_dir=project, assignments=("ttl_seconds=7200",), prompter=prompter))
    names = [name for name, _ in asked]
    spec = Kit().options
    expected = [o.name for o in spec.options if o.name != "ttl_seconds" and o.when.holds(report.options)]
    assert names == expected  # every applicable option, in spec order, none fixed by --set
    assert ("idle_timeout_seconds", 1800) in asked  # the default shown is the resolved value
    assert report.options["cookie_samesite"] == "strict"
    assert report.options["ttl_seconds"] == 7200


def _run_on_a_terminal(argv: list[str], answers: list[str], timeout: float = 60) -> tuple[int, str]:
    """Run `argv` with a pseudo-terminal as stdin/stdout, answering each prompt in turn."""
    master, slave = os.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_KIT_")}
    env.update({"COLUMNS": "200", "TERM": "dumb"})
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    output = b""
    pending = list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
                if pending and output.rstrip().endswith(b":"):
                    os.write(master, pending.pop(0).encode() + b"\n")
            elif process.poll() is not None:
                break
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    return code, output.decode(errors="replace")


def test_a_terminal_gets_rich_prompts_with_defaults_and_choices(tmp_path: Path) -> None:
    project = _project(tmp_path / "tty")
    argv = [sys.executable, "-m", "session_kit", "add", "module", "session", "--project-dir", str(project)]
    # Accept every default except SameSite, answered "strict"; the prompts come in spec order.
    asked: list[str] = []

    def record(option: OptionSpec, default: Any) -> Any:
        asked.append(option.name)
        return default

    generate(GenerateRequest(project_dir=_project(tmp_path / "probe"), prompter=record, dry_run=True))
    answers = ["strict" if name == "cookie_samesite" else "" for name in asked]
    code, output = _run_on_a_terminal(argv, answers)
    assert code == 0, output
    assert "Cookie SameSite policy" in output
    assert "[lax/strict/none]" in output  # choices are shown
    assert "(604800)" in output  # defaults are shown
    assert 'DEFAULT_COOKIE_SAMESITE: SameSite = "strict"' in (project / "app/sessions/settings.py").read_text()


def test_without_a_terminal_nothing_is_asked_and_nothing_blocks(tmp_path: Path) -> None:
    project = _project(tmp_path / "pipe")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_KIT_")}
    # stdin is an open pipe nobody writes to: a prompt would wait forever.
    with subprocess.Popen(
        [sys.executable, "-m", "session_kit", "add", "module", "session", "--project-dir", str(project)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as process:
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()
    assert b"Cookie SameSite policy" not in out + err
    assert (project / "session-kit.lock").is_file()
