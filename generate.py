"""The generation workflow, top to bottom: load, resolve, render, plan, apply, record.

The CLI is a thin layer over `generate()`; tests call it directly too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .engine.apply import Write, apply_writes, changes_disk
from .engine.context import build_context, requirements_for, select_templates
from .engine.detect import FrameworkDetection, detect_framework, detect_package
from .engine.guard import guarded
from .engine.hoststyle import restyle
from .engine.kit import Kit
from .engine.options import ResolvedOptions, check_hook_changes, parse_assignments, read_answers_file, resolve
from .engine.plan import Action, FilePlan, build_plan
from .engine.project import (
    LOCK_NAME,
    Lock,
    LockedFile,
    ModuleLock,
    ProjectLayout,
    check_project_dir,
    read_lock,
    resolve_layout,
    sha256,
)
from .engine.spec import OptionSpec, OptionSpecSet
from .engine.state import VENDOR_RECORD
from .engine.testreqs import imported_requirements
from .engine.versions import version_key
from .errors import OptionError, ProjectError, UserError
from .frameworks import PLUGINS, FrameworkPlugin, RenderedFile, get_plugin
from .overrides import environment_overrides, load_hooks

# Asks the user for one option; receives the spec and the value it would otherwise get.
Prompter = Callable[[OptionSpec, Any], Any]


@dataclass(frozen=True)
class GenerateRequest:
    """Everything `session-kit add module` was asked to do."""

    project_dir: Path
    module: str = "session"
    framework: str | None = None
    package: str | None = None
    assignments: Sequence[str] = ()
    answers_file: Path | None = None
    force: bool = False
    dry_run: bool = False
    environ: Mapping[str, str] | None = None
    prompter: Prompter | None = None
    kit: Kit = field(default_factory=Kit)


@dataclass(frozen=True)
class GenerateReport:
    """What happened (or would happen, for a dry run); serialisable for --json."""

    module: str
    version: str
    framework: str
    package: str
    status: str
    files: list[FilePlan]
    options: Mapping[str, Any]
    requirements: list[str]
    test_requirements: list[str]
    next_steps: list[str]
    warnings: list[str]
    dry_run: bool
    # What was found in the project, one line per subject ({"framework": "flask (...)"}).
    detected: Mapping[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if any(plan.blocking for plan in self.files) else 0

    def diff(self) -> str:
        return "".join(plan.diff() for plan in self.files)

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "version": self.version,
            "framework": self.framework,
            "package": self.package,
            "status": self.status,
            "dry_run": self.dry_run,
            "exit_code": self.exit_code,
            "files": [{"path": p.path, "action": p.action.value, "blocking": p.blocking} for p in self.files],
            "options": dict(self.options),
            "requirements": self.requirements,
            "test_requirements": self.test_requirements,
            "next_steps": self.next_steps,
            "warnings": self.warnings,
            "detected": dict(self.detected),
            "notes": self.notes,
        }


@dataclass(frozen=True)
class Prepared:
    """Steps 1-6 done: the kit loaded, options resolved, every file rendered in memory."""

    kit: Kit
    version: str
    root: Path
    lock: Lock | None
    previous: ModuleLock | None
    layout: ProjectLayout
    options: ResolvedOptions
    plugin: FrameworkPlugin
    rendered: list[RenderedFile]
    detected: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def prepare(request: GenerateRequest, *, allow_framework_change: bool = False) -> Prepared:
    """Load, resolve and render; nothing is written."""
    # 1. The kit: both YAML files valid, versions in agreement.
    kit = request.kit
    version = kit.check_versions()
    manifest, spec = kit.manifest, kit.options
    if request.module != manifest.name:
        raise UserError(f"unknown module {request.module!r}; available modules: {manifest.name}")

    # The project, and what an earlier run recorded there.
    root = check_project_dir(request.project_dir)
    _refuse_kit_tree(root, kit)
    lock = read_lock(root)
    previous = lock.modules.get(manifest.name) if lock else None
    if previous and request.package and request.package != previous.package:
        raise ProjectError(
            f"the {manifest.name} module is already generated into package {previous.package} "
            f"({root / LOCK_NAME}); re-run without --package or with --package {previous.package}"
        )
    if previous and version_key(previous.version) > version_key(version):
        raise ProjectError(
            f"this project's {manifest.name} module is {previous.version}, newer than the installed kit's {version}; "
            "upgrade session-kit (pip install -U session-kit) before changing it"
        )
    detected: dict[str, str] = {}
    package = request.package or (previous.package if previous else None)
    if package is None:
        found = detect_package(root, [plugin.signature for plugin in PLUGINS.values()])
        package = found.package
        detected["package"] = f"{package} ({found.reason})"
    elif previous is None:
        detected["package"] = f"{package} (from --package)"
    layout = resolve_layout(root, package)
    # A generated project's lock already says which framework it uses.
    detection = None if previous else detect_framework(root, {n: p.signature for n, p in PLUGINS.items()})

    # 2-3. Options: default < detected < lock < answers file < SESSION_KIT_* < --set < before_render hook.
    env = environment_overrides(spec, request.environ)
    answers = read_answers_file(request.answers_file, spec) if request.answers_file else {}
    assignments = parse_assignments(list(request.assignments), spec)
    if request.framework is not None:
        get_plugin(request.framework)
        assignments["framework"] = request.framework
    layers: dict[str, Any] = {
        "base": previous.options if previous else None,
        "answers": answers,
        "environment": env.values,
        "assignments": assignments,
        "warnings": env.warnings,
        "detected": {"framework": detection.chosen} if detection and detection.chosen else None,
    }
    options = resolve(spec, **layers)
    if request.prompter is not None:
        options, answered = _ask(spec, options, _explain_framework(request.prompter, detection), layers)
        layers["assignments"] = {**assignments, **answered}
    hooks = load_hooks(root, request.environ)
    changes = hooks.before_render(options.values)
    if changes:
        check_hook_changes(changes, spec)
        prompted = {name for name, source in options.sources.items() if source == "prompt"}
        options = resolve(spec, **layers, hooks=changes)
        kept = {name: "prompt" for name in prompted if options.sources[name] == "--set"}
        options = replace(options, sources={**options.sources, **kept})
    if detection is not None:
        _refuse_ambiguity(detection, options)
    framework = str(options.values["framework"])
    if previous and previous.framework != framework and not allow_framework_change:
        raise ProjectError(
            f"package {previous.package} already holds the {manifest.name} module for {previous.framework}, "
            f"and a package holds one framework's module, so {framework} cannot be added beside it. "
            f"To switch {previous.package} from {previous.framework} to {framework}, run "
            f"`session-kit upgrade --set framework={framework}` (your edits are merged; files only "
            f"{previous.framework} used are removed unless you edited them)."
        )
    plugin = get_plugin(framework)

    # 4-6. Render core + adapter through the framework plugin.
    templates = select_templates(manifest, plugin, options.values)
    context = build_context(kit, layout, plugin, options.values, version)
    # In the host's own style (its ruff or black configuration), so its tools find nothing to change.
    rendered, style_notes = restyle(root, plugin.render(kit.renderer, templates, context, layout, hooks))
    _refuse_kit_outputs(root, kit, rendered)
    if detection is not None:
        detected = {"framework": _framework_line(detection, options, request), **detected}
    notes = (*(detection.notes if detection else ()), *options.notices, *style_notes)
    return Prepared(kit, version, root, lock, previous, layout, options, plugin, rendered, detected, notes)


def _framework_line(detection: FrameworkDetection, options: ResolvedOptions, request: GenerateRequest) -> str:
    """One line on where the framework came from, and what the project suggested if that differs."""
    name, source = str(options.values["framework"]), options.sources["framework"]
    if source == "detected":
        return f"{name} ({'; '.join(detection.evidence[name])})"
    if source == "default":
        return f"{name} (the default: {detection.describe()}; --framework chooses another)"
    given = {"--set": "--framework" if request.framework else "--set", "prompt": "your answer"}.get(source, source)
    others = {other: items for other, items in detection.evidence.items() if other != name}
    if not others:
        return f"{name} (from {given})"
    return f"{name} (from {given}; the project also names {FrameworkDetection(None, others).describe()})"


def _refuse_ambiguity(detection: FrameworkDetection, options: ResolvedOptions) -> None:
    """Several frameworks found and none chosen by the user: guessing would generate the wrong code."""
    if detection.ambiguous and options.sources["framework"] == "default":
        names = list(detection.evidence)
        raise OptionError(
            f"cannot tell which framework the project uses: {detection.describe()}; "
            f"pass --framework ({' or '.join(names)}), --set framework=NAME or SESSION_KIT_FRAMEWORK"
        )


def _explain_framework(prompter: Prompter, detection: FrameworkDetection | None) -> Prompter:
    """A prompter that, asked for the framework, shows what was found and suggests the first."""
    if detection is None or not detection.evidence:
        return prompter

    def ask(option: OptionSpec, default: Any) -> Any:
        if option.name != "framework":
            return prompter(option, default)
        hinted = replace(option, help=f"Found {detection.describe()}.")
        return prompter(hinted, next(iter(detection.evidence)))

    return ask


def generate(request: GenerateRequest) -> GenerateReport:
    """Run the whole workflow for one module into one project, holding the project's lock."""
    with guarded(check_project_dir(request.project_dir), write=not request.dry_run):
        return _generate(request)


def _generate(request: GenerateRequest) -> GenerateReport:
    prepared = prepare(request)
    root, previous, layout, plugin = prepared.root, prepared.previous, prepared.layout, prepared.plugin
    manifest = prepared.kit.manifest
    values = dict(prepared.options.values)

    # 7. Plan against the disk and the previous lock.
    plans = build_plan(root, prepared.rendered, previous, request.force)
    requirements, test_requirements = requirements_for(manifest, values)
    # Only what this project's generated tests import (Flask's tests need neither httpx nor hypothesis).
    test_requirements = imported_requirements(test_requirements, prepared.rendered, layout.tests_dir)
    report = GenerateReport(
        module=manifest.name,
        version=prepared.version,
        framework=plugin.name,
        package=layout.package,
        status=_status(plans, previous, request.dry_run),
        files=plans,
        options=values,
        requirements=requirements,
        test_requirements=test_requirements,
        next_steps=plugin.next_steps(layout),
        warnings=list(prepared.options.warnings),
        dry_run=request.dry_run,
        detected=prepared.detected,
        notes=list(prepared.notes),
    )
    if request.dry_run or report.status == "refused":
        return report

    # 8. Apply atomically: project files, vendor snapshot, record, lock.
    module_lock = ModuleLock(
        name=manifest.name,
        version=prepared.version,
        framework=plugin.name,
        package=layout.package,
        options=values,
        files={p.path: _locked(p, previous) for p in plans},
    )
    lock = prepared.lock
    new_lock = Lock(prepared.version, {**(lock.modules if lock else {}), manifest.name: module_lock})
    writes = _writes(root, plans, previous, module_lock, new_lock)
    if writes:
        label = f"add of {manifest.name} {prepared.version}"
        apply_writes(root, writes, environ=request.environ, kind="add", label=label)
    return report


def _locked(plan: FilePlan, previous: ModuleLock | None) -> LockedFile:
    """The lock entry after this run.

    A skipped (user-edited) file keeps its previous generated hash and vendor copy, so the
    next upgrade still merges the kit's new content into it from the right base.
    """
    before = previous.files.get(plan.path) if previous else None
    if plan.action is Action.SKIP_MODIFIED and before is not None:
        return LockedFile(plan.accepted_sha256, before.generated_sha256, before.template)
    return LockedFile(plan.accepted_sha256, sha256(plan.file.data), plan.file.template)


def _writes(
    root: Path, plans: list[FilePlan], previous: ModuleLock | None, module_lock: ModuleLock, lock: Lock
) -> list[Write]:
    """Only what differs from the disk, so an up-to-date project is not touched."""
    writes: list[Write] = []
    for plan in plans:
        if plan.keeps_copy and plan.current is not None:
            writes.append(Write(f"{plan.path}.orig", plan.current))
        if plan.action.writes:
            writes.append(Write(plan.path, plan.file.data))
    vendor = module_lock.vendor
    for plan in plans:
        base = plan.file.data
        if plan.action is Action.SKIP_MODIFIED and previous is not None:
            base = _vendor_bytes(root, previous, plan.path)  # a kept edit keeps its merge base
        writes.append(Write(str(vendor / plan.path), base))
    record = json.dumps(module_lock.to_json(), indent=2, sort_keys=True) + "\n"
    writes.append(Write(str(vendor / VENDOR_RECORD), record.encode("utf-8")))
    writes.append(Write(LOCK_NAME, lock.text().encode("utf-8")))
    return [write for write in writes if changes_disk(root, write)]


def _vendor_bytes(root: Path, module: ModuleLock, path: str) -> bytes:
    source = root / module.vendor / path
    if not source.is_file():
        raise ProjectError(
            f"{module.vendor / path} is missing; run `session-kit modules verify` and restore .session-kit/"
        )
    return source.read_bytes()


def _status(plans: list[FilePlan], previous: ModuleLock | None, dry_run: bool) -> str:
    if any(plan.action is Action.REFUSE for plan in plans):
        return "refused"
    if all(not plan.action.writes for plan in plans):
        return "up to date"
    if dry_run:
        return "dry run"
    return "updated" if previous else "created"


def _ask(
    spec: OptionSpecSet, options: ResolvedOptions, prompter: Prompter, layers: Mapping[str, Any]
) -> tuple[ResolvedOptions, dict[str, Any]]:
    """Ask, in spec order, for each option nothing decided (no detection, lock, answer,
    variable or --set) whose condition holds, re-checking as answers arrive."""
    fixed = layers["assignments"]
    answered: dict[str, Any] = {}
    current = options
    for option in spec.options:
        if current.sources[option.name] != "default" or not option.when.holds(current.values):
            continue
        answered[option.name] = prompter(option, current.values[option.name])
        current = resolve(spec, **{**layers, "assignments": {**fixed, **answered}})
    sources = {**current.sources, **dict.fromkeys(answered, "prompt")}
    return replace(current, sources=sources), answered


def _refuse_kit_tree(root: Path, kit: Kit) -> None:
    kit_root = kit.root.resolve()
    if root == kit_root or kit_root in root.parents:
        raise ProjectError(f"{root} is inside session-kit's own source tree ({kit_root}); choose another project")


def _refuse_kit_outputs(root: Path, kit: Kit, rendered: Sequence[RenderedFile]) -> None:
    kit_root = kit.root.resolve()
    for file in rendered:
        target = (root / file.path).resolve()
        if kit_root in target.parents:
            raise ProjectError(f"{file.path} would be written into session-kit's own tree ({kit_root})")
