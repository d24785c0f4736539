"""`modules vet`: validate the kit itself before anyone generates from it."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import KitError
from .fingerprint import check_fingerprint
from .kit import Kit
from .options import resolve
from .project import ProjectLayout
from .unasync import UnasyncError, to_sync

if TYPE_CHECKING:
    from ..frameworks.base import FrameworkPlugin


@dataclass
class VetReport:
    """Checks that passed and problems found, each a sentence."""

    passed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0


def vet(kit: Kit) -> VetReport:
    """Run every check, collecting problems instead of stopping at the first."""
    from ..frameworks import PLUGINS

    report = VetReport()
    try:
        manifest, spec = kit.manifest, kit.options
        report.passed.append(f"{manifest.path.name} and {spec.path.relative_to(kit.root)} are valid")
    except KitError as exc:
        report.problems.append(str(exc))
        return report
    try:
        report.passed.append(f"versions agree: {kit.check_versions()}")
    except KitError as exc:
        report.problems.append(str(exc))
    try:
        report.passed.append(check_fingerprint(kit))
    except KitError as exc:
        report.problems.append(str(exc))

    missing_docs = [
        f"module.yaml: documentation.{key}: {rel} is missing or empty"
        for key, rel in manifest.documentation.items()
        if not (kit.root / rel).is_file() or not (kit.root / rel).read_text(encoding="utf-8").strip()
    ]
    report.problems.extend(missing_docs)
    if not missing_docs:
        report.passed.append(f"documentation map resolves ({len(manifest.documentation)} files)")

    _check_dependency_profiles(kit, report)

    referenced: set[str] = set()
    for name, plugin in sorted(PLUGINS.items()):
        if name not in manifest.frameworks:
            report.problems.append(f"framework plug-in {name!r} has no compatibility entry in module.yaml")
        everything = [*manifest.templates, *plugin.adapter_templates()]
        referenced.update(file.template for file in everything)
        missing = sorted({file.template for file in everything if not kit.renderer.exists(file.template)})
        for template in missing:
            report.problems.append(f"{name}: template {template} does not exist under templates/")
        _check_rendering(kit, name, plugin, set(missing), report)
    orphans = sorted(
        path.relative_to(kit.templates_dir).as_posix()
        for path in kit.templates_dir.rglob("*.j2")
        if path.relative_to(kit.templates_dir).as_posix() not in referenced
    )
    for orphan in orphans:
        report.problems.append(f"templates/{orphan} is not referenced by module.yaml or any framework plug-in")
    return report


def _store_variants(kit: Kit) -> list[tuple[str, dict[str, Any]]]:
    """The defaults, then each store choice on its own and all of them together."""
    stores = kit.options.get("stores")
    if stores is None:
        return [("the defaults", {})]
    choices = list(stores.choices)
    return [
        ("the defaults", {}),
        *((f"stores={choice}", {"stores": [choice]}) for choice in choices),
        (f"stores={','.join(choices)}", {"stores": choices}),
    ]


def _check_rendering(kit: Kit, name: str, plugin: FrameworkPlugin, missing: set[str], report: VetReport) -> None:
    """Render every template each store variant selects and compile the Python ones; one problem per failure.

    Other problems (docs, versions, a missing template) do not stop this check: vet collects them all.
    """
    problems = len(report.problems)
    variants = _store_variants(kit)
    failed: set[str] = set()  # a template is reported once, for the first variant it fails in
    for label, assignments in variants:
        _render_variant(kit, name, plugin, missing | failed, report, label, assignments, failed)
    if len(report.problems) == problems and not missing:
        labels = ", ".join(label for label, _ in variants)
        report.passed.append(f"{name}: every selected template renders and compiles with {labels}")


def _render_variant(
    kit: Kit,
    name: str,
    plugin: FrameworkPlugin,
    missing: set[str],
    report: VetReport,
    label: str,
    assignments: dict[str, Any],
    failed: set[str],
) -> None:
    """Render the templates one option variant selects, reporting each failure and adding it to `failed`."""
    from .context import build_context, select_templates

    where = name if not assignments else f"{name} ({label})"

    with tempfile.TemporaryDirectory() as scratch:
        try:
            values = dict(resolve(kit.options, assignments={**assignments, "framework": name}).values)
            layout = ProjectLayout(Path(scratch), "app.sessions", ".")
            context = build_context(kit, layout, plugin, values, kit.manifest.version)
            templates = select_templates(kit.manifest, plugin, values)
        except KitError as exc:
            report.problems.append(f"{where}: {exc}")
            return
        for file in templates:
            if file.template in missing:
                continue
            try:
                text = kit.renderer.render(file.template, context)
                if file.output.endswith(".py"):
                    compile(text, file.template, "exec")
                    if not plugin.async_core:
                        to_sync(text)
            except KitError as exc:
                failed.add(file.template)
                report.problems.append(f"{where}: {exc}")
            except UnasyncError as exc:
                failed.add(file.template)
                report.problems.append(f"{where}: {file.template} has no synchronous twin: {exc}")
            except SyntaxError as exc:
                failed.add(file.template)
                report.problems.append(
                    f"{where}: {exc.filename} renders to invalid Python: {exc.msg} (line {exc.lineno})"
                )


def _check_dependency_profiles(kit: Kit, report: VetReport) -> None:
    problems = len(report.problems)
    spec = kit.options
    for option_name, by_value in kit.manifest.dependencies.options.items():
        option = spec.get(option_name)
        if option is None:
            report.problems.append(
                f"module.yaml: dependencies.options.{option_name}: no such option in config/base.yaml"
            )
            continue
        for value in by_value:
            if value not in option.choices:
                report.problems.append(
                    f"module.yaml: dependencies.options.{option_name}.{value}: not a choice of {option_name}"
                )
        for choice in option.choices:
            if choice not in by_value:
                report.problems.append(f"module.yaml: dependencies.options.{option_name}: no entry for {choice!r}")
    for framework_name, overrides in kit.manifest.dependencies.framework_options.items():
        for option_name, by_value in overrides.items():
            where = f"module.yaml: dependencies.framework_options.{framework_name}.{option_name}"
            option = spec.get(option_name)
            if option is None:
                report.problems.append(f"{where}: no such option in config/base.yaml")
                continue
            report.problems.extend(
                f"{where}.{value}: not a choice of {option_name}" for value in by_value if value not in option.choices
            )
    framework = spec.get("framework")
    if framework is None:
        report.problems.append("config/base.yaml: the framework option is missing")
    else:
        for choice in framework.choices:
            if choice not in kit.manifest.frameworks:
                report.problems.append(f"config/base.yaml: framework {choice!r} has no compatibility entry")
    if len(report.problems) == problems:
        report.passed.append("dependency profiles cover every choice")
