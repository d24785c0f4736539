"""The kit's two declarative files, loaded once and validated at the edge.

`module.yaml` says what the module is (version, compatibility, docs, dependencies,
core templates); `config/base.yaml` says what it asks (the option spec).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from .yamlfile import KeyPath, YamlDocument, load_yaml

OptionType = Literal["string", "integer", "boolean", "choice", "multichoice"]
OPTION_TYPES: tuple[OptionType, ...] = ("string", "integer", "boolean", "choice", "multichoice")
# How a runtime default's value becomes Python source (see RuntimeDefault).
RuntimeKind = Literal["seconds", "count", "limit", "string", "choice"]
RUNTIME_KINDS: tuple[RuntimeKind, ...] = ("seconds", "count", "limit", "string", "choice")
# A prompt shows its help on one terminal line; the rest is in `details`.
HELP_WIDTH = 100
_CONSTANT = re.compile(r"DEFAULT_[A-Z0-9_]+")
_VARIABLE = re.compile(r"SESSION_[A-Z0-9_]+")
DOC_KEYS = (
    "overview",
    "usage",
    "advanced",
    "monitoring",
    "changelog",
    "migration",
    "troubleshooting",
    "api-reference",
)
# Pages a module may add to its documentation map beyond the required ones.
OPTIONAL_DOC_KEYS = ("stores", "performance", "architecture")
TARGETS = ("package", "tests")
# Patterns are applied with fullmatch: `$` alone would let a trailing newline through.
_SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Only pip's own comparison operators, each followed by a version ("fastapi=1" or "fastapi==" are not requirements).
_SPECIFIER = r"(?:===|==|!=|~=|<=|>=|<|>)\s*[0-9][0-9A-Za-z.*+!-]*"
_VERSION_RANGE = re.compile(rf"{_SPECIFIER}(?:\s*,\s*{_SPECIFIER})*")
_REQUIREMENT = re.compile(
    rf"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\[[A-Za-z0-9_,-]+\])?\s*(?:{_VERSION_RANGE.pattern})?"
)


@dataclass(frozen=True)
class Condition:
    """`when:` of an option or template: every clause must hold."""

    clauses: tuple[tuple[str, str, Any], ...]  # (option, operator, operand)

    def holds(self, values: Mapping[str, Any]) -> bool:
        """Whether the condition is true for the resolved `values`."""
        for option, operator, operand in self.clauses:
            value = values.get(option)
            if operator == "equals" and value != operand:
                return False
            if operator == "one_of" and value not in operand:
                return False
            if operator == "contains" and (not isinstance(value, list) or operand not in value):
                return False
        return True

    def describe(self) -> str:
        """Readable form for prompts and errors."""
        words = {"equals": "is", "one_of": "is one of", "contains": "contains"}
        return " and ".join(f"{name} {words[op]} {arg!r}" for name, op, arg in self.clauses)


ALWAYS = Condition(())


@dataclass(frozen=True)
class OptionSpec:
    """One generation option: its type, default, constraints, help and prompt."""

    name: str
    type: OptionType
    default: Any
    help: str  # one line, shown with the question
    prompt: str
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    when: Condition = ALWAYS
    details: str = ""  # the longer explanation, shown on request (`?` at a prompt)

    def allowed(self) -> str:
        """What values this option accepts, in words."""
        if self.type in ("choice", "multichoice"):
            many = "a comma-separated subset of" if self.type == "multichoice" else "one of"
            return f"{many}: {', '.join(self.choices)}"
        if self.type == "integer":
            low = "-inf" if self.minimum is None else str(self.minimum)
            high = "+inf" if self.maximum is None else str(self.maximum)
            return f"an integer from {low} to {high}"
        if self.type == "boolean":
            return "true or false"
        return f"a string matching {self.pattern}" if self.pattern else "a string"


@dataclass(frozen=True)
class Constraint:
    """A rule between two integer options: `option` must not exceed `at_most`."""

    option: str
    at_most: str
    message: str

    def violated(self, values: Mapping[str, Any]) -> bool:
        low, high = values.get(self.option), values.get(self.at_most)
        return isinstance(low, int) and isinstance(high, int) and low > high


@dataclass(frozen=True)
class RuntimeDefault:
    """A former generator option whose value is now a run-time setting.

    New projects are never asked for it: the generated settings carry a fixed default
    in `constant`, and `variable` changes it at run time, where the settings model
    validates it. A value an older lock, answers file, --set or SESSION_KIT_* still
    names replaces that default in the generated source, so nothing a project chose
    is lost. Only the value's kind is checked here, enough to write it as a literal.
    """

    name: str
    constant: str
    variable: str
    kind: RuntimeKind
    default: Any  # equal to the template's fixed default (tests check it)
    choices: tuple[str, ...] = ()
    pattern: str | None = None

    def allowed(self) -> str:
        """What values the kit accepts for it, in words."""
        return {
            "seconds": "a whole number of seconds greater than 0",
            "count": "a whole number greater than 0",
            "limit": "a whole number, 0 for no limit",
            "string": f"a string matching {self.pattern}" if self.pattern else "a non-empty string",
            "choice": f"one of: {', '.join(self.choices)}",
        }[self.kind]

    def problem(self, value: object) -> str | None:
        """None when `value` can be written as this default, else what is allowed."""
        bad = f"{value!r} is not allowed for {self.name}; expected {self.allowed()}"
        if self.kind in ("seconds", "count", "limit"):
            if not isinstance(value, int) or isinstance(value, bool):
                return bad
            return None if value > 0 or (self.kind == "limit" and value == 0) else bad
        if self.kind == "choice":
            return None if value in self.choices else bad
        if not isinstance(value, str) or not value:
            return bad
        return None if self.pattern is None or re.fullmatch(self.pattern, value) else bad

    def coerce(self, text: str) -> Any:
        """Text from the command line or environment as this default's type."""
        raw = text.strip()
        if self.kind in ("seconds", "count", "limit"):
            try:
                return int(raw, 10)
            except ValueError:
                return raw
        return raw


@dataclass(frozen=True)
class OptionSpecSet:
    """config/base.yaml: the ordered options of the module, and its runtime defaults."""

    path: Path
    options: tuple[OptionSpec, ...]
    constraints: tuple[Constraint, ...] = ()
    runtime_defaults: tuple[RuntimeDefault, ...] = ()

    def get(self, name: str) -> OptionSpec | None:
        """The option called `name`, if any."""
        return next((option for option in self.options if option.name == name), None)

    def runtime_default(self, name: str) -> RuntimeDefault | None:
        """The former option called `name` that is now a runtime default, if any."""
        return next((item for item in self.runtime_defaults if item.name == name), None)

    @property
    def known_names(self) -> tuple[str, ...]:
        """Every name a source may set: the options, then the former ones."""
        return (*self.names, *(item.name for item in self.runtime_defaults))

    @property
    def names(self) -> tuple[str, ...]:
        """Every option name, in spec order."""
        return tuple(option.name for option in self.options)


@dataclass(frozen=True)
class TemplateFile:
    """A template and where its output goes (`package` or `tests` directory)."""

    template: str
    output: str
    target: str = "package"
    when: Condition = ALWAYS


@dataclass(frozen=True)
class DependencyProfiles:
    """Pip requirements of the generated code, per framework and per option value."""

    base: tuple[str, ...]
    frameworks: Mapping[str, tuple[str, ...]]
    options: Mapping[str, Mapping[str, tuple[str, ...]]]
    tests: tuple[str, ...]
    # Per framework, option profiles that replace the ones in `options` (e.g. blocking
    # store drivers for a framework that gets the synchronous core).
    framework_options: Mapping[str, Mapping[str, Mapping[str, tuple[str, ...]]]] = field(default_factory=dict)

    def for_option(self, framework: str, option: str) -> Mapping[str, tuple[str, ...]]:
        """The requirements of each value of `option` when generating for `framework`."""
        return {**self.options.get(option, {}), **self.framework_options.get(framework, {}).get(option, {})}


@dataclass(frozen=True)
class ModuleManifest:
    """module.yaml: the canonical metadata of the module."""

    path: Path
    name: str
    version: str
    summary: str
    python: str
    frameworks: Mapping[str, str]
    documentation: Mapping[str, str]
    dependencies: DependencyProfiles
    templates: tuple[TemplateFile, ...]


def load_manifest(path: Path, options: OptionSpecSet | None = None) -> ModuleManifest:
    """Load and validate module.yaml; with `options`, template conditions are checked against them."""
    doc = load_yaml(path)
    root = _mapping(doc, (), doc.data)
    _only(doc, (), root, {"name", "version", "summary", "compatibility", "documentation", "dependencies", "templates"})
    name = _string(doc, ("name",), root.get("name"), pattern=_NAME, allowed="a lower-case identifier")
    version = _string(doc, ("version",), root.get("version"), pattern=_SEMVER, allowed="a semantic version like 1.2.3")
    summary = _string(doc, ("summary",), root.get("summary"))

    compat = _mapping(doc, ("compatibility",), root.get("compatibility"))
    _only(doc, ("compatibility",), compat, {"python", "frameworks"})
    python = _string(
        doc,
        ("compatibility", "python"),
        compat.get("python"),
        pattern=_VERSION_RANGE,
        allowed="a version range like >=3.11",
    )
    fw_map = _mapping(doc, ("compatibility", "frameworks"), compat.get("frameworks"))
    frameworks = {
        str(fw): _string(
            doc,
            ("compatibility", "frameworks", str(fw)),
            spec,
            pattern=_VERSION_RANGE,
            allowed="a version range like >=0.110",
        )
        for fw, spec in fw_map.items()
    }
    if not frameworks:
        raise doc.error(("compatibility", "frameworks"), "at least one framework is required")

    docs = _mapping(doc, ("documentation",), root.get("documentation"))
    _only(doc, ("documentation",), docs, {*DOC_KEYS, *OPTIONAL_DOC_KEYS})
    documentation: dict[str, str] = {}
    for key in (*DOC_KEYS, *(key for key in OPTIONAL_DOC_KEYS if key in docs)):
        if key not in docs:
            raise doc.error(("documentation",), f"missing key {key!r}; required keys: {', '.join(DOC_KEYS)}")
        rel = _string(doc, ("documentation", key), docs[key])
        if not rel.startswith("docs/") or ".." in Path(rel).parts or not rel.endswith(".md"):
            raise doc.error(("documentation", key), f"{rel!r} must be a .md file under docs/")
        documentation[key] = rel

    dependencies = _dependencies(doc, root.get("dependencies"), frameworks)
    entries = _sequence(doc, ("templates",), root.get("templates"))
    templates = tuple(_template_file(doc, ("templates", index), item) for index, item in enumerate(entries))
    if options is not None:  # a typo in a template's `when:` would otherwise drop the file silently
        by_name = {option.name: option for option in options.options}
        for index, file in enumerate(templates):
            _check_when(doc, ("templates", index, "when"), file.when, by_name)
    return ModuleManifest(path, name, version, summary, python, frameworks, documentation, dependencies, templates)


def load_option_specs(path: Path) -> OptionSpecSet:
    """Load and validate config/base.yaml."""
    doc = load_yaml(path)
    root = _mapping(doc, (), doc.data)
    _only(doc, (), root, {"options", "constraints", "runtime_defaults"})
    raw_options = _mapping(doc, ("options",), root.get("options"))
    options = [_option(doc, str(name), raw) for name, raw in raw_options.items()]
    by_name = {option.name: option for option in options}
    raw_runtime = _mapping(doc, ("runtime_defaults",), root.get("runtime_defaults", {}))
    runtime = tuple(_runtime_default(doc, str(name), raw, by_name) for name, raw in raw_runtime.items())
    for option in options:
        _check_when(doc, ("options", option.name, "when"), option.when, by_name, owner=option.name)
    constraints = tuple(
        _constraint(doc, ("constraints", index), item, by_name)
        for index, item in enumerate(_sequence(doc, ("constraints",), root.get("constraints", [])))
    )
    defaults = {option.name: option.default for option in options}
    for index, constraint in enumerate(constraints):
        if constraint.violated(defaults):
            raise doc.error(("constraints", index), f"the defaults break this rule: {constraint.message}")
    return OptionSpecSet(path, tuple(options), constraints, runtime)


def _runtime_default(doc: YamlDocument, name: str, raw: object, options: Mapping[str, OptionSpec]) -> RuntimeDefault:
    key = ("runtime_defaults", name)
    if name in options:
        raise doc.error(key, f"{name} is an option too; a name is either an option or a runtime default")
    body = _mapping(doc, key, raw)
    _only(doc, key, body, {"constant", "variable", "kind", "default", "choices", "pattern"})
    constant = _string(doc, (*key, "constant"), body.get("constant"), pattern=_CONSTANT, allowed="DEFAULT_<NAME>")
    variable = _string(doc, (*key, "variable"), body.get("variable"), pattern=_VARIABLE, allowed="SESSION_<NAME>")
    kind = body.get("kind")
    if kind not in RUNTIME_KINDS:
        raise doc.error((*key, "kind"), f"{kind!r} is not a kind; allowed: {', '.join(RUNTIME_KINDS)}")
    choices: tuple[str, ...] = ()
    if kind == "choice":
        raw_choices = _sequence(doc, (*key, "choices"), body.get("choices"))
        choices = tuple(_string(doc, (*key, "choices", i), c) for i, c in enumerate(raw_choices))
        if not choices or len(set(choices)) != len(choices):
            raise doc.error((*key, "choices"), "choices must be a non-empty list without repeats")
    elif "choices" in body:
        raise doc.error((*key, "choices"), f"choices are only for the choice kind, not {kind}")
    pattern = None
    if "pattern" in body:
        if kind != "string":
            raise doc.error((*key, "pattern"), "pattern is only for the string kind")
        pattern = _string(doc, (*key, "pattern"), body["pattern"])
        try:
            re.compile(pattern)
        except re.error as exc:
            raise doc.error((*key, "pattern"), f"not a valid regular expression ({exc})") from None
    item = RuntimeDefault(name, constant, variable, kind, None, choices, pattern)
    if "default" not in body:
        raise doc.error(key, "missing key 'default'")
    problem = item.problem(body["default"])
    if problem:
        raise doc.error((*key, "default"), problem)
    return replace(item, default=body["default"])


def _constraint(doc: YamlDocument, key_path: KeyPath, raw: object, by_name: Mapping[str, OptionSpec]) -> Constraint:
    body = _mapping(doc, key_path, raw)
    _only(doc, key_path, body, {"option", "at_most", "message"})
    names = {}
    for key in ("option", "at_most"):
        name = _string(doc, (*key_path, key), body.get(key))
        option = by_name.get(name)
        if option is None or option.type != "integer":
            raise doc.error((*key_path, key), f"{name!r} is not an integer option; constraints compare integers")
        names[key] = name
    return Constraint(names["option"], names["at_most"], _string(doc, (*key_path, "message"), body.get("message")))


def parse_condition(doc: YamlDocument, key_path: KeyPath, raw: object) -> Condition:
    """`{option: value}`, `{option: {one_of: [...]}}` or `{option: {contains: value}}`."""
    if raw is None:
        return ALWAYS
    mapping = _mapping(doc, key_path, raw)
    clauses: list[tuple[str, str, Any]] = []
    for option, test in mapping.items():
        if isinstance(test, dict):
            if len(test) != 1 or next(iter(test)) not in ("one_of", "contains", "equals"):
                raise doc.error((*key_path, str(option)), "a test must be one of: equals, one_of, contains")
            operator, operand = next(iter(test.items()))
            if operator == "one_of" and (not isinstance(operand, list) or not operand):
                raise doc.error((*key_path, str(option)), "one_of takes a non-empty list")
            clauses.append((str(option), str(operator), operand))
        else:
            clauses.append((str(option), "equals", test))
    return Condition(tuple(clauses))


def _option(doc: YamlDocument, name: str, raw: object) -> OptionSpec:
    key = ("options", name)
    if not _NAME.fullmatch(name):
        raise doc.error(key, "option names are lower-case identifiers (a-z, 0-9, _)")
    body = _mapping(doc, key, raw)
    allowed_keys = {"type", "default", "help", "details", "prompt", "choices", "pattern", "min", "max", "when"}
    _only(doc, key, body, allowed_keys)
    kind = body.get("type")
    if kind not in OPTION_TYPES:
        raise doc.error((*key, "type"), f"{kind!r} is not a type; allowed: {', '.join(OPTION_TYPES)}")
    help_text = _string(doc, (*key, "help"), body.get("help"))
    if "\n" in help_text.strip() or len(help_text.strip()) > HELP_WIDTH:
        raise doc.error((*key, "help"), f"help is one line of at most {HELP_WIDTH} characters; put the rest in details")
    details = _string(doc, (*key, "details"), body["details"]) if "details" in body else ""
    prompt = _string(doc, (*key, "prompt"), body.get("prompt"))
    choices: tuple[str, ...] = ()
    if kind in ("choice", "multichoice"):
        raw_choices = _sequence(doc, (*key, "choices"), body.get("choices"))
        choices = tuple(_string(doc, (*key, "choices", i), c) for i, c in enumerate(raw_choices))
        if not choices or len(set(choices)) != len(choices):
            raise doc.error((*key, "choices"), "choices must be a non-empty list without repeats")
    elif "choices" in body:
        raise doc.error((*key, "choices"), f"choices are only for choice and multichoice, not {kind}")
    pattern = None
    if "pattern" in body:
        if kind != "string":
            raise doc.error((*key, "pattern"), "pattern is only for string options")
        pattern = _string(doc, (*key, "pattern"), body["pattern"])
        try:
            re.compile(pattern)
        except re.error as exc:
            raise doc.error((*key, "pattern"), f"not a valid regular expression ({exc})") from None
    bounds: dict[str, int | None] = {"min": None, "max": None}
    for bound in bounds:
        if bound in body:
            if kind != "integer":
                raise doc.error((*key, bound), f"{bound} is only for integer options")
            value = body[bound]
            if not isinstance(value, int) or isinstance(value, bool):
                raise doc.error((*key, bound), f"{value!r} is not an integer")
            bounds[bound] = value
    low, high = bounds["min"], bounds["max"]
    if low is not None and high is not None and low > high:
        raise doc.error((*key, "min"), f"{low} must not be greater than max ({high})")
    option = OptionSpec(
        name=name,
        type=kind,
        default=None,
        help=help_text,
        prompt=prompt,
        choices=choices,
        pattern=pattern,
        minimum=bounds["min"],
        maximum=bounds["max"],
        when=parse_condition(doc, (*key, "when"), body.get("when")),
        details=details.strip(),
    )
    if "default" not in body:
        raise doc.error(key, "missing key 'default'")
    _check_operand(doc, (*key, "default"), option, body["default"])
    return replace(option, default=body["default"])


def _check_operand(doc: YamlDocument, key_path: KeyPath, option: OptionSpec, value: object) -> None:
    """Raise unless `value` is a valid value of `option`."""
    from .options import validate_value  # late: options imports this module

    problem = validate_value(option, value)
    if problem:
        raise doc.error(key_path, problem)


def _check_when(
    doc: YamlDocument,
    key_path: KeyPath,
    condition: Condition,
    options: Mapping[str, OptionSpec],
    owner: str | None = None,
) -> None:
    """Raise unless every clause names another option and can hold for it."""
    for ref, operator, operand in condition.clauses:
        clause_path = (*key_path, ref)
        if ref == owner:
            raise doc.error(clause_path, "an option cannot depend on itself")
        option = options.get(ref)
        if option is None:
            known = ", ".join(name for name in options if name != owner)
            raise doc.error(clause_path, f"refers to unknown option {ref!r}; options: {known}")
        _check_condition(doc, clause_path, option, operator, operand)


def _check_condition(doc: YamlDocument, key_path: KeyPath, option: OptionSpec, operator: str, operand: object) -> None:
    """Raise unless a `when:` test can ever hold for `option`."""
    if operator == "contains":
        if option.type != "multichoice":
            raise doc.error(key_path, f"contains needs a multichoice option; {option.name} is a {option.type}")
        if operand not in option.choices:
            raise doc.error(
                key_path, f"{operand!r} is not a choice of {option.name}; expected one of: {', '.join(option.choices)}"
            )
        return
    for candidate in operand if operator == "one_of" and isinstance(operand, list) else [operand]:
        _check_operand(doc, key_path, option, candidate)


def _dependencies(doc: YamlDocument, raw: object, frameworks: Mapping[str, str]) -> DependencyProfiles:
    key: KeyPath = ("dependencies",)
    body = _mapping(doc, key, raw)
    _only(doc, key, body, {"base", "frameworks", "options", "framework_options", "tests"})
    fw_raw = _mapping(doc, (*key, "frameworks"), body.get("frameworks"))
    for name in frameworks:
        if name not in fw_raw:
            raise doc.error((*key, "frameworks"), f"no requirements for framework {name!r}")
    by_framework = {str(n): _requirements(doc, (*key, "frameworks", str(n)), r) for n, r in fw_raw.items()}
    overrides_raw = _mapping(doc, (*key, "framework_options"), body.get("framework_options", {}))
    for name in overrides_raw:
        if name not in frameworks:
            known = ", ".join(sorted(frameworks))
            raise doc.error((*key, "framework_options", str(name)), f"not a framework of this module; known: {known}")
    return DependencyProfiles(
        base=_requirements(doc, (*key, "base"), body.get("base")),
        frameworks=by_framework,
        options=_option_profiles(doc, (*key, "options"), body.get("options", {})),
        tests=_requirements(doc, (*key, "tests"), body.get("tests", [])),
        framework_options={
            str(name): _option_profiles(doc, (*key, "framework_options", str(name)), raw_profiles)
            for name, raw_profiles in overrides_raw.items()
        },
    )


def _option_profiles(doc: YamlDocument, key: KeyPath, raw: object) -> dict[str, dict[str, tuple[str, ...]]]:
    """`option: {value: [requirement, ...]}`."""
    return {
        str(option): {
            str(value): _requirements(doc, (*key, str(option), str(value)), reqs)
            for value, reqs in _mapping(doc, (*key, str(option)), values).items()
        }
        for option, values in _mapping(doc, key, raw).items()
    }


def _requirements(doc: YamlDocument, key_path: KeyPath, raw: object) -> tuple[str, ...]:
    items = _sequence(doc, key_path, raw)
    out = []
    for index, item in enumerate(items):
        text = _string(doc, (*key_path, index), item)
        if not _REQUIREMENT.fullmatch(text):
            raise doc.error((*key_path, index), f"{text!r} is not a pip requirement like 'fastapi>=0.110'")
        out.append(text)
    return tuple(out)


def _template_file(doc: YamlDocument, key_path: KeyPath, raw: object) -> TemplateFile:
    body = _mapping(doc, key_path, raw)
    _only(doc, key_path, body, {"template", "output", "target", "when"})
    template = _string(doc, (*key_path, "template"), body.get("template"))
    output = _string(doc, (*key_path, "output"), body.get("output"))
    target = body.get("target", "package")
    if target not in TARGETS:
        raise doc.error((*key_path, "target"), f"{target!r} is not allowed; use one of: {', '.join(TARGETS)}")
    for field_name, value in (("template", template), ("output", output)):
        parts = Path(value).parts
        if Path(value).is_absolute() or ".." in parts or not parts:
            raise doc.error((*key_path, field_name), f"{value!r} must be a relative path inside the kit")
    return TemplateFile(template, output, str(target), parse_condition(doc, (*key_path, "when"), body.get("when")))


def _mapping(doc: YamlDocument, key_path: KeyPath, raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        what = "the document" if not key_path else "this key"
        raise doc.error(key_path, f"{what} must be a mapping, got {_kind(raw)}")
    return {str(k): v for k, v in raw.items()}


def _sequence(doc: YamlDocument, key_path: KeyPath, raw: object) -> Sequence[Any]:
    if not isinstance(raw, list):
        raise doc.error(key_path, f"must be a list, got {_kind(raw)}")
    return raw


def _string(
    doc: YamlDocument, key_path: KeyPath, raw: object, *, pattern: re.Pattern[str] | None = None, allowed: str = ""
) -> str:
    if not isinstance(raw, str) or not raw.strip():
        wanted = f" ({allowed})" if allowed else ""  # YAML reads `version: 1.2` as a number: say what was meant
        raise doc.error(key_path, f"must be a non-empty string{wanted}, got {_kind(raw)}")
    if pattern is not None and not pattern.fullmatch(raw):
        raise doc.error(key_path, f"{raw!r} is not allowed; expected {allowed}")
    return raw


def _only(doc: YamlDocument, key_path: KeyPath, body: Mapping[str, Any], allowed: set[str]) -> None:
    for key in body:
        if key not in allowed:
            raise doc.error((*key_path, key), f"unknown key; allowed keys: {', '.join(sorted(allowed))}")


def _kind(raw: object) -> str:
    if raw is None:
        return "nothing"
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(raw), type(raw).__name__)
