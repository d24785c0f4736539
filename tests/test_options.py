"""Option values: where they come from, which source wins, how text is converted, and how bad values are reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import build_file_tree, line_of

from session_kit.engine.kit import Kit
from session_kit.engine.options import coerce_text, parse_assignments, read_answers_file, resolve
from session_kit.engine.spec import OptionSpec, OptionSpecSet
from session_kit.errors import AnswersFileError, OptionError
from session_kit.generate import GenerateRequest, generate, prepare


def _option(spec: OptionSpecSet, name: str) -> OptionSpec:
    option = spec.get(name)
    assert option is not None
    return option


def _answers(tmp_path: Path, text: str) -> Path:
    build_file_tree(tmp_path, {"answers.yaml": text})
    return tmp_path / "answers.yaml"


def test_each_source_wins_over_the_ones_below_it(tmp_path: Path, kit: Kit, project: Path) -> None:
    """default < lock < answers file < SESSION_KIT_* < --set, each layer visible in `sources`."""
    fresh = prepare(GenerateRequest(project_dir=project, kit=kit, environ={})).options
    assert (fresh.values["transport"], fresh.sources["transport"]) == ("cookie", "default")
    recorded = ("transport=header", "audit=none", "token_format=jwt", "management_routes=true")
    generate(GenerateRequest(project_dir=project, kit=kit, assignments=recorded, environ={}))
    answers = _answers(tmp_path, "audit: sql\ntoken_format: opaque\nmanagement_routes: false\n")
    environ = {"SESSION_KIT_TOKEN_FORMAT": "jwt", "SESSION_KIT_MANAGEMENT_ROUTES": "true"}
    request = GenerateRequest(
        project_dir=project, kit=kit, answers_file=answers, environ=environ, assignments=("management_routes=no",)
    )
    options = prepare(request).options
    expected = {
        "transport": ("header", "lock"),
        "audit": ("sql", "answers"),
        "token_format": ("jwt", "environment"),
        "management_routes": (False, "--set"),
    }
    assert {name: (options.values[name], options.sources[name]) for name in expected} == expected


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("secure", "yes", True),
        ("secure", " ON ", True),
        ("secure", "1", True),
        ("secure", "False", False),
        ("secure", "off", False),
        ("secure", "0", False),
        ("secure", "maybe", "maybe"),  # left as text, so validation can say what is allowed
        ("ttl_seconds", "120", 120),
        ("ttl_seconds", " 120 ", 120),
        ("ttl_seconds", "-5", -5),
        ("ttl_seconds", "1.5", "1.5"),
        ("ttl_seconds", "0x10", "0x10"),
        ("stores", "memory", ["memory"]),
        ("stores", " memory , redis ", ["memory", "redis"]),
        ("stores", "memory,,", ["memory"]),
        ("cookie_name", "  sid  ", "sid"),
    ],
)
def test_text_is_converted_to_the_option_type(spec: OptionSpecSet, name: str, text: str, value: Any) -> None:
    assert coerce_text(_option(spec, name), text) == value


def test_set_values_are_converted_and_validated(spec: OptionSpecSet) -> None:
    assignments = parse_assignments(["secure=no", "ttl_seconds=120", "stores=memory,redis"], spec)
    resolved = resolve(spec, assignments=assignments)
    assert (resolved.values["secure"], resolved.values["ttl_seconds"], resolved.values["stores"]) == (
        False,
        120,
        ["memory", "redis"],
    )
    assert {resolved.sources[name] for name in ("secure", "ttl_seconds", "stores")} == {"--set"}


def test_an_unknown_set_key_suggests_the_closest_option(spec: OptionSpecSet) -> None:
    with pytest.raises(OptionError) as caught:
        parse_assignments(["ttl_second=120"], spec)
    message = str(caught.value)
    assert "--set ttl_second: unknown option (did you mean 'ttl_seconds'?)" in message
    assert "options: framework, stores, ttl_seconds, cookie_name, secure, redis_url" in message


def test_a_set_without_equals_is_explained(spec: OptionSpecSet) -> None:
    with pytest.raises(OptionError, match="expected KEY=VALUE"):
        parse_assignments(["ttl_seconds"], spec)


@pytest.mark.parametrize(
    ("pair", "allowed"),
    [
        ("ttl_seconds=30", "not allowed for ttl_seconds; expected an integer from 60 to 3600"),
        ("ttl_seconds=soon", "not allowed for ttl_seconds; expected an integer from 60 to 3600"),
        ("secure=maybe", "not allowed for secure; expected true or false"),
        ("stores=memory,disk", "not allowed for stores; expected a comma-separated subset of: memory, redis"),
        ("stores=memory,memory", "(no repeats)"),
        ("stores=", "not allowed for stores"),
        ("cookie_name=Bad!", "not allowed for cookie_name; expected a string matching ^[a-z_]+$"),
        ("framework=flask", "not allowed for framework; expected one of: fastapi"),
    ],
)
def test_an_invalid_set_value_names_the_option_and_what_is_allowed(
    spec: OptionSpecSet, pair: str, allowed: str
) -> None:
    with pytest.raises(OptionError) as caught:
        resolve(spec, assignments=parse_assignments([pair], spec))
    assert allowed in str(caught.value)
    assert str(caught.value).endswith("(from --set)")


def test_setting_an_option_whose_condition_does_not_hold_warns(spec: OptionSpecSet) -> None:
    resolved = resolve(spec, assignments={"redis_url": "redis://cache"})
    assert resolved.warnings == ("redis_url is ignored because its condition does not hold (stores contains 'redis')",)
    assert "redis_url" not in resolved.active(spec)
    with_redis = resolve(spec, assignments={"redis_url": "redis://cache", "stores": ["redis"]})
    assert with_redis.warnings == ()
    assert with_redis.active(spec)["redis_url"] == "redis://cache"


def test_answers_file_values_are_read_and_converted(tmp_path: Path, spec: OptionSpecSet) -> None:
    path = _answers(
        tmp_path,
        """
        ttl_seconds: "120"   # quoted numbers are converted like --set values
        secure: false
        stores: memory, redis
        cookie_name: token
        """,
    )
    assert read_answers_file(path, spec) == {
        "ttl_seconds": 120,
        "secure": False,
        "stores": ["memory", "redis"],
        "cookie_name": "token",
    }


def test_an_empty_answers_file_sets_nothing(tmp_path: Path, spec: OptionSpecSet) -> None:
    assert read_answers_file(_answers(tmp_path, "# nothing yet\n"), spec) == {}


def test_malformed_answers_name_the_file_and_line(tmp_path: Path, spec: OptionSpecSet) -> None:
    text = "secure: true\nttl_seconds: [120\ncookie_name: sid\n"
    path = _answers(tmp_path, text)
    with pytest.raises(AnswersFileError) as caught:
        read_answers_file(path, spec)
    assert str(caught.value).startswith(f"{path}:{line_of(text, 'cookie_name')}: invalid YAML")


def test_an_unknown_answer_names_its_line_and_the_closest_option(tmp_path: Path, spec: OptionSpecSet) -> None:
    text = "secure: true\n\ncookie: sid\n"
    path = _answers(tmp_path, text)
    with pytest.raises(AnswersFileError) as caught:
        read_answers_file(path, spec)
    assert str(caught.value) == f"{path}:3: cookie: unknown option (did you mean 'cookie_name'?)"


def test_an_invalid_answer_names_its_line_and_what_is_allowed(tmp_path: Path, spec: OptionSpecSet) -> None:
    path = _answers(tmp_path, "secure: true\nttl_seconds: 5\n")
    with pytest.raises(AnswersFileError) as caught:
        read_answers_file(path, spec)
    assert str(caught.value) == (
        f"{path}:2: ttl_seconds: 5 is not allowed for ttl_seconds; expected an integer from 60 to 3600"
    )


def test_a_repeated_answer_names_its_second_line(tmp_path: Path, spec: OptionSpecSet) -> None:
    path = _answers(tmp_path, "secure: true\nttl_seconds: 120\nsecure: false\n")
    with pytest.raises(AnswersFileError) as caught:
        read_answers_file(path, spec)
    assert str(caught.value).startswith(f"{path}:3: secure: duplicate key")


@pytest.mark.parametrize("text", ["- secure\n- ttl_seconds\n", "secure\n"], ids=["list", "scalar"])
def test_answers_that_are_not_a_mapping_are_refused(tmp_path: Path, spec: OptionSpecSet, text: str) -> None:
    path = _answers(tmp_path, text)
    with pytest.raises(AnswersFileError, match="must be a mapping of option: value") as caught:
        read_answers_file(path, spec)
    assert str(caught.value).startswith(str(path))


def test_a_missing_answers_file_is_named(tmp_path: Path, spec: OptionSpecSet) -> None:
    with pytest.raises(AnswersFileError, match="file not found") as caught:
        read_answers_file(tmp_path / "nope.yaml", spec)
    assert str(tmp_path / "nope.yaml") in str(caught.value)


def test_a_constraint_between_options_is_enforced_after_merging(tmp_path: Path) -> None:
    from session_kit.engine.spec import load_option_specs

    text = """
    options:
      idle:
        {type: integer, default: 60, min: 1, max: 100000, help: Idle., prompt: Idle?}
      ttl:
        {type: integer, default: 600, min: 1, max: 100000, help: Lifetime., prompt: Lifetime?}
    constraints:
      - {option: idle, at_most: ttl, message: the idle timeout cannot be longer than the lifetime}
    """
    build_file_tree(tmp_path, {"base.yaml": text})
    spec = load_option_specs(tmp_path / "base.yaml")
    with pytest.raises(OptionError, match=r"idle=9000 \(from --set\) exceeds ttl=3600"):
        resolve(spec, assignments={"idle": 9000, "ttl": 3600})
    assert resolve(spec, assignments={"idle": 3600, "ttl": 3600}).values["ttl"] == 3600
