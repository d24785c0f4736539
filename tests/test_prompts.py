"""Prompts: only structural choices nothing decided, one short line each, on a terminal only."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from session_kit.engine.kit import Kit
from session_kit.engine.spec import HELP_WIDTH, OptionSpec
from session_kit.generate import GenerateRequest, generate


def _project(root: Path) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    return root


def test_only_structural_choices_nothing_decided_are_asked_in_spec_order(tmp_path: Path) -> None:
    asked: list[tuple[str, Any]] = []

    def prompter(option: OptionSpec, default: Any) -> Any:
        asked.append((option.name, default))
        return "header" if option.name == "transport" else default

    project = _project(tmp_path / "p")
    answers = tmp_path / "answers.yaml"
    answers.write_text("token_format: jwt\n")
    request = GenerateRequest(
        project_dir=project, assignments=("audit=none",), answers_file=answers, environ={}, prompter=prompter
    )
    report = generate(request)
    # Nothing in the project names a framework, so it is asked; --set and the answers file decided two others.
    assert [name for name, _ in asked] == ["framework", "stores", "transport", "csrf", "management_routes"]
    assert ("stores", ["memory"]) in asked  # the default shown is the resolved value
    assert (report.options["transport"], report.options["audit"], report.options["token_format"]) == (
        "header",
        "none",
        "jwt",
    )
    runtime = {former.name for former in Kit().options.runtime_defaults}
    assert not runtime & {name for name, _ in asked}  # values the settings expose are never asked


def test_a_detected_framework_is_not_asked(tmp_path: Path) -> None:
    asked: list[str] = []
    project = _project(tmp_path / "p")
    (project / "requirements.txt").write_text("flask>=3.0\n")

    def prompter(option: OptionSpec, default: Any) -> Any:
        asked.append(option.name)
        return default

    report = generate(GenerateRequest(project_dir=project, environ={}, prompter=prompter, dry_run=True))
    assert report.framework == "flask"
    assert "framework" not in asked
    assert report.detected["framework"] == "flask (requirements.txt names flask)"


def test_an_ambiguous_framework_is_asked_showing_what_was_found(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}
    project = _project(tmp_path / "p")
    (project / "requirements.txt").write_text("fastapi\nflask\n")

    def prompter(option: OptionSpec, default: Any) -> Any:
        if option.name == "framework":
            seen.update(help=option.help, default=default)
            return "flask"
        return default

    report = generate(GenerateRequest(project_dir=project, environ={}, prompter=prompter, dry_run=True))
    assert report.framework == "flask"
    assert "requirements.txt names fastapi" in seen["help"]
    assert "requirements.txt names flask" in seen["help"]
    assert seen["default"] == "fastapi"  # the first framework found is suggested
    assert report.detected["framework"].startswith("flask (from your answer")


def test_each_question_is_one_short_line_with_details_behind_it() -> None:
    for option in Kit().options.options:
        assert "\n" not in option.help, option.name
        assert len(option.help) <= HELP_WIDTH, option.name
        assert len(option.prompt) <= 60, option.name
        assert option.details, f"{option.name} has no details to show on '?'"


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


def test_a_terminal_gets_short_prompts_with_defaults_choices_and_details_on_request(tmp_path: Path) -> None:
    project = _project(tmp_path / "tty")
    argv = [sys.executable, "-m", "session_kit", "add", "module", "session", "--project-dir", str(project)]
    asked: list[str] = []

    def record(option: OptionSpec, default: Any) -> Any:
        asked.append(option.name)
        return default

    generate(GenerateRequest(project_dir=_project(tmp_path / "probe"), prompter=record, environ={}, dry_run=True))
    assert len(asked) <= len(Kit().options.options)
    # Accept every default except the token format: first "?" for its details, then "jwt".
    answers = [answer for name in asked for answer in (["?", "jwt"] if name == "token_format" else [""])]
    code, output = _run_on_a_terminal(argv, answers)
    assert code == 0, output
    assert "Token format" in output
    assert "[opaque/jwt]" in output  # choices are shown
    assert "(opaque)" in output  # defaults are shown
    assert "split token id.secret" in output  # the details, after "?"
    assert "lifetime" not in output.lower()  # run-time values are not questions
    assert 'token_format": "jwt"' in (project / "session-kit.lock").read_text()


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
    assert b"Token format" not in out + err
    assert (project / "session-kit.lock").is_file()
