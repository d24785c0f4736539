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
from .engine.guard import guarded
from .engine.history import HistoryEntry, record_writes, rollback_writes
from .engine.merge import has_conflict_markers
from .engine.plan import unified_diff
from .engine.project import LOCK_NAME, STATE_DIR, Lock, LockedFile, ModuleLock, check_project_dir, sha256
from .engine.state import VENDOR_RECORD, Finding, VerifyReport, require_lock, verify
from .engine.statecheck import Checker
from .engine.upgrade import FileUpgrade, Outcome, plan_upgrade
from .engine.versions import drift_notes
from .errors import KitError, ProjectError, RefusedOverwrite
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


def upgrade(request: GenerateRequest, *, allow_framework_change: bool = True) -> UpgradeReport:
    """Re-render with the installed kit (and any changed options), then merge into the project.

    The whole run holds the project's exclusive lock: what is read (lock, vendor snapshot,
    history) cannot change before what is decided from it is written.
    """
    root = check_project_dir(request.project_dir)
    with guarded(root, write=not request.dry_run):
        return _upgrade(root, request, allow_framework_change)


def _upgrade(root: Path, request: GenerateRequest, allow_framework_change: bool) -> UpgradeReport:
    if read_pending(root) is not None:
        raise RefusedOverwrite(
            "an upgrade with conflicts is not finished; resolve the conflict markers, "
            "then run `session-kit upgrade --continue` (or `session-kit rollback` to undo it)"
        )
    prepared = prepare(request, allow_framework_change=allow_framework_change)
    previous = prepared.previous
    if previous is None:
        name = prepared.kit.manifest.name
        raise ProjectError(f"{root / LOCK_NAME} records no {name} module; run `session-kit add module {name}` first")
    notes = [*prepared.notes, *drift_notes(prepared.kit, previous.version)]
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
    label = f"upgrade of {previous.name} {previous.version} → {prepared.version}"
    apply_writes(root, history + writes, environ=request.environ, kind="upgrade", label=label)
    return report


def continue_upgrade(project_dir: Path, *, environ: dict[str, str] | None = None) -> list[str]:
    """Finish an upgrade whose conflicts were resolved; returns the files that were in conflict."""
    root = check_project_dir(project_dir)
    with guarded(root, write=True):
        pending = read_pending(root)
        if pending is None:
            raise ProjectError("no upgrade is waiting to be continued")
        unresolved = [rel for rel in pending.conflicts if _has_markers(root / rel)]
        if unresolved:
            raise RefusedOverwrite("conflict markers remain in: " + ", ".join(unresolved))
        lock_data = json.loads(pending.lock_text)
        module = lock_data["modules"][pending.module]
        for rel in pending.conflicts:
            entry = module["files"][rel]
            target = root / rel
            if entry["sha256"] == "" and target.is_file():  # an accepted edit: its resolution is accepted too
                entry["sha256"] = sha256(target.read_bytes())
        text = json.dumps(lock_data, indent=2, sort_keys=True) + "\n"
        writes = [Write(LOCK_NAME, text.encode()), Write(str(PENDING), None)]
        label = f"upgrade --continue of {pending.module} {pending.version}"
        apply_writes(root, writes, environ=environ, kind="continue", label=label)
        return list(pending.conflicts)


@dataclass(frozen=True)
class Pending:
    """pending-upgrade.json: the lock an upgrade with conflicts will write once they are resolved."""

    module: str
    version: str
    lock_text: str
    conflicts: list[str]


_PENDING_REMEDY = (
    "Run `session-kit rollback` to undo the unfinished upgrade (it restores every file it touched and "
    "removes this file), or restore the file from version control."
)


def read_pending(root: Path) -> Pending | None:
    """The unfinished upgrade, None when there is none; DamagedState naming the key when damaged."""
    path = root / PENDING
    if not path.is_file():
        return None
    check = Checker(path, _PENDING_REMEDY)
    raw = check.read_json("record of an unfinished upgrade")
    body = check.mapping(raw, "(top level)")
    name = check.string(check.field(body, "module", ""), "module")
    lock_text = check.string(check.field(body, "lock", ""), "lock")
    conflicts = check.strings(check.field(body, "conflicts", ""), "conflicts")
    try:
        lock_raw = json.loads(lock_text)
    except json.JSONDecodeError as exc:
        raise check.fail("lock", f"not the JSON text of a lock ({exc})") from None
    modules = check.mapping(check.field(check.mapping(lock_raw, "lock"), "modules", "lock"), "lock.modules")
    if name not in modules:
        raise check.fail("lock.modules", f"has no entry for module {name!r}")
    module = ModuleLock.from_json(name, modules[name], check, f"lock.modules.{name}")
    for rel in conflicts:
        check.relative_path(rel, "conflicts")
        if rel not in module.files:
            raise check.fail("conflicts", f"{rel} is not a file of module {name} in the pending lock")
    return Pending(name, module.version, lock_text, conflicts)


def pending_conflicts(root: Path) -> list[str]:
    """Files of an unfinished upgrade that still hold conflict markers."""
    pending = read_pending(root)
    if pending is None:
        return []
    return [rel for rel in pending.conflicts if _has_markers(root / rel)]


def _has_markers(path: Path) -> bool:
    return path.is_file() and has_conflict_markers(path.read_bytes())


def rollback(project_dir: Path, *, environ: dict[str, str] | None = None) -> HistoryEntry:
    """Restore the project to its state before the last upgrade."""
    root = check_project_dir(project_dir)
    with guarded(root, write=True):
        entry, writes = rollback_writes(root)
        label = f"rollback of the upgrade {entry.from_version} → {entry.to_version}"
        apply_writes(root, writes, environ=environ, kind="rollback", label=label)
        return entry


@dataclass(frozen=True)
class VerifyResult:
    """`modules verify`: drift from the lock, upgradable files, and notes on versions."""

    report: VerifyReport
    notes: list[str]


def verify_project(request: GenerateRequest) -> VerifyResult:
    """Drift from the lock, plus files the user left alone that the installed kit renders differently.

    The second part is why the version string alone is not trusted: a kit whose templates
    changed under one version still shows its changes here.
    """
    root = check_project_dir(request.project_dir)
    with guarded(root, write=False):
        report = verify(root)
        unresolved = pending_conflicts(root)
        if unresolved:
            report = report.with_conflicts(unresolved)
        lock = require_lock(root)
        notes = [note for module in lock.modules.values() for note in drift_notes(request.kit, module.version)]
        try:
            report = report.with_findings(_upgradable(request))
        except KitError as exc:
            notes.append(f"the installed kit's render could not be compared: {exc}")
    return VerifyResult(report, notes)


def _upgradable(request: GenerateRequest) -> list[Finding]:
    prepared = prepare(request, allow_framework_change=True)
    previous = prepared.previous
    if previous is None:
        return []
    found = []
    for file in prepared.rendered:
        locked = previous.files.get(file.path)
        target = prepared.root / file.path
        if locked is None or not target.is_file():
            continue
        current = target.read_bytes()
        if current != file.data and sha256(current) == locked.generated_sha256:
            found.append(Finding(file.path, "upgradable", previous.name))
    return found


@dataclass(frozen=True)
class FileDiff:
    """Project file against what the installed kit would render for it."""

    path: str
    status: str  # same | differs | missing | would add | would remove
    diff: str


def diff(request: GenerateRequest) -> list[FileDiff]:
    """For each generated file: the unified diff from the project to the installed kit's render."""
    with guarded(check_project_dir(request.project_dir), write=False):
        return _diff(request)


def _diff(request: GenerateRequest) -> list[FileDiff]:
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
