"""Throw-away kits and projects for the kit's unit tests.

A test kit is a copy of the real kit's declarative files (module.yaml, config/base.yaml,
__init__.py, docs/) with a tiny stand-in for every template, so the engine can be tested
without the real templates.
"""

from __future__ import annotations

import contextlib
import shutil
import textwrap
from collections.abc import Mapping
from pathlib import Path

from session_kit.engine.fingerprint import record_fingerprint
from session_kit.engine.kit import KIT_ROOT, Kit
from session_kit.errors import KitError
from session_kit.frameworks import PLUGINS

# Option spec with one option of every type and a conditional one, for option and spec tests.
OPTIONS_YAML = """
options:
  framework:
    type: choice
    choices: [fastapi]
    default: fastapi
    help: Web framework.
    prompt: Framework?
  stores:
    type: multichoice
    choices: [memory, redis]
    default: [memory]
    help: Stores to generate.
    prompt: Stores?
  ttl_seconds:
    type: integer
    default: 600
    min: 60
    max: 3600
    help: Session lifetime.
    prompt: Lifetime?
  cookie_name:
    type: string
    default: sid
    pattern: "^[a-z_]+$"
    help: Cookie name.
    prompt: Cookie name?
  secure:
    type: boolean
    default: true
    help: Secure cookies.
    prompt: Secure?
  redis_url:
    type: string
    default: redis://localhost
    when: {stores: {contains: redis}}
    help: Redis URL.
    prompt: Redis URL?
"""


def build_file_tree(root: Path, files: Mapping[str, str]) -> Path:
    """Write `files` ({relative path: text}) under `root`; each text is dedented.

    One leading newline is dropped, so a triple-quoted block starts at line 1.
    """
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text.removeprefix("\n")), encoding="utf-8")
    return root


def replace_once(text: str, old: str, new: str) -> str:
    """`text` with the first `old` replaced; fails loudly when the baseline no longer holds `old`."""
    assert old in text, f"{old!r} is not in the text any more"
    return text.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line of `text` containing `needle`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not found")


def stand_in(template: str) -> str:
    """A tiny template that uses the context and compiles as Python."""
    return f"# {{{{ package }}}} {{{{ module_version }}}}: {template}\nTEMPLATE = {{{{ {template!r} | py }}}}\n"


def referenced_templates(kit: Kit) -> list[str]:
    """Every template module.yaml and the framework plug-ins name."""
    names = [file.template for file in kit.manifest.templates]
    for plugin in PLUGINS.values():
        names += [file.template for file in plugin.adapter_templates()]
    return sorted(set(names))


def make_kit(
    tmp_path: Path,
    *,
    name: str = "kit",
    version: str | None = None,
    templates: Mapping[str, str] | None = None,
    files: Mapping[str, str] | None = None,
) -> Kit:
    """A kit at `tmp_path/name`: the real declarative files, stand-in templates.

    `version` sets the package, module.yaml and newest changelog versions together;
    `templates` replaces chosen template bodies; `files` (dedented) replaces any file last.
    """
    root = tmp_path / name
    (root / "config").mkdir(parents=True)
    for rel in ("module.yaml", "config/base.yaml", "__init__.py"):
        shutil.copy2(KIT_ROOT / rel, root / rel)
    shutil.copytree(KIT_ROOT / "docs", root / "docs")
    kit = Kit(root)
    for key, rel in kit.manifest.documentation.items():
        doc = root / rel
        if not doc.is_file():  # the real docs may still be being written
            doc.write_text(f"# {key}\n\nStand-in for tests.\n", encoding="utf-8")
    for template in referenced_templates(kit):
        path = root / "templates" / template
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(stand_in(template), encoding="utf-8")
    if version is not None:
        set_version(root, version)
    if templates:
        build_file_tree(root / "templates", templates)
    if files:
        build_file_tree(root, files)
    # The copy's own templates are its release: vet compares them with this fingerprint.
    # A kit whose YAML a test broke on purpose has no version to record it for.
    with contextlib.suppress(KitError):
        record_fingerprint(Kit(root))
    return Kit(root)


def set_version(root: Path, version: str, *, package: bool = True, module: bool = True, changelog: bool = True) -> None:
    """Write `version` into the chosen version sources of the kit at `root`."""
    if package:
        (root / "__init__.py").write_text(f'"""Test kit."""\n\n__version__ = "{version}"\n', encoding="utf-8")
    if module:
        manifest = root / "module.yaml"
        lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
        manifest.write_text("".join(f"version: {version}\n" if ln.startswith("version:") else ln for ln in lines))
    if changelog:
        path = root / "docs" / "changelog.md"
        head, sep, rest = path.read_text(encoding="utf-8").partition("\n## ")
        path.write_text(f"{head}\n## {version} — 2026-12-01\n\n- Test release.\n{sep}{rest}", encoding="utf-8")


def new_project(root: Path, *, package: str = "app") -> Path:
    """A project directory holding one empty package."""
    build_file_tree(root, {f"{package}/__init__.py": ""})
    return root


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and directory (None) under `root`, for byte-for-byte comparisons."""
    return {
        path.relative_to(root).as_posix(): None if path.is_dir() else path.read_bytes()
        for path in sorted(root.rglob("*"))
    }


def stat_snapshot(root: Path) -> dict[str, tuple[int, int, bytes | None]]:
    """Like `snapshot`, plus each entry's mode and modification time in nanoseconds."""
    out: dict[str, tuple[int, int, bytes | None]] = {}
    for rel, data in snapshot(root).items():
        info = (root / rel).stat()
        out[rel] = (info.st_mode, info.st_mtime_ns, data)
    return out
