"""The override contract: generation-time knobs a user sets without editing the kit.

Two ways in:

* Environment variables. ``SESSION_KIT_<OPTION>`` (upper case) overrides the option
  ``<option>`` of config/base.yaml. Values are converted and validated like ``--set``;
  integers outside the option's range are clamped to the nearest bound with a warning.
  A former option that is a runtime default now (``SESSION_KIT_TTL_SECONDS``, ...)
  still works like ``--set`` does for it. An unknown ``SESSION_KIT_*`` name is reported
  with the closest valid one.
* Python hooks. A file ``session_kit_hooks.py`` at the project root (or the file named by
  ``SESSION_KIT_HOOKS``) may define ``before_render(options)``, which returns option
  changes (validated again), and ``after_render(path, text)``, which returns the text to
  write. The framework plugin calls them around rendering.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .engine.options import clamp, coerce_text, validate_value
from .engine.spec import OptionSpecSet
from .errors import OptionError, ProjectError

ENV_PREFIX = "SESSION_KIT_"
HOOKS_FILE = "session_kit_hooks.py"

# Variables with this prefix that configure the kit itself rather than an option.
RESERVED_VARIABLES: Mapping[str, str] = {
    "SESSION_KIT_HOOKS": "path of a Python hooks file (default: session_kit_hooks.py in the project)",
    "SESSION_KIT_REQUIRE_SERVICES": "tests only: fail instead of skip when a database server is missing",
    "SESSION_KIT_FAULT_STEP": "tests only: raise at write step N to prove writes are all-or-nothing",
}


@dataclass(frozen=True)
class EnvironmentOverrides:
    """Option values taken from the environment, and what the user should hear about."""

    values: Mapping[str, Any]
    warnings: tuple[str, ...]


def environment_overrides(spec: OptionSpecSet, environ: Mapping[str, str] | None = None) -> EnvironmentOverrides:
    """Read every ``SESSION_KIT_<OPTION>`` variable; raise OptionError on a bad value."""
    from difflib import get_close_matches

    env = os.environ if environ is None else environ
    valid = {f"{ENV_PREFIX}{name.upper()}": name for name in spec.known_names}
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for variable in sorted(env):
        if not variable.startswith(ENV_PREFIX) or variable in RESERVED_VARIABLES:
            continue
        name = valid.get(variable)
        if name is None:
            close = get_close_matches(variable, [*valid, *RESERVED_VARIABLES], n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            warnings.append(f"{variable} is not a session-kit option and was ignored{hint}")
            continue
        former = spec.runtime_default(name)
        if former is not None:
            value = former.coerce(env[variable])
            problem = former.problem(value)
            if problem:
                raise OptionError(f"{variable}: {problem} ({former.variable} at run time)")
            values[name] = value
            continue
        option = spec.get(name)
        assert option is not None  # valid maps only known names
        value = coerce_text(option, env[variable])
        if option.type == "integer" and isinstance(value, int):
            clamped = clamp(option, value)
            if clamped != value:
                warnings.append(f"{variable}={value} is out of range; clamped to {clamped}")
                value = clamped
        problem = validate_value(option, value)
        if problem:
            raise OptionError(f"{variable}: {problem}")
        values[name] = value
    return EnvironmentOverrides(values, tuple(warnings))


class GenerationHooks(Protocol):
    """What a framework plugin calls around rendering."""

    def before_render(self, options: Mapping[str, Any]) -> Mapping[str, Any]:
        """Option changes to apply before anything is rendered (validated again)."""
        ...

    def after_render(self, path: str, text: str) -> str:
        """The text to write for the project-relative `path`."""
        ...


class NoHooks:
    """The default: generation exactly as the templates say."""

    def before_render(self, options: Mapping[str, Any]) -> Mapping[str, Any]:
        return {}

    def after_render(self, path: str, text: str) -> str:
        return text


@dataclass(frozen=True)
class FileHooks:
    """Hooks defined as plain functions in a user's Python file."""

    source: Path
    before: Callable[[dict[str, Any]], Mapping[str, Any] | None] | None
    after: Callable[[str, str], str] | None

    def before_render(self, options: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.before is None:
            return {}
        changes = self._call("before_render", self.before, dict(options))
        if changes is None:
            return {}
        if not isinstance(changes, Mapping):
            raise ProjectError(f"{self.source}: before_render must return a mapping of option changes or None")
        return changes

    def after_render(self, path: str, text: str) -> str:
        if self.after is None:
            return text
        result = self._call(f"after_render({path!r})", self.after, path, text)
        if not isinstance(result, str):
            raise ProjectError(f"{self.source}: after_render({path!r}) must return the text to write")
        return result

    def _call(self, label: str, hook: Callable[..., Any], *args: Any) -> Any:
        try:
            return hook(*args)
        except Exception as exc:  # the user's code: report, never a traceback
            raise ProjectError(f"{self.source}: {label} failed: {type(exc).__name__}: {exc}") from None


def load_hooks(project_dir: Path, environ: Mapping[str, str] | None = None) -> GenerationHooks:
    """The project's hooks file if there is one, else hooks that change nothing."""
    env = os.environ if environ is None else environ
    named = env.get("SESSION_KIT_HOOKS")
    path = (project_dir / named) if named else project_dir / HOOKS_FILE
    if not path.is_file():
        if named:
            raise ProjectError(f"SESSION_KIT_HOOKS={named}: no such file ({path})")
        return NoHooks()
    spec = importlib.util.spec_from_file_location("session_kit_user_hooks", path)
    if spec is None or spec.loader is None:
        raise ProjectError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: report, never a traceback
        raise ProjectError(f"{path}: the hooks file failed to load: {type(exc).__name__}: {exc}") from None
    return FileHooks(path, getattr(module, "before_render", None), getattr(module, "after_render", None))
