"""Build throw-away copies of the kit: a "current" one and a "next version" with changed templates."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from helpers import referenced_templates

from session_kit.engine.kit import KIT_ROOT, Kit

_IGNORE = shutil.ignore_patterns(".git", "tests", "templates", "__pycache__", "*.egg-info", ".venv", "build", "bench")

TemplateBody = Callable[[str], str]


def stand_in_body(template: str, lines: int = 12) -> str:
    """A small template: a header that uses the context, then numbered lines."""
    body = "".join(f"line {n} of {template}\n" for n in range(lines))
    return f"# {{{{ package }}}}: {template}\n{body}"


def build_kit(
    root: Path,
    *,
    version: str = "0.1.0",
    bodies: Mapping[str, str] | None = None,
    real_templates: bool = False,
) -> Kit:
    """A kit copy at `root` with `version` everywhere it must agree, and chosen template bodies."""
    shutil.copytree(KIT_ROOT, root, ignore=_IGNORE)
    if real_templates:
        shutil.copytree(KIT_ROOT / "templates", root / "templates")
    kit = Kit(root)
    for name in referenced_templates(kit):
        path = root / "templates" / name
        if real_templates and bodies is None:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        body = bodies.get(name) if bodies is not None else None
        if body is None and not path.exists():
            body = stand_in_body(name)
        if body is not None:
            path.write_text(body, encoding="utf-8")
    set_version(root, version)
    return Kit(root)


def set_version(root: Path, version: str) -> None:
    """Bump the package, module.yaml and the changelog together."""
    init = root / "__init__.py"
    init.write_text(f'"""session-kit (test copy)."""\n\n__version__ = "{version}"\n', encoding="utf-8")
    manifest = root / "module.yaml"
    lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
    manifest.write_text("".join(f"version: {version}\n" if ln.startswith("version:") else ln for ln in lines))
    changelog = root / "docs" / "changelog.md"
    text = changelog.read_text(encoding="utf-8")
    newest = text.split("\n## ", 1)[1] if "\n## " in text else ""
    if not newest.startswith(f"{version} "):  # the version must be the newest entry
        head, sep, rest = text.partition("\n## ")
        entry = f"\n## {version} — 2026-12-01\n\n- Test release {version}: templates changed.\n"
        changelog.write_text(head + entry + sep + rest, encoding="utf-8")
    migration = root / "docs" / "migration.md"
    text = migration.read_text(encoding="utf-8")
    newest = text.split("\n## ", 1)[1] if "\n## " in text else ""
    if not newest.startswith(f"{version}\n"):
        head, sep, rest = text.partition("\n## ")
        migration.write_text(head + f"\n## {version}\n\nRe-run your tests after upgrading to {version}.\n" + sep + rest)


def new_project(root: Path) -> Path:
    """An empty project with an `app` package."""
    (root / "app").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    return root


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `root` with its bytes and mode, for byte-for-byte comparisons."""
    return {
        path.relative_to(root).as_posix(): (path.read_bytes(), path.stat().st_mode)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
