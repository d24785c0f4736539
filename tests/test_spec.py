"""module.yaml and config/base.yaml: every schema error names the file, the line, the key and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import OPTIONS_YAML, build_file_tree, line_of, replace_once

from session_kit.engine.kit import Kit
from session_kit.engine.spec import load_manifest, load_option_specs
from session_kit.errors import SpecError

MODULE_YAML = """
name: session
version: 1.2.3
summary: A test module.
compatibility:
  python: ">=3.11"
  frameworks:
    fastapi: ">=0.110"
documentation:
  overview: docs/overview.md
  usage: docs/usage.md
  advanced: docs/advanced.md
  monitoring: docs/monitoring.md
  changelog: docs/changelog.md
  migration: docs/migration.md
  troubleshooting: docs/troubleshooting.md
  api-reference: docs/api-reference.md
dependencies:
  base:
    - pydantic>=2.6
  frameworks:
    fastapi:
      - fastapi>=0.110
  options:
    stores:
      memory: []
  tests:
    - pytest>=8
templates:
  - {template: core/settings.py.j2, output: settings.py}
  - {template: core/memory.py.j2, output: memory.py, when: {stores: {contains: memory}}}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    build_file_tree(tmp_path, {name: text})
    return tmp_path / name


def _assert_points_at(error: SpecError, path: Path, line: int, key: str, *allowed: str) -> None:
    message = str(error)
    assert (error.path, error.line, error.key) == (str(path), line, key), message
    assert message.startswith(f"{path}:{line}: {key}: "), message
    for words in allowed:
        assert words in message, message


def test_the_baselines_are_valid(tmp_path: Path) -> None:
    manifest = load_manifest(_write(tmp_path, "module.yaml", MODULE_YAML))
    spec = load_option_specs(_write(tmp_path, "base.yaml", OPTIONS_YAML))
    assert (manifest.name, manifest.version, manifest.frameworks) == ("session", "1.2.3", {"fastapi": ">=0.110"})
    assert [t.output for t in manifest.templates] == ["settings.py", "memory.py"]
    assert spec.names == ("framework", "stores", "ttl_seconds", "cookie_name", "secure", "redis_url")
    assert spec.options[-1].when.clauses == (("stores", "contains", "redis"),)


def test_the_real_kit_files_load() -> None:
    kit = Kit()
    assert kit.manifest.name == "session"
    assert "framework" in kit.options.names


# (case, old text, new text, dotted key, text on the expected line, words saying what is allowed)
MANIFEST_ERRORS = [
    ("unknown top-level key", "summary:", "colour: blue\nsummary:", "colour", "colour:", "allowed keys: compatibility"),
    ("name not an identifier", "name: session", "name: Session-Kit", "name", "name:", "lower-case identifier"),
    ("name not a string", "name: session", "name: 5", "name", "name:", "a lower-case identifier), got a number"),
    ("semver read as a number", "version: 1.2.3", "version: 1.2", "version", "version:", "semantic version like 1.2.3"),
    ("bad semver", "version: 1.2.3", "version: 1.2.x", "version", "version:", "semantic version like 1.2.3"),
    ("semver with a newline", "version: 1.2.3", 'version: "1.2.3\\n"', "version", "version:", "semantic version"),
    ("semver leading zero", "version: 1.2.3", "version: 01.2.3", "version", "version:", "semantic version"),
    ("python range", '">=3.11"', '"3.11+"', "compatibility.python", "python:", "a version range like >=3.11"),
    ("python one equals", '">=3.11"', '"=3.11"', "compatibility.python", "python:", "a version range"),
    (
        "framework range",
        'fastapi: ">=0.110"',
        'fastapi: "~0.110"',
        "compatibility.frameworks.fastapi",
        'fastapi: "',
        "a version range like >=0.110",
    ),
    (
        "frameworks not a mapping",
        '    fastapi: ">=0.110"\n',
        "    - fastapi\n",
        "compatibility.frameworks",
        "  frameworks:",
        "must be a mapping, got a list",
    ),
    (
        "no framework",
        '  frameworks:\n    fastapi: ">=0.110"\n',
        "  frameworks: {}\n",
        "compatibility.frameworks",
        "  frameworks:",
        "at least one framework",
    ),
    (
        "doc outside docs/",
        "usage: docs/usage.md",
        "usage: README.md",
        "documentation.usage",
        "usage: README.md",
        "a .md file under docs/",
    ),
    (
        "doc escaping docs/",
        "usage: docs/usage.md",
        "usage: docs/../module.yaml",
        "documentation.usage",
        "usage: docs/..",
        "a .md file under docs/",
    ),
    (
        "missing doc key",
        "  migration: docs/migration.md\n",
        "",
        "documentation",
        "documentation:",
        "missing key 'migration'; required keys: overview, usage",
    ),
    (
        "unknown doc key",
        "  usage: docs/usage.md\n",
        "  usage: docs/usage.md\n  faq: docs/faq.md\n",
        "documentation.faq",
        "faq:",
        "allowed keys: advanced, api-reference",
    ),
    (
        "requirement with a space",
        "- pydantic>=2.6",
        "- pydantic is great",
        "dependencies.base.0",
        "pydantic is great",
        "a pip requirement like 'fastapi>=0.110'",
    ),
    (
        "requirement without a version",
        "- fastapi>=0.110",
        "- fastapi==",
        "dependencies.frameworks.fastapi.0",
        "fastapi==",
        "a pip requirement",
    ),
    (
        "requirement with a single =",
        "- fastapi>=0.110",
        "- fastapi=0.110",
        "dependencies.frameworks.fastapi.0",
        "fastapi=0.110",
        "a pip requirement",
    ),
    (
        "requirements not a list",
        "  base:\n    - pydantic>=2.6\n",
        "  base: pydantic>=2.6\n",
        "dependencies.base",
        "base:",
        "must be a list, got a string",
    ),
    (
        "framework without requirements",
        "  frameworks:\n    fastapi:\n      - fastapi>=0.110\n",
        "  frameworks: {}\n",
        "dependencies.frameworks",
        "  frameworks: {}",
        "no requirements for framework 'fastapi'",
    ),
    (
        "framework options for an unknown framework",
        "  tests:\n    - pytest>=8\n",
        "  framework_options:\n    django:\n      stores:\n        memory: []\n  tests:\n    - pytest>=8\n",
        "dependencies.framework_options.django",
        "django:",
        "not a framework of this module; known: fastapi",
    ),
    (
        "template target",
        "output: settings.py}",
        "output: settings.py, target: docs}",
        "templates.0.target",
        "core/settings.py.j2",
        "use one of: package, tests",
    ),
    (
        "template output escapes",
        "output: settings.py}",
        "output: ../settings.py}",
        "templates.0.output",
        "core/settings.py.j2",
        "a relative path inside the kit",
    ),
    (
        "template unknown key",
        "output: settings.py}",
        "output: settings.py, mode: 755}",
        "templates.0.mode",
        "core/settings.py.j2",
        "allowed keys: output, target, template, when",
    ),
    (
        "template when test",
        "{contains: memory}",
        "{includes: memory}",
        "templates.1.when.stores",
        "core/memory.py.j2",
        "one of: equals, one_of, contains",
    ),
    (
        "template one_of not a list",
        "{contains: memory}",
        "{one_of: memory}",
        "templates.1.when.stores",
        "core/memory.py.j2",
        "one_of takes a non-empty list",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "key", "marker", "allowed"),
    [case[1:] for case in MANIFEST_ERRORS],
    ids=[case[0] for case in MANIFEST_ERRORS],
)
def test_manifest_errors_name_file_line_key_and_what_is_allowed(
    tmp_path: Path, old: str, new: str, key: str, marker: str, allowed: str
) -> None:
    text = replace_once(MODULE_YAML, old, new)
    path = _write(tmp_path, "module.yaml", text)
    with pytest.raises(SpecError) as caught:
        load_manifest(path)
    _assert_points_at(caught.value, path, line_of(text.removeprefix("\n"), marker), key, allowed)


OPTION_ERRORS = [
    (
        "unknown top-level key",
        "options:",
        "choices: []\noptions:",
        "choices",
        "choices: []",
        "allowed keys: constraints, options",
    ),
    ("option name", "  secure:", "  Secure:", "options.Secure", "Secure:", "lower-case identifiers"),
    (
        "option not a mapping",
        "  secure:\n    type: boolean\n    default: true\n    help: Secure cookies.\n    prompt: Secure?\n",
        "  secure: true\n",
        "options.secure",
        "secure: true",
        "must be a mapping, got a boolean",
    ),
    ("bad type", "type: boolean", "type: float", "options.secure.type", "type: float", "allowed: string, integer"),
    (
        "unknown option key",
        "help: Secure cookies.",
        "help: Secure cookies.\n    label: x",
        "options.secure.label",
        "label: x",
        "allowed keys: choices, default",
    ),
    (
        "missing default",
        "    default: true\n",
        "",
        "options.secure",
        "  secure:",
        "missing key 'default'",
    ),
    (
        "missing help",
        "    help: Secure cookies.\n",
        "",
        "options.secure.help",
        "  secure:",
        "must be a non-empty string, got nothing",
    ),
    (
        "boolean default",
        "default: true",
        "default: maybe",
        "options.secure.default",
        "default: maybe",
        "expected true or false",
    ),
    (
        "integer default below min",
        "default: 600",
        "default: 30",
        "options.ttl_seconds.default",
        "default: 30",
        "expected an integer from 60 to 3600",
    ),
    (
        "integer default a string",
        "default: 600",
        "default: soon",
        "options.ttl_seconds.default",
        "default: soon",
        "expected an integer from 60 to 3600",
    ),
    ("min not an integer", "min: 60", "min: 1.5", "options.ttl_seconds.min", "min: 1.5", "is not an integer"),
    ("max on a string", "    pattern:", "    max: 7\n    pattern:", "options.cookie_name.max", "max: 7", "integer"),
    (
        "min above max",
        "min: 60",
        "min: 5000",
        "options.ttl_seconds.min",
        "min: 5000",
        "must not be greater than max (3600)",
    ),
    (
        "choices empty",
        "choices: [memory, redis]",
        "choices: []",
        "options.stores.choices",
        "choices: []",
        "a non-empty list without repeats",
    ),
    (
        "choices repeated",
        "choices: [memory, redis]",
        "choices: [memory, memory]",
        "options.stores.choices",
        "choices: [memory, memory]",
        "without repeats",
    ),
    (
        "choices not a list",
        "choices: [fastapi]",
        "choices: fastapi",
        "options.framework.choices",
        "choices: fastapi",
        "must be a list, got a string",
    ),
    (
        "choices on an integer",
        "    min: 60",
        "    choices: [60]\n    min: 60",
        "options.ttl_seconds.choices",
        "choices: [60]",
        "only for choice and multichoice",
    ),
    (
        "choice default not a choice",
        "default: fastapi",
        "default: flask",
        "options.framework.default",
        "default: flask",
        "expected one of: fastapi",
    ),
    (
        "multichoice default not a subset",
        "default: [memory]",
        "default: [disk]",
        "options.stores.default",
        "default: [disk]",
        "a comma-separated subset of: memory, redis",
    ),
    (
        "invalid pattern",
        'pattern: "^[a-z_]+$"',
        'pattern: "^[a-z"',
        "options.cookie_name.pattern",
        "pattern:",
        "not a valid regular expression",
    ),
    (
        "pattern on a choice",
        "    default: fastapi",
        '    pattern: "x"\n    default: fastapi',
        "options.framework.pattern",
        'pattern: "x"',
        "only for string options",
    ),
    (
        "default against the pattern",
        "default: sid",
        "default: SID",
        "options.cookie_name.default",
        "default: SID",
        "a string matching ^[a-z_]+$",
    ),
    (
        "when names an unknown option",
        "when: {stores: {contains: redis}}",
        "when: {storage: {contains: redis}}",
        "options.redis_url.when.storage",
        "when:",
        "unknown option 'storage'; options: framework, stores, ttl_seconds",
    ),
    (
        "when names itself",
        "when: {stores: {contains: redis}}",
        "when: {redis_url: x}",
        "options.redis_url.when.redis_url",
        "when:",
        "cannot depend on itself",
    ),
    (
        "when contains a value that is not a choice",
        "when: {stores: {contains: redis}}",
        "when: {stores: {contains: disk}}",
        "options.redis_url.when.stores",
        "when:",
        "'disk' is not a choice of stores; expected one of: memory, redis",
    ),
    (
        "when contains on a choice option",
        "when: {stores: {contains: redis}}",
        "when: {framework: {contains: fastapi}}",
        "options.redis_url.when.framework",
        "when:",
        "contains needs a multichoice option",
    ),
    (
        "when equals a value the option cannot take",
        "when: {stores: {contains: redis}}",
        "when: {ttl_seconds: 5}",
        "options.redis_url.when.ttl_seconds",
        "when:",
        "expected an integer from 60 to 3600",
    ),
    (
        "when one_of with an invalid member",
        "when: {stores: {contains: redis}}",
        "when: {framework: {one_of: [fastapi, flask]}}",
        "options.redis_url.when.framework",
        "when:",
        "'flask' is not allowed for framework; expected one of: fastapi",
    ),
    (
        "when one_of empty",
        "when: {stores: {contains: redis}}",
        "when: {framework: {one_of: []}}",
        "options.redis_url.when.framework",
        "when:",
        "one_of takes a non-empty list",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "key", "marker", "allowed"),
    [case[1:] for case in OPTION_ERRORS],
    ids=[case[0] for case in OPTION_ERRORS],
)
def test_option_spec_errors_name_file_line_key_and_what_is_allowed(
    tmp_path: Path, old: str, new: str, key: str, marker: str, allowed: str
) -> None:
    text = replace_once(OPTIONS_YAML, old, new)
    path = _write(tmp_path, "base.yaml", text)
    with pytest.raises(SpecError) as caught:
        load_option_specs(path)
    _assert_points_at(caught.value, path, line_of(text.removeprefix("\n"), marker), key, allowed)


def test_malformed_yaml_names_the_file_and_the_line(tmp_path: Path) -> None:
    text = replace_once(OPTIONS_YAML, "    help: Web framework.", "    help: web: framework")
    path = _write(tmp_path, "base.yaml", text)
    with pytest.raises(SpecError) as caught:
        load_option_specs(path)
    line = line_of(text.removeprefix("\n"), "web: framework")
    # libyaml says "...not allowed in this context", the pure-Python parser "...not allowed here".
    assert str(caught.value).startswith(f"{path}:{line}: invalid YAML: mapping values are not allowed ")


def test_duplicate_keys_name_the_line_of_the_second_and_the_dotted_key(tmp_path: Path) -> None:
    text = replace_once(OPTIONS_YAML, "    default: 600\n", "    default: 600\n    default: 900\n")
    path = _write(tmp_path, "base.yaml", text)
    with pytest.raises(SpecError) as caught:
        load_option_specs(path)
    _assert_points_at(
        caught.value, path, line_of(text.removeprefix("\n"), "default: 900"), "options.ttl_seconds.default", "once"
    )


@pytest.mark.parametrize(
    ("text", "got"),
    [("", "nothing"), ("- a\n- b\n", "a list"), ("just text\n", "a string")],
    ids=["empty", "list", "scalar"],
)
def test_a_document_that_is_not_a_mapping_says_so(tmp_path: Path, text: str, got: str) -> None:
    path = _write(tmp_path, "module.yaml", text)
    with pytest.raises(SpecError, match=f"the document must be a mapping, got {got}") as caught:
        load_manifest(path)
    assert str(caught.value).startswith(str(path))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="file not found") as caught:
        load_manifest(tmp_path / "absent.yaml")
    assert caught.value.path == str(tmp_path / "absent.yaml")


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "module.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(SpecError, match="cannot be read") as caught:
        load_manifest(path)
    assert caught.value.path == str(path)


def test_a_template_condition_is_checked_against_the_option_spec(tmp_path: Path) -> None:
    """A typo in a template's `when:` would silently drop the file; the kit refuses to load instead."""
    spec = load_option_specs(_write(tmp_path, "base.yaml", OPTIONS_YAML))
    text = replace_once(MODULE_YAML, "{stores: {contains: memory}}", "{stores: {contains: memroy}}")
    path = _write(tmp_path, "module.yaml", text)
    load_manifest(path)  # on its own the manifest cannot know the options
    with pytest.raises(SpecError) as caught:
        load_manifest(path, spec)
    _assert_points_at(
        caught.value,
        path,
        line_of(text.removeprefix("\n"), "core/memory.py.j2"),
        "templates.1.when.stores",
        "'memroy' is not a choice of stores; expected one of: memory, redis",
    )

    unknown = replace_once(MODULE_YAML, "{stores: {contains: memory}}", "{store: {contains: memory}}")
    with pytest.raises(SpecError, match="unknown option 'store'; options: framework"):
        load_manifest(_write(tmp_path, "module.yaml", unknown), spec)


def test_the_kit_validates_template_conditions_when_it_loads(tmp_path: Path) -> None:
    build_file_tree(tmp_path / "kit", {"module.yaml": MODULE_YAML, "config/base.yaml": OPTIONS_YAML})
    manifest = tmp_path / "kit" / "module.yaml"
    manifest.write_text(replace_once(MODULE_YAML, "{contains: memory}", "{equals: memory}"))
    with pytest.raises(SpecError, match=r"templates\.1\.when\.stores: 'memory' is not allowed for stores"):
        _ = Kit(tmp_path / "kit").manifest


def test_a_constraint_must_compare_integer_options(tmp_path: Path) -> None:
    path = tmp_path / "base.yaml"
    path.write_text(
        "options:\n"
        "  a: {type: integer, default: 1, help: h, prompt: p}\n"
        "  b: {type: string, default: x, help: h, prompt: p}\n"
        "constraints:\n"
        "  - {option: a, at_most: b, message: m}\n"
    )
    with pytest.raises(SpecError, match=r"base.yaml:5: constraints\.0\.at_most: 'b' is not an integer option"):
        load_option_specs(path)


def test_defaults_that_break_a_constraint_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "base.yaml"
    path.write_text(
        "options:\n"
        "  a: {type: integer, default: 5, help: h, prompt: p}\n"
        "  b: {type: integer, default: 1, help: h, prompt: p}\n"
        "constraints:\n"
        "  - {option: a, at_most: b, message: a cannot exceed b}\n"
    )
    with pytest.raises(SpecError, match="the defaults break this rule: a cannot exceed b"):
        load_option_specs(path)


RUNTIME_DEFAULTS = """
runtime_defaults:
  ttl_seconds:
    constant: DEFAULT_TTL
    variable: SESSION_TTL
    kind: seconds
    default: 600
"""


@pytest.mark.parametrize(
    ("old", "new", "key", "allowed"),
    [
        ("constant: DEFAULT_TTL", "constant: TTL", "runtime_defaults.ttl_seconds.constant", "expected DEFAULT_<NAME>"),
        ("variable: SESSION_TTL", "variable: TTL", "runtime_defaults.ttl_seconds.variable", "expected SESSION_<NAME>"),
        ("kind: seconds", "kind: hours", "runtime_defaults.ttl_seconds.kind", "allowed: seconds, count, limit"),
        ("default: 600", "default: 0", "runtime_defaults.ttl_seconds.default", "a whole number of seconds"),
        ("kind: seconds", "kind: seconds\n    choices: [a]", "runtime_defaults.ttl_seconds.choices", "only for"),
    ],
    ids=["constant", "variable", "kind", "default", "choices on seconds"],
)
def test_runtime_default_errors_name_file_line_key_and_what_is_allowed(
    tmp_path: Path, old: str, new: str, key: str, allowed: str
) -> None:
    # The stand-in spec's own ttl_seconds option would clash with the name: rename it first.
    text = OPTIONS_YAML.replace("ttl_seconds:", "lifetime:") + replace_once(RUNTIME_DEFAULTS, old, new)
    path = _write(tmp_path, "base.yaml", text)
    with pytest.raises(SpecError) as caught:
        load_option_specs(path)
    assert key in str(caught.value)
    assert allowed in str(caught.value)


def test_a_runtime_default_cannot_also_be_an_option(tmp_path: Path) -> None:
    path = _write(tmp_path, "base.yaml", OPTIONS_YAML + RUNTIME_DEFAULTS)
    with pytest.raises(SpecError, match=r"runtime_defaults\.ttl_seconds: ttl_seconds is an option too"):
        load_option_specs(path)


def test_an_option_help_longer_than_one_line_is_refused(tmp_path: Path) -> None:
    text = replace_once(OPTIONS_YAML, "help: Web framework.", "help: " + "word " * 30)
    with pytest.raises(SpecError, match=r"options\.framework\.help: help is one line of at most 100 characters"):
        load_option_specs(_write(tmp_path, "base.yaml", text))
