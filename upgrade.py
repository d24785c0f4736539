"""The upgrade workflows, top to bottom: upgrade (three-way), continue, diff, rollback.

base = the vendor snapshot recorded in the lock, ours = the project, theirs = the new render.
Everything is decided in memory first, then written in one transaction that also records
what `rollback` needs. The lock moves to the new version only when no conflict is left.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .engine.apply import Write, apply_writes, changes_disk
from .engine.context import requirements_for
from .engine.history import HistoryEntry, record_writes, rollback_writes
from .engine.merge import has_conflict_markers
from .engine.plan import unified_diff
from .engine.project import LOCK_NAME, STATE_DIR, Lock, LockedFile, ModuleLock, check_project_dir, sha256
from .engine.state import VENDOR_RECORD
from .engine.upgrade import FileUpgrade, Outcome, plan_upgrade
from .engine.versions import drift_notes
from .errors import ProjectError, RefusedOverwrite
from .generate import GenerateRequest, prepare

PENDING = PurePosixPath(STATE_DIR, "pending-upgrade.json")


@dataclass(frozen=True)
class UpgradeReport:
    """What an upgrade did (or would do); serialisable for --json."""

    module: str
    from_version: str
    to_version: str
    files: list[FileUpgrade]
    requirements: list[str]
    notes: list[str]
    warnings: list[str]
    dry_run: bool

    @property
    def conflicts(self) -> list[str]:
        return [f.path for f in self.files if f.outcome is Outcome.CONFLICT]

    @property
    def exit_code(self) -> int:
        return 1 if self.conflicts else 0

    @property
    def status(self) -> str:
        if self.conflicts:
            return "conflicts"
        if all(f.outcome in (Outcome.UNCHANGED, Outcome.KEEP_EDITED, Outcome.DELETED_BY_USER) for f in self.files):
            return "up to date" if self.from_version == self.to_version else "upgraded"
        return "dry run" if self.dry_run else "upgraded"

    def diff(self) -> str:
        chunks = []
        for f in self.files:
            new = f.write if f.write is not None else (b"" if f.delete else None)
            if new is None:
                continue
            old = f.current if f.target == f.path else None
            chunks.append(unified_diff(f.target, old, None if f.delete else new))
        return "".join(chunks)

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "status": self.status,
            "dry_run": self.dry_run,
            "exit_code": self.exit_code,
            "files": [
                {"path": f.path, "outcome": f.outcome.value, "target": f.target, "conflicts": f.conflicts}
                for f in self.files
            ],
            "conflicts": self.conflicts,
            "requirements": self.requirements,
            "notes": self.notes,
            "warnings": self.warnings,
        }


def upgrade(request: GenerateRequest) -> UpgradeReport:
    """Re-render with the installed kit (and any changed options), then merge into the project."""
    root = check_project_dir(request.project_dir)
    if (root / PENDING).is_file():
        raise RefusedOverwrite(
            "an upgrade with conflicts is not finished; resolve the conflict markers, "
            "then run `session-kit upgrade --continue`"
        )
    prepared = prepare(request, allow_framework_change=True)
    previous = prepared.previous
    if previous is None:
        name = prepared.kit.manifest.name
        raise ProjectError(f"{root / LOCK_NAME} records no {name} module; run `session-kit add module {name}` first")
    notes = drift_notes(prepared.kit, previous.version)
    files = plan_upgrade(root, previous, prepared.rendered, new_version=prepared.version)
    requirements, _ = requirements_for(prepared.kit.manifest, prepared.options.values)
    report = UpgradeReport(
        module=previous.name,
        from_version=previous.version,
        to_version=prepared.version,
        files=files,
        requirements=requirements,
        notes=notes,
        warnings=list(prepared.options.warnings),
        dry_run=request.dry_run,
    )
    if request.dry_run:
        return report

    new_module = ModuleLock(
        name=previous.name,
        version=prepared.version,
        framework=prepared.plugin.name,
        package=prepared.layout.package,
        options=dict(prepared.options.values),
        files=_locked_files(files, previous),
    )
    old_modules = prepared.lock.modules if prepared.lock else {}
    new_lock = Lock(prepared.version, {**old_modules, previous.name: new_module})
    writes = _project_writes(files)
    writes += _vendor_writes(new_module, files)
    if report.conflicts:
        pending = {"module": previous.name, "lock": new_lock.text(), "conflicts": report.conflicts}
        writes.append(Write(str(PENDING), (json.dumps(pending, indent=2, sort_keys=True) + "\n").encode()))
    else:
        writes.append(Write(LOCK_NAME, new_lock.text().encode()))
    writes = [w for w in writes if changes_disk(root, w)]
    if not writes:
        return report
    history = record_writes(root, [w.path for w in writes], previous.version, prepared.version)
    apply_writes(root, history + writes, environ=request.environ)
    return report


def continue_upgrade(project_dir: Path, *, environ: dict[str, str] | None = None) -> list[str]:
    """Finish an upgrade whose conflicts were resolved; returns the files that were in conflict."""
    root = check_project_dir(project_dir)
    path = root / PENDING
    if not path.is_file():
        raise ProjectError("no upgrade is waiting to be continued")
    pending = json.loads(path.read_text(encoding="utf-8"))
    unresolved = pending_conflicts(root)
    if unresolved:
        raise RefusedOverwrite("conflict markers remain in: " + ", ".join(unresolved))
    lock_data = json.loads(pending["lock"])
    module = lock_data["modules"][pending["module"]]
    for rel in pending["conflicts"]:
        entry = module["files"][rel]
        target = root / rel
        if entry["sha256"] == "" and target.is_file():  # an accepted edit: its resolution is accepted too
            entry["sha256"] = sha256(target.read_bytes())
    text = json.dumps(lock_data, indent=2, sort_keys=True) + "\n"
    apply_writes(root, [Write(LOCK_NAME, text.encode()), Write(str(PENDING), None)], environ=environ)
    return list(pending["conflicts"])


def pending_conflicts(root: Path) -> list[str]:
    """Files of an unfinished upgrade that still hold conflict markers."""
    path = root / PENDING
    if not path.is_file():
        return []
    pending = json.loads(path.read_text(encoding="utf-8"))
    return [rel for rel in pending["conflicts"] if _has_markers(root / rel)]


def _has_markers(path: Path) -> bool:
    return path.is_file() and has_conflict_markers(path.read_bytes())


def rollback(project_dir: Path, *, environ: dict[str, str] | None = None) -> HistoryEntry:
    """Restore the project to its state before the last upgrade."""
    root = check_project_dir(project_dir)
    entry, writes = rollback_writes(root)
    apply_writes(root, writes, environ=environ)
    return entry


@dataclass(frozen=True)
class FileDiff:
    """Project file against what the installed kit would render for it."""

    path: str
    status: str  # same | differs | missing | would add | would remove
    diff: str


def diff(request: GenerateRequest) -> list[FileDiff]:
    """For each generated file: the unified diff from the project to the installed kit's render."""
    prepared = prepare(request, allow_framework_change=True)
    root = prepared.root
    previous = prepared.previous
    known = set(previous.files) if previous else set()
    rendered = {file.path: file.data for file in prepared.rendered}
    out = []
    for rel in sorted(known | set(rendered)):
        target = root / rel
        current = target.read_bytes() if target.is_file() else None
        new = rendered.get(rel)
        if new is None:
            out.append(FileDiff(rel, "would remove", unified_diff(rel, current, None)))
        elif current is None:
            status = "missing" if rel in known else "would add"
            out.append(FileDiff(rel, status, unified_diff(rel, None, new)))
        elif current == new:
            out.append(FileDiff(rel, "same", ""))
        else:
            out.append(FileDiff(rel, "differs", unified_diff(rel, current, new)))
    return out


def _locked_files(files: list[FileUpgrade], previous: ModuleLock) -> dict[str, LockedFile]:
    """Generated hashes move to the new render; an accepted edit stays accepted through the merge.

    A file the user edited keeps showing as modified in `verify` unless they had accepted their
    edits (`modules lock --overwrite`) before the upgrade; then the merged result is accepted too.
    """
    locked: dict[str, LockedFile] = {}
    for f in files:
        if f.generated is None:  # dropped by the kit: no longer a generated file
            continue
        generated = sha256(f.generated)
        accepted = generated
        before = previous.files.get(f.path)
        if f.outcome is Outcome.DELETED_BY_USER and before is not None:
            accepted = before.sha256  # still missing: verify keeps saying so
        elif before is not None and f.current is not None and _accepted_edit(before, f.current):
            result = f.accepted
            accepted = sha256(result) if result is not None and f.outcome is not Outcome.CONFLICT else ""
        locked[f.path] = LockedFile(accepted, generated, f.template)
    return locked


def _accepted_edit(before: LockedFile, current: bytes) -> bool:
    return before.sha256 != before.generated_sha256 and sha256(current) == before.sha256


def _project_writes(files: list[FileUpgrade]) -> list[Write]:
    writes = []
    for f in files:
        if f.delete:
            writes.append(Write(f.path, None))
        elif f.write is not None:
            writes.append(Write(f.target, f.write))
    return writes


def _vendor_writes(module: ModuleLock, files: list[FileUpgrade]) -> list[Write]:
    vendor = module.vendor
    writes = [Write(str(vendor / f.path), f.generated) for f in files if f.generated is not None]
    record = json.dumps(module.to_json(), indent=2, sort_keys=True) + "\n"
    writes.append(Write(str(vendor / VENDOR_RECORD), record.encode()))
    return writes
