"""Generate in the host project's style: its ruff (or black) configuration and its target Python.

The templates are written in one canonical style (ruff's defaults, line length 88, double
quotes). A host whose pre-commit runs its own `ruff format` and `ruff check --fix` would
rewrite those files, and every rewritten file would then count as a user edit and turn each
later upgrade into a merge. So, when the host has a style of its own, the rendered Python
files are passed through ruff with the host's configuration before anything is planned:
the project files, the vendor snapshot and the lock all hold the host-styled bytes, and an
upgrade renders the same way, so the host's tools find nothing to change.

ruff is an optional dependency (`pip install 'session-kit[style]'`, or any `ruff` on PATH):
without it the canonical style is kept and one notice says so.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..frameworks.base import RenderedFile

# The oldest Python the generated code supports, and the default target without a hint.
MINIMUM_TARGET = (3, 11)
RUFF_CONFIG_FILES = ("ruff.toml", ".ruff.toml")
# ruff's formatter writes `except A, B:` (PEP 758) for a 3.14 target, so such a host needs
# the formatting pass even without a configuration of its own.
_RESTYLED_TARGET = (3, 14)
_TIMEOUT = 120


@dataclass(frozen=True)
class HostStyle:
    """What the host project's configuration says about the code it wants."""

    target: tuple[int, int] = MINIMUM_TARGET
    # The host's ruff configuration file, when it has one (ruff.toml, .ruff.toml or pyproject.toml).
    ruff_config: Path | None = None
    # Formatter settings from a [tool.black] table, when there is no ruff configuration.
    black: dict[str, Any] | None = None

    @property
    def target_name(self) -> str:
        """The target as ruff and black spell it: py312."""
        return f"py{self.target[0]}{self.target[1]}"

    @property
    def restyles(self) -> bool:
        """Whether rendered files go through the host's formatter at all."""
        return self.ruff_config is not None or self.black is not None or self.target >= _RESTYLED_TARGET

    def describe(self) -> str:
        if self.ruff_config is not None:
            return f"the ruff configuration in {self.ruff_config.name}"
        if self.black is not None:
            return "the [tool.black] configuration in pyproject.toml"
        return f"target {self.target_name}"


def read_host_style(root: Path) -> HostStyle:
    """The host's style from its configuration files; the kit's defaults when it has none."""
    pyproject = _read_toml(root / "pyproject.toml")
    tool = pyproject.get("tool", {}) if isinstance(pyproject.get("tool"), dict) else {}
    ruff_config, ruff_table = _ruff_configuration(root, tool)
    black = tool.get("black") if isinstance(tool.get("black"), dict) else None
    target = (
        _version_name(ruff_table.get("target-version"))
        or _black_target(black)
        or _requires_python(pyproject.get("project"))
        or MINIMUM_TARGET
    )
    return HostStyle(
        target=max(target, MINIMUM_TARGET),
        ruff_config=ruff_config,
        black=None if ruff_config is not None else black,
    )


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
        # A broken configuration is the host's to report; the canonical style is a safe answer.
        return {}


def _ruff_configuration(root: Path, tool: dict[str, Any]) -> tuple[Path | None, dict[str, Any]]:
    """ruff's own precedence: ruff.toml, then .ruff.toml, then pyproject.toml's [tool.ruff]."""
    for name in RUFF_CONFIG_FILES:
        if (root / name).is_file():
            return root / name, _read_toml(root / name)
    table = tool.get("ruff")
    if isinstance(table, dict):
        return root / "pyproject.toml", table
    return None, {}


_VERSION_NAME = re.compile(r"py3(\d{1,2})")


def _version_name(value: object) -> tuple[int, int] | None:
    match = _VERSION_NAME.fullmatch(value) if isinstance(value, str) else None
    return (3, int(match.group(1))) if match else None


def _black_target(black: dict[str, Any] | None) -> tuple[int, int] | None:
    """black lists every version the code must run on; the oldest is the one that binds."""
    names = black.get("target-version") if black else None
    versions = [v for v in map(_version_name, names if isinstance(names, list) else []) if v]
    return min(versions) if versions else None


_LOWER_BOUND = re.compile(r"(?:>=|~=|==)\s*3\.(\d{1,2})")


def _requires_python(project: object) -> tuple[int, int] | None:
    spec = project.get("requires-python") if isinstance(project, dict) else None
    bounds = [(3, int(minor)) for minor in _LOWER_BOUND.findall(spec)] if isinstance(spec, str) else []
    return min(bounds) if bounds else None


def find_ruff() -> str | None:
    """The ruff executable: the `ruff` package beside the kit, else one on PATH."""
    try:
        main = importlib.import_module("ruff.__main__")  # optional: session-kit[style]
        return str(main.find_ruff_bin())
    except (ImportError, FileNotFoundError, AttributeError):
        return shutil.which("ruff")


def restyle(root: Path, rendered: Sequence[RenderedFile]) -> tuple[list[RenderedFile], list[str]]:
    """The rendered files in the host's style, and notices for the user (none when all went well)."""
    style = read_host_style(root)
    files = list(rendered)
    if not style.restyles or not any(file.path.endswith(".py") for file in files):
        return files, []
    ruff = find_ruff()
    if ruff is None:
        return files, [
            f"the project has {style.describe()}, but ruff is not installed, so the generated files keep "
            "session-kit's own style; pip install 'session-kit[style]' and run the command again to match it"
        ]
    try:
        styled = _run_ruff(ruff, style, files)
    except (OSError, subprocess.SubprocessError) as exc:
        return files, [f"ruff could not restyle the generated files ({exc}); they keep session-kit's own style"]
    return [replace(file, data=styled.get(file.path, file.data)) for file in files], []


def _run_ruff(ruff: str, style: HostStyle, files: Sequence[RenderedFile]) -> dict[str, bytes]:
    """Format and fix copies of the Python files in a scratch tree shaped like the project.

    The host's configuration file is copied to the top of that tree, so its relative globs
    (per-file-ignores for tests/**, src, known-first-party) apply exactly as in the project.
    """
    with tempfile.TemporaryDirectory(prefix="session-kit-style-") as scratch:
        top = Path(scratch)
        python = [file for file in files if file.path.endswith(".py")]
        for file in python:
            target = top / PurePosixPath(file.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file.data)
        for passing in _commands(ruff, style, top):
            # Fixes can make the formatter's work visible again (and back), so a second round settles it.
            for command in passing:
                subprocess.run(command, cwd=top, capture_output=True, timeout=_TIMEOUT, check=False)
        return {file.path: (top / PurePosixPath(file.path)).read_bytes() for file in python}


def _commands(ruff: str, style: HostStyle, top: Path) -> list[list[list[str]]]:
    if style.ruff_config is not None:
        shutil.copyfile(style.ruff_config, top / style.ruff_config.name)
        # Exactly what the host's own `ruff check --fix` and `ruff format` do, with its settings.
        round_ = [
            [ruff, "check", "--fix", "--exit-zero", "--quiet", "."],
            [ruff, "format", "--quiet", "."],
        ]
        return [round_, round_]
    options = ["--isolated", "--target-version", style.target_name]
    black = style.black or {}
    length = black.get("line-length")
    if isinstance(length, int) and not isinstance(length, bool):
        options += ["--line-length", str(length)]
    if black.get("skip-string-normalization"):
        options += ["--config", 'format.quote-style="preserve"']
    if black.get("skip-magic-trailing-comma"):
        options += ["--config", "format.skip-magic-trailing-comma=true"]
    return [[[ruff, "format", "--quiet", *options, "."]]]
