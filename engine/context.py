"""Everything templates need, decided here in Python so templates only substitute."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from .hoststyle import read_host_style
from .project import ProjectLayout
from .render import python_literal, timedelta_literal
from .spec import ModuleManifest, OptionSpecSet, RuntimeDefault, TemplateFile

if TYPE_CHECKING:
    from ..frameworks.base import FrameworkPlugin
    from .kit import Kit


def select_templates(
    manifest: ModuleManifest, plugin: FrameworkPlugin, options: Mapping[str, Any]
) -> list[TemplateFile]:
    """Core templates whose `when:` holds, then the framework's adapter templates."""
    core = [file for file in manifest.templates if file.when.holds(options)]
    adapter = [file for file in plugin.adapter_templates() if file.when.holds(options)]
    selected = core + adapter
    # Two templates for one output would silently overwrite each other; their conditions must exclude.
    seen: dict[tuple[str, str], str] = {}
    for file in selected:
        key = (file.target, file.output)
        if key in seen:
            raise SpecError(
                manifest.path,
                f"templates {seen[key]} and {file.template} both write {file.output} in the {file.target} folder "
                "with these options; make their when: conditions exclusive",
            )
        seen[key] = file.template
    return selected


def build_context(
    kit: Kit, layout: ProjectLayout, plugin: FrameworkPlugin, options: Mapping[str, Any], version: str
) -> dict[str, Any]:
    """The template context: plain, validated values only."""
    return {
        "package": layout.package,
        "package_name": layout.package.rsplit(".", 1)[-1],
        "source_root": layout.source_root,
        "module_version": version,
        "kit_version": kit.package_version,
        "options": dict(options),
        "adapter_exports": plugin.adapter_exports(),
        # Derived choices, so templates test flags instead of re-deciding.
        # `sync`: the core is rendered for a synchronous (WSGI) framework.
        "sync": not plugin.async_core,
        "jwt": options.get("token_format") == "jwt",
        "csrf": bool(options.get("csrf", False)),
        "management": bool(options.get("management_routes", False)),
        "audit": str(options.get("audit", "none")),
        # The host's oldest Python (its ruff/black target-version or requires-python; 3.11 without one):
        # `type X = ...` aliases and PEP 695 generics only when every supported Python has them.
        "py312": read_host_style(layout.root).target >= (3, 12),
        # Python source of the runtime defaults an older project still sets, by constant;
        # the settings template falls back to its fixed default for every other one.
        "carried": carried_defaults(kit.options, options),
    }


def carried_defaults(spec: OptionSpecSet, options: Mapping[str, Any]) -> dict[str, str]:
    """{constant: literal} for each former option present in the resolved values."""
    return {
        former.constant: _literal(former, options[former.name])
        for former in spec.runtime_defaults
        if former.name in options
    }


def _literal(former: RuntimeDefault, value: Any) -> str:
    if former.kind == "seconds":
        return timedelta_literal(value)
    if former.kind == "limit":
        return python_literal(value or None)  # 0 is "no limit", which the settings spell None
    return python_literal(value)


def requirements_for(manifest: ModuleManifest, options: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Pip requirements of the generated code (runtime, tests), from the dependency profiles."""
    profiles = manifest.dependencies
    framework = str(options["framework"])
    wanted: list[str] = [*profiles.base, *profiles.frameworks.get(framework, ())]
    for option in dict.fromkeys([*profiles.options, *profiles.framework_options.get(framework, {})]):
        by_value = profiles.for_option(framework, option)
        value = options.get(option)
        for chosen in value if isinstance(value, list) else [value]:
            wanted.extend(by_value.get(str(chosen), ()))
    runtime = list(dict.fromkeys(wanted))
    tests = [req for req in dict.fromkeys(profiles.tests) if req not in runtime]
    return runtime, tests
