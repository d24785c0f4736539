"""The kit installs cleanly outside the repository, from a clean tree and from a built wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _clean_tree(destination: Path) -> Path:
    """The files git tracks (plus uncommitted edits), as a clean clone would have them."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for rel in listed:
        source = REPO / rel
        if source.is_file():
            target = destination / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def _fresh_venv(path: Path) -> Path:
    venv.create(path, with_pip=True)
    return path / "bin"


def _generate_and_vet(bin_dir: Path, workdir: Path) -> None:
    project = workdir / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "__init__.py").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_KIT_")}
    result = subprocess.run(
        [str(bin_dir / "session-kit"), "add", "module", "session", "--yes", "--project-dir", str(project)],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (project / "app" / "sessions" / "manager.py").is_file()
    assert (project / "session-kit.lock").is_file()
    _run(bin_dir / "session-kit", "modules", "vet", cwd=workdir)
    _run(bin_dir / "session-kit", "modules", "verify", "--project-dir", project, cwd=workdir)


def test_wheel_installs_in_a_fresh_venv_and_finds_its_templates(tmp_path: Path) -> None:
    source = _clean_tree(tmp_path / "source")
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, source)
    (wheel,) = wheels.glob("session_kit-*.whl")
    bin_dir = _fresh_venv(tmp_path / "venv")
    _run(bin_dir / "python", "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)
    # Run from a directory that is not the repository, so only the installed copy can answer.
    _generate_and_vet(bin_dir, tmp_path)


def test_pip_install_from_a_clean_tree(tmp_path: Path) -> None:
    source = _clean_tree(tmp_path / "clone")
    bin_dir = _fresh_venv(tmp_path / "venv")
    _run(bin_dir / "python", "-m", "pip", "install", "--quiet", ".", cwd=source)
    shutil.rmtree(source)  # the installed command must not need the tree it came from
    _generate_and_vet(bin_dir, tmp_path)
