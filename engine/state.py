"""Project state against the lock: `modules verify` (drift) and `modules lock` (accept the disk)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import ProjectError, RefusedOverwrite
from .project import LOCK_NAME, STATE_DIR, Lock, LockedFile, ModuleLock, read_lock, sha256
from .statecheck import SHA256, Checker

VENDOR_RECORD = "module.json"
_IGNORED_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


@dataclass(frozen=True)
class Finding:
    """One file that differs from the lock."""

    path: str
    status: str  # modified | missing | unexpected | vendor-modified | vendor-missing | wrong-accepted-hash
    # | conflict | upgradable
    module: str
    detail: str = ""

    @property
    def blocking(self) -> bool:
        """Drift from the lock; "upgradable" only says the installed kit renders something newer."""
        return self.status != "upgradable"


@dataclass(frozen=True)
class VerifyReport:
    """Every drift found; empty means the project matches its lock."""

    findings: list[Finding] = field(default_factory=list)
    checked: int = 0

    @property
    def drift(self) -> list[Finding]:
        return [f for f in self.findings if f.blocking]

    @property
    def upgradable(self) -> list[Finding]:
        return [f for f in self.findings if not f.blocking]

    @property
    def exit_code(self) -> int:
        return 1 if self.drift else 0

    def with_findings(self, extra: list[Finding]) -> VerifyReport:
        return VerifyReport([*self.findings, *extra], self.checked)

    def with_conflicts(self, paths: list[str]) -> VerifyReport:
        """The same report plus files of an unfinished upgrade that still hold conflict markers."""
        return self.with_findings([Finding(path, "conflict", "session") for path in paths])

    def to_json(self) -> dict[str, object]:
        return {
            "ok": not self.drift,
            "checked": self.checked,
            "findings": [
                {"path": f.path, "status": f.status, "module": f.module, **({"detail": f.detail} if f.detail else {})}
                for f in self.drift
            ],
            "upgradable": [f.path for f in self.upgradable],
        }


def require_lock(root: Path) -> Lock:
    """The project's lock, or a ProjectError explaining how to get one."""
    lock = read_lock(root)
    if lock is None:
        raise ProjectError(f"{root / LOCK_NAME} not found; run `session-kit add module session` first")
    return lock


def verify(root: Path) -> VerifyReport:
    """Re-hash every file the lock records, in the project and in the vendor snapshot."""
    lock = require_lock(root)
    findings: list[Finding] = []
    checked = 0
    for module in lock.modules.values():
        for rel, locked in sorted(module.files.items()):
            checked += 2
            if not SHA256.fullmatch(locked.sha256):
                findings.append(_wrong_accepted_hash(rel, locked, module.name))
            else:
                findings.extend(_check(root / rel, rel, locked.sha256, module.name, ""))
            vendor_rel = str(module.vendor / rel)
            findings.extend(_check(root / vendor_rel, vendor_rel, locked.generated_sha256, module.name, "vendor-"))
        findings.extend(_unexpected(root, module))
    return VerifyReport(findings, checked)


def _wrong_accepted_hash(rel: str, locked: LockedFile, module: str) -> Finding:
    detail = (
        f"the lock's accepted sha256 {locked.sha256!r} is not a sha256 hex digest; "
        "`session-kit modules lock --overwrite` records the file as it is now"
    )
    return Finding(rel, "wrong-accepted-hash", module, detail)


def _check(path: Path, rel: str, expected: str, module: str, prefix: str) -> list[Finding]:
    if not path.is_file():
        return [Finding(rel, f"{prefix}missing", module)]
    if sha256(path.read_bytes()) != expected:
        return [Finding(rel, f"{prefix}modified", module)]
    return []


def _unexpected(root: Path, module: ModuleLock) -> list[Finding]:
    """Files inside the generated folders or the vendor snapshot that the lock does not know."""
    recorded = set(module.files)
    folders = {PurePosixPath(rel).parent for rel in recorded}
    # Only the topmost folders the module owns (its package and test folders); their subfolders are walked.
    owned = {folder for folder in folders if not any(folder != other and other in folder.parents for other in folders)}
    found: list[Finding] = []
    for folder in sorted(owned):
        for path in sorted((root / folder).rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and rel not in recorded and not _ignored(path) and not rel.endswith(".orig"):
                found.append(Finding(rel, "unexpected", module.name))
    vendor = root / module.vendor
    if vendor.is_dir():
        for path in sorted(vendor.rglob("*")):
            rel = path.relative_to(vendor).as_posix()
            if path.is_file() and rel not in recorded and rel != VENDOR_RECORD:
                found.append(Finding(path.relative_to(root).as_posix(), "unexpected", module.name))
    return found


def _ignored(path: Path) -> bool:
    return bool(_IGNORED_PARTS.intersection(path.parts)) or path.suffix in (".pyc", ".pyo")


def relock(root: Path, kit_version: str, *, overwrite: bool) -> Lock:
    """A lock built from the disk: each generated file's current hash becomes the accepted one.

    The list of files and the options come from the existing lock or, when it is gone,
    from the record kept beside the newest vendor snapshot.
    """
    existing = read_lock(root)
    if existing is not None and not overwrite:
        raise RefusedOverwrite(f"{root / LOCK_NAME} exists; pass --overwrite to rewrite it from the files on disk")
    modules = dict(existing.modules) if existing else _modules_from_vendor(root)
    if not modules:
        raise ProjectError(f"nothing to lock: no {LOCK_NAME} and no vendor snapshot under {root / STATE_DIR}")
    relocked: dict[str, ModuleLock] = {}
    for name, module in modules.items():
        files: dict[str, LockedFile] = {}
        for rel, locked in module.files.items():
            path = root / rel
            if not path.is_file():
                raise ProjectError(f"{rel} is recorded for module {name} but missing; restore it before locking")
            files[rel] = LockedFile(sha256(path.read_bytes()), locked.generated_sha256, locked.template)
        relocked[name] = ModuleLock(name, module.version, module.framework, module.package, module.options, files)
    return Lock(existing.kit_version if existing else kit_version, relocked)


def _modules_from_vendor(root: Path) -> dict[str, ModuleLock]:
    modules: dict[str, ModuleLock] = {}
    vendor_base = root / STATE_DIR / "vendor"
    if not vendor_base.is_dir():
        return modules
    for module_dir in sorted(p for p in vendor_base.iterdir() if p.is_dir()):
        records = sorted(module_dir.glob(f"*/{VENDOR_RECORD}"), key=lambda p: _semver_key(p.parent.name))
        if records:
            modules[module_dir.name] = _read_vendor_record(module_dir.name, records[-1])
    return modules


def _read_vendor_record(name: str, path: Path) -> ModuleLock:
    check = Checker(path, "Restore .session-kit/vendor/ from version control.")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise check.fail("", f"damaged vendor record ({exc})") from None
    return ModuleLock.from_json(name, raw, check, "")


def _semver_key(version: str) -> tuple[int, ...]:
    core = version.split("-", 1)[0]
    return tuple(int(part) if part.isdigit() else 0 for part in core.split("."))
