"""Where the kit's own files are, and the check that its three versions agree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..errors import VersionDrift
from .render import Renderer
from .spec import ModuleManifest, OptionSpecSet, load_manifest, load_option_specs

KIT_ROOT = Path(__file__).resolve().parent.parent
_VERSION_LINE = re.compile(r'^__version__\s*=\s*["\']([^"\']+)["\']', re.MULTILINE)
_CHANGELOG_HEADING = re.compile(r"^##\s+\[?v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\]?", re.MULTILINE)


@dataclass(frozen=True)
class ChangelogEntry:
    """One `## <version>` section of docs/changelog.md."""

    version: str
    text: str


@dataclass(frozen=True)
class Kit:
    """A session-kit tree: the installed package, or a copy of it in tests."""

    root: Path = KIT_ROOT

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @cached_property
    def renderer(self) -> Renderer:
        return Renderer(self.templates_dir)

    @cached_property
    def manifest(self) -> ModuleManifest:
        return load_manifest(self.root / "module.yaml", self.options)

    @cached_property
    def options(self) -> OptionSpecSet:
        return load_option_specs(self.root / "config" / "base.yaml")

    @cached_property
    def package_version(self) -> str:
        init = self.root / "__init__.py"
        match = _VERSION_LINE.search(init.read_text(encoding="utf-8"))
        if match is None:
            raise VersionDrift(f"{init}: no __version__ = '...' line")
        return match.group(1)

    def changelog(self) -> list[ChangelogEntry]:
        """Entries of docs/changelog.md, newest first."""
        path = self.root / self.manifest.documentation["changelog"]
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        matches = list(_CHANGELOG_HEADING.finditer(text))
        entries = []
        for index, match in enumerate(matches):
            end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
            entries.append(ChangelogEntry(match.group(1), text[match.start() : end].strip()))
        return entries

    def check_versions(self) -> str:
        """The agreed version; VersionDrift naming each source when they differ."""
        module = self.manifest.version
        entries = self.changelog()
        newest = entries[0].version if entries else None
        package = self.package_version
        if package == module == newest:
            return module
        changelog = self.root / self.manifest.documentation["changelog"]
        raise VersionDrift(
            "versions disagree: "
            f"package __version__ is {package} ({self.root / '__init__.py'}), "
            f"module.yaml version is {module} ({self.manifest.path}), "
            f"newest changelog entry is {newest or 'missing'} ({changelog}). "
            "Bump all three together."
        )
