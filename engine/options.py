"""Resolve option values from every source, in order, and validate each once.

Precedence, lowest first: spec default < what was detected in the project < the project's
lock < answers file < SESSION_KIT_* environment < --set < the project's before_render hook.

A former option that is now a runtime default (config/base.yaml `runtime_defaults`) may
still come from any of these sources: its value, when it differs from the fixed default,
is kept in `values` under its old name (so the lock keeps recording it) and replaces the
constant in the generated settings; each one gets a notice naming its SESSION_* variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AnswersFileError, OptionError
from .spec import OptionSpec, OptionSpecSet, RuntimeDefault
from .yamlfile import load_yaml

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class ResolvedOptions:
    """Final option values, where each came from, and notes for the user."""

    values: Mapping[str, Any]
    sources: Mapping[str, str]
    warnings: tuple[str, ...] = field(default=())
    notices: tuple[str, ...] = field(default=())

    def active(self, spec: OptionSpecSet) -> dict[str, Any]:
        """Values of the options whose `when:` holds (the ones a user is asked)."""
        return {o.name: self.values[o.name] for o in spec.options if o.when.holds(self.values)}


def validate_value(option: OptionSpec, value: object) -> str | None:
    """None when `value` suits `option`, else a sentence saying what is allowed."""
    bad = f"{value!r} is not allowed for {option.name}; expected {option.allowed()}"
    if option.type == "boolean":
        return None if isinstance(value, bool) else bad
    if option.type == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return bad
        if option.minimum is not None and value < option.minimum:
            return bad
        if option.maximum is not None and value > option.maximum:
            return bad
        return None
    if option.type == "choice":
        return None if value in option.choices else bad
    if option.type == "multichoice":
        if not isinstance(value, list) or not value or any(v not in option.choices for v in value):
            return bad
        return None if len(set(value)) == len(value) else f"{bad} (no repeats)"
    if not isinstance(value, str):
        return bad
    if option.pattern is not None and not re.fullmatch(option.pattern, value):
        return bad
    return None


def coerce_text(option: OptionSpec, text: str) -> Any:
    """Turn text from the command line or environment into the option's type."""
    raw = text.strip()
    if option.type == "boolean":
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        return raw
    if option.type == "integer":
        try:
            return int(raw, 10)
        except ValueError:
            return raw
    if option.type == "multichoice":
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def clamp(option: OptionSpec, value: int) -> int:
    """`value` moved into the option's [min, max] range."""
    if option.minimum is not None:
        value = max(value, option.minimum)
    if option.maximum is not None:
        value = min(value, option.maximum)
    return value


def parse_assignments(pairs: list[str], spec: OptionSpecSet) -> dict[str, Any]:
    """`--set KEY=VALUE` arguments, coerced to each option's type (not yet validated)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OptionError(f"--set {pair!r}: expected KEY=VALUE")
        option = spec.get(key)
        former = spec.runtime_default(key)
        if former is not None:
            values[key] = former.coerce(text)
            continue
        if option is None:
            raise OptionError(f"--set {key}: unknown option{_hint(key, spec)}; options: {', '.join(spec.names)}")
        values[key] = coerce_text(option, text)
    return values


def check_hook_changes(changes: Mapping[str, Any], spec: OptionSpecSet) -> None:
    """OptionError for a before_render change to an option that does not exist (resolve would drop it)."""
    for key in changes:
        if str(key) not in spec.known_names:
            hint = _hint(str(key), spec)
            raise OptionError(f"before_render returned unknown option {key!r}{hint}; options: {', '.join(spec.names)}")


def read_answers_file(path: Path, spec: OptionSpecSet) -> dict[str, Any]:
    """Option values from a YAML answers file; unknown keys are an error naming the line."""
    doc = load_yaml(path, error_type=AnswersFileError)
    if doc.data is None:
        return {}
    if not isinstance(doc.data, dict):
        raise AnswersFileError(f"{path}: the answers file must be a mapping of option: value")
    values: dict[str, Any] = {}
    for key, value in doc.data.items():
        option = spec.get(str(key))
        line = doc.line_of((str(key),))
        former = spec.runtime_default(str(key))
        if former is not None:
            value = former.coerce(value) if isinstance(value, str) and former.kind != "string" else value
            problem = former.problem(value)
            if problem:
                raise AnswersFileError(f"{path}:{line}: {key}: {problem} ({former.variable} at run time)")
            values[str(key)] = value
            continue
        if option is None:
            raise AnswersFileError(f"{path}:{line}: {key}: unknown option{_hint(str(key), spec)}")
        if isinstance(value, str) and option.type in ("integer", "boolean", "multichoice"):
            value = coerce_text(option, value)
        problem = validate_value(option, value)
        if problem:
            raise AnswersFileError(f"{path}:{line}: {key}: {problem}")
        values[str(key)] = value
    return values


def resolve(
    spec: OptionSpecSet,
    *,
    answers: Mapping[str, Any] | None = None,
    environment: Mapping[str, Any] | None = None,
    assignments: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
    hooks: Mapping[str, Any] | None = None,
    warnings: tuple[str, ...] = (),
    detected: Mapping[str, Any] | None = None,
) -> ResolvedOptions:
    """Merge the sources in precedence order, then validate every value.

    `detected` (what the project's files say, e.g. its framework) sits just above the
    spec default; `base` (values recorded in a project's lock) comes next, so re-running
    keeps the project's earlier choices; `hooks` (before_render's changes) come last, as
    the hook sees every other value.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    layers = (
        ("detected", detected),
        ("lock", base),
        ("answers", answers),
        ("environment", environment),
        ("--set", assignments),
        ("hooks", hooks),
    )
    for option in spec.options:
        values[option.name] = option.default
        sources[option.name] = "default"
        for source, layer in layers:
            if layer and option.name in layer:
                values[option.name] = layer[option.name]
                sources[option.name] = source
    for option in spec.options:
        problem = validate_value(option, values[option.name])
        if problem:
            raise OptionError(f"{problem} (from {sources[option.name]})")
    for constraint in spec.constraints:
        if constraint.violated(values):
            low, high = constraint.option, constraint.at_most
            raise OptionError(
                f"{low}={values[low]} (from {sources[low]}) exceeds {high}={values[high]} "
                f"(from {sources[high]}): {constraint.message}"
            )
    notes = list(warnings)
    for option in spec.options:
        if sources[option.name] in ("--set", "environment", "answers", "hooks") and not option.when.holds(values):
            notes.append(f"{option.name} is ignored because its condition does not hold ({option.when.describe()})")
    notices = [
        notice
        for former in spec.runtime_defaults
        if (notice := _carry(former, layers[1:], values, sources)) is not None
    ]
    return ResolvedOptions(values, sources, tuple(notes), tuple(notices))


def _carry(
    former: RuntimeDefault,
    layers: tuple[tuple[str, Mapping[str, Any] | None], ...],
    values: dict[str, Any],
    sources: dict[str, str],
) -> str | None:
    """Keep a former option's value as the generated default; the notice to give, if any.

    A value equal to the fixed default changes nothing: from the lock (every 0.1.0 lock
    names all of them) it passes silently, from the user it is still explained.
    """
    given = [(source, layer[former.name]) for source, layer in layers if layer and former.name in layer]
    if not given:
        return None
    source, value = given[-1]
    problem = former.problem(value)
    if problem:
        raise OptionError(f"{problem} (from {source}; it is the run-time setting {former.variable} now)")
    if value == former.default:
        if source == "lock":
            return None
        return (
            f"{former.name} is a run-time setting now and {value!r} is already its default; "
            f"set {former.variable} at run time to change it"
        )
    values[former.name] = value
    sources[former.name] = source
    return (
        f"{former.name}={value!r} (from {source}) is a run-time setting now: it becomes the default "
        f"{former.constant} in the generated settings.py; {former.variable} changes it at run time"
    )


def _hint(name: str, spec: OptionSpecSet) -> str:
    from difflib import get_close_matches

    # difflib misses short prefixes ("ttl" for ttl_seconds), so fall back to a unique containing name.
    names = spec.known_names
    close = get_close_matches(name, names, n=1) or [n for n in names if name and name in n]
    return f" (did you mean {close[0]!r}?)" if len(close) == 1 else ""
