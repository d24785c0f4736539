"""A fingerprint of the template tree per module version, so templates cannot change silently.

config/releases.yaml maps each module version to the sha256 of its templates/ tree and says
whether it was released. An unreleased version's fingerprint may be recorded again while its
templates are still being worked on; a released one is frozen: templates that differ from it
need a new version (and a changelog entry). `modules vet` and the test suite fail whenever the
current templates do not match what is recorded for the current version.

The fingerprint hashes, for every file under templates/ in sorted order, its relative POSIX path
and the sha256 of its bytes, so renames, additions, removals and edits all change it while the
checkout's location, timestamps and modes do not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ReleaseError, SpecError
from .kit import Kit
from .statecheck import SEMVER
from .versions import version_key
from .yamlfile import load_yaml

RELEASES = Path("config", "releases.yaml")
_IGNORED = {"__pycache__", ".DS_Store"}
_HEADER = """\
# Fingerprints of the template tree (templates/) per module version; see engine/fingerprint.py.
# Written by `session-kit modules vet --record-fingerprint` (add --release when the version ships).
# A released version's fingerprint never changes: changed templates need a new version.
"""


@dataclass(frozen=True)
class Release:
    """One version's recorded fingerprint."""

    version: str
    templates: str  # "sha256:<hex>"
    released: bool


def template_fingerprint(templates_dir: Path) -> str:
    """The fingerprint of every file under `templates_dir`."""
    digest = hashlib.sha256()
    files = sorted(
        (path.relative_to(templates_dir).as_posix(), path)
        for path in templates_dir.rglob("*")
        if path.is_file() and not _IGNORED.intersection(path.relative_to(templates_dir).parts)
    )
    for rel, path in files:
        digest.update(rel.encode("utf-8") + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return f"sha256:{digest.hexdigest()}"


def read_releases(kit: Kit) -> dict[str, Release]:
    """The recorded releases; an absent file is an empty record, a malformed one a SpecError."""
    path = kit.root / RELEASES
    if not path.is_file():
        return {}
    doc = load_yaml(path)
    body = doc.data if doc.data is not None else {}
    if not isinstance(body, dict) or not isinstance(body.get("releases") or {}, dict):
        raise doc.error(("releases",), "must be a mapping of version: {templates, released}")
    out: dict[str, Release] = {}
    for version, entry in (body.get("releases") or {}).items():
        key = ("releases", str(version))
        if not SEMVER.fullmatch(str(version)):
            raise doc.error(key, f"{version!r} is not a version (MAJOR.MINOR.PATCH)")
        if not isinstance(entry, dict) or set(entry) != {"templates", "released"}:
            raise doc.error(key, "must have exactly the keys templates and released")
        templates, released = entry["templates"], entry["released"]
        if not isinstance(templates, str) or not templates.startswith("sha256:") or len(templates) != 71:
            raise doc.error((*key, "templates"), "must be sha256:<64 hex digits>")
        if not isinstance(released, bool):
            raise doc.error((*key, "released"), "must be true or false")
        out[str(version)] = Release(str(version), templates, released)
    return out


def check_fingerprint(kit: Kit) -> str:
    """A sentence for vet's passed list; SpecError when the current templates are not recorded."""
    version = kit.manifest.version
    current = template_fingerprint(kit.templates_dir)
    where = kit.root / RELEASES
    recorded = read_releases(kit).get(version)
    if recorded is None:
        raise SpecError(
            where,
            f"no template fingerprint is recorded for {version}; run `session-kit modules vet --record-fingerprint`",
            key=f"releases.{version}",
        )
    if recorded.templates != current:
        advice = (
            f"{version} is released, so bump the version in module.yaml and __init__.py, add a changelog entry, "
            "then run `session-kit modules vet --record-fingerprint`"
            if recorded.released
            else "record them with `session-kit modules vet --record-fingerprint` (and say what changed in the "
            f"changelog entry for {version})"
        )
        raise SpecError(
            where,
            f"the templates changed since their fingerprint for {version} was recorded ({current}); {advice}",
            key=f"releases.{version}.templates",
        )
    state = "released" if recorded.released else "unreleased"
    return f"templates match the fingerprint recorded for {version} ({state})"


def record_fingerprint(kit: Kit, *, release: bool = False) -> Release:
    """Record the current templates for the current version; ReleaseError for a released version."""
    version = kit.manifest.version
    releases = read_releases(kit)
    current = template_fingerprint(kit.templates_dir)
    existing = releases.get(version)
    if existing is not None and existing.released and existing.templates != current:
        raise ReleaseError(
            f"{kit.root / RELEASES}: {version} is released with templates {existing.templates}, "
            f"and the templates now differ ({current}). A released version never changes: bump the module "
            "version (module.yaml, __init__.py), add its changelog entry, then record again."
        )
    if version not in {entry.version for entry in kit.changelog()}:
        raise ReleaseError(f"docs/changelog.md has no entry for {version}; write it before recording {version}")
    entry = Release(version, current, release or (existing is not None and existing.released))
    releases[version] = entry
    (kit.root / RELEASES).write_text(_render(releases), encoding="utf-8")
    return entry


def _render(releases: dict[str, Release]) -> str:
    lines = [_HEADER, "releases:\n"]
    for version in sorted(releases, key=version_key, reverse=True):
        entry = releases[version]
        lines.append(f"  {version}:\n    templates: {entry.templates}\n    released: {str(entry.released).lower()}\n")
    return "".join(lines)
