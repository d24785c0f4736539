"""The renderer's filters: option values reach generated Python only as inert literals."""

from __future__ import annotations

import ast
import datetime
import enum
from pathlib import Path

import pytest
from helpers import build_file_tree
from hypothesis import given
from hypothesis import strategies as st

from session_kit.engine.render import Renderer, python_literal, timedelta_literal
from session_kit.errors import SpecError

# Text that stresses quoting: quotes of both kinds, triple quotes, backslashes, newlines, NULs.
_TRICKY = st.sampled_from(['"', "'", '"""', "'''", "\\", "\n", "\r", "\x00", "{", "}", "\\N{BULLET}", "%s", "\u2028"])
TEXT = st.lists(st.one_of(st.text(), _TRICKY), max_size=12).map("".join)
SCALARS = st.one_of(TEXT, st.integers(), st.booleans(), st.none())


def _only_literals(source: str) -> None:
    """`source` parses as one expression built from constants, lists and tuples only."""
    tree = ast.parse(source, mode="eval")
    for node in ast.walk(tree.body):
        negative = (
            isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
        )
        assert negative or isinstance(node, ast.Constant | ast.List | ast.Tuple | ast.Load | ast.USub), ast.dump(node)


@given(TEXT)
def test_any_text_round_trips_through_a_python_literal(value: str) -> None:
    source = python_literal(value)
    _only_literals(source)
    assert ast.literal_eval(source) == value


@given(st.one_of(SCALARS, st.lists(SCALARS, max_size=5), st.lists(SCALARS, max_size=5).map(tuple)))
def test_scalars_lists_and_tuples_round_trip(value: object) -> None:
    source = python_literal(value)
    _only_literals(source)
    assert ast.literal_eval(source) == value
    assert type(ast.literal_eval(source)) is type(value)


class _Sneaky(str):
    def __repr__(self) -> str:
        return "__import__('os').getcwd()"


class _Colour(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    "value",
    [1.5, float("nan"), {"a": 1}, {1, 2}, object(), b"bytes", [1, 2.0], (("x", {}),), _Sneaky("lax"), _Colour.RED],
    ids=[
        "float",
        "nan",
        "dict",
        "set",
        "object",
        "bytes",
        "float in list",
        "dict in tuple",
        "str subclass",
        "int enum",
    ],
)
def test_anything_but_plain_values_is_refused(value: object) -> None:
    with pytest.raises(TypeError):
        python_literal(value)


@pytest.mark.parametrize(
    ("seconds", "literal"),
    [
        (0, "timedelta(0)"),
        (59, "timedelta(seconds=59)"),
        (60, "timedelta(minutes=1)"),
        (1800, "timedelta(minutes=30)"),
        (5400, "timedelta(hours=1, minutes=30)"),
        (86400, "timedelta(days=1)"),
        (604800, "timedelta(days=7)"),
        (90061, "timedelta(days=1, hours=1, minutes=1, seconds=1)"),
    ],
)
def test_timedelta_literal_reads_like_a_person_would_write_it(seconds: int, literal: str) -> None:
    assert timedelta_literal(seconds) == literal


@given(st.integers(min_value=0, max_value=999_999_999 * 86400))
def test_timedelta_literal_evaluates_to_the_same_duration(seconds: int) -> None:
    source = timedelta_literal(seconds)
    value = eval(source, {"__builtins__": {}, "timedelta": datetime.timedelta})
    assert value == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("value", [-1, True, 1.5, "60", None])
def test_timedelta_literal_refuses_what_is_not_a_count_of_seconds(value: object) -> None:
    with pytest.raises(TypeError):
        timedelta_literal(value)


def test_templates_use_the_filters_and_undefined_names_fail(tmp_path: Path) -> None:
    build_file_tree(
        tmp_path,
        {
            "ok.py.j2": "NAME = {{ name | py }}\nTTL = {{ ttl | timedelta }}\n",
            "typo.py.j2": "NAME = {{ nmae | py }}\n",
            "broken.py.j2": "X = 1\n{% if %}\n",
        },
    )
    renderer = Renderer(tmp_path)
    assert renderer.render("ok.py.j2", {"name": 'a"b', "ttl": 5400}) == (
        "NAME = 'a\"b'\nTTL = timedelta(hours=1, minutes=30)\n"
    )
    with pytest.raises(SpecError, match="template failed to render: 'nmae' is undefined") as undefined:
        renderer.render("typo.py.j2", {})
    assert undefined.value.path == str(tmp_path / "typo.py.j2")
    with pytest.raises(SpecError, match="template syntax error") as syntax:
        renderer.render("broken.py.j2", {})
    assert syntax.value.line == 2
    with pytest.raises(SpecError, match="template failed to render: floats are not option values"):
        renderer.render("ok.py.j2", {"name": 1.5, "ttl": 1})
    with pytest.raises(SpecError, match="template not found"):
        renderer.render("absent.py.j2", {})
