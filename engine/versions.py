"""Tell users how far their project's module is from the installed kit, and what changed between."""

from __future__ import annotations

import re

from .kit import Kit

_MIGRATION_HEADING = re.compile(r"^##\s+\[?v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\]?.*$", re.MULTILINE)


def version_key(version: str) -> tuple[tuple[int, ...], int, str]:
    """Sort key for semantic versions: a pre-release sorts before its release."""
    core, _, pre = version.partition("-")
    numbers = tuple(int(part) for part in core.split("."))
    return numbers, 0 if pre else 1, pre


def drift_notes(kit: Kit, project_version: str) -> list[str]:
    """Sentences for a project whose lock records `project_version`; empty when they agree."""
    kit_version = kit.manifest.version
    if project_version == kit_version:
        return []
    if version_key(project_version) > version_key(kit_version):
        return [
            f"this project was generated with session {project_version}, newer than the installed kit's "
            f"{kit_version}; upgrade session-kit (pip install -U session-kit) before changing it"
        ]
    between = [
        entry
        for entry in kit.changelog()
        if version_key(project_version) < version_key(entry.version) <= version_key(kit_version)
    ]
    notes = [f"this project has session {project_version}; the installed kit has {kit_version}"]
    notes += [f"changelog:\n{entry.text}" for entry in between]
    notes += [f"migration notes:\n{text}" for text in _migration_sections(kit, project_version, kit_version)]
    return notes


def _migration_sections(kit: Kit, low: str, high: str) -> list[str]:
    path = kit.root / kit.manifest.documentation["migration"]
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    matches = list(_MIGRATION_HEADING.finditer(text))
    sections = []
    for index, match in enumerate(matches):
        if version_key(low) < version_key(match.group(1)) <= version_key(high):
            end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
            section = text[match.start() : end]
            sections.append(section.split("\n## ", 1)[0].strip())
    return sections
