"""Resolve option values from every source, in order, and validate each once.

Precedence, lowest first: spec default < the project's lock < answers file < SESSION_KIT_*
environment < --set < the project's before_render hook.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AnswersFileError, OptionError
from .spec import OptionSpec, OptionSpecSet
from .yamlfile import load_yaml

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class ResolvedOptions:
    """Final option values, where each came from, and notes for the user."""

    values: Mapping[str, Any]
    sources: Mapping[str, str]
    warnings: tuple[str, ...] = field(default=())

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
        if option is None:
            raise OptionError(f"--set {key}: unknown option{_hint(key, spec)}; options: {', '.join(spec.names)}")
        values[key] = coerce_text(option, text)
    return values


def check_hook_changes(changes: Mapping[str, Any], spec: OptionSpecSet) -> None:
    """OptionError for a before_render change to an option that does not exist (resolve would drop it)."""
    for key in changes:
        if spec.get(str(key)) is None:
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
) -> ResolvedOptions:
    """Merge the sources in precedence order, then validate every value.

    `base` (values recorded in a project's lock) sits between the spec default and
    the answers file, so re-running keeps the project's earlier choices; `hooks`
    (before_render's changes) come last, as the hook sees every other value.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    layers = (
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
    return ResolvedOptions(values, sources, tuple(notes))


def _hint(name: str, spec: OptionSpecSet) -> str:
    from difflib import get_close_matches

    # difflib misses short prefixes ("ttl" for ttl_seconds), so fall back to a unique containing name.
    close = get_close_matches(name, spec.names, n=1) or [n for n in spec.names if name and name in n]
    return f" (did you mean {close[0]!r}?)" if len(close) == 1 else ""
