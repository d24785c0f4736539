"""Every runtime name a user meets is documented: settings, events, fault codes, presets, routes.

The names come from a real generated package (JWT mode, management routes on), not from a list kept here,
so a new setting, event or error without documentation fails this test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from runtime_support import generated_package

REFERENCE = (Path(__file__).resolve().parents[1] / "docs" / "api-reference.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("rt_docs")
    options = ["token_format=jwt", "management_routes=true", "stores=memory,file,sql,redis"]
    with generated_package(root, "rt_docs", options) as package:
        yield package


def _subclasses(base: type) -> list[type]:
    found = []
    for cls in base.__subclasses__():
        found += [cls, *_subclasses(cls)]
    return found


def test_every_setting_and_its_variable_are_documented(sessions: ModuleType) -> None:
    missing = [
        name
        for name in sessions.SessionSettings.model_fields
        if f"`{name}`" not in REFERENCE or f"`SESSION_{name.upper()}`" not in REFERENCE
    ]
    assert missing == []


def test_every_event_name_is_documented(sessions: ModuleType) -> None:
    assert [name for name in sessions.EVENT_NAMES if f"`{name}`" not in REFERENCE] == []


def test_every_error_class_and_code_is_documented(sessions: ModuleType) -> None:
    errors = [sessions.SessionError, *_subclasses(sessions.SessionError)]
    assert len(errors) > 10
    missing = [e.__name__ for e in errors if f"`{e.__name__}`" not in REFERENCE or f"`{e.code}`" not in REFERENCE]
    assert missing == []


def test_every_policy_preset_is_documented(sessions: ModuleType) -> None:
    presets = [name for name in dir(sessions) if name.endswith("_POLICY")]
    assert len(presets) == 4
    assert [name for name in presets if f"`{name}`" not in REFERENCE] == []


def test_every_management_route_is_documented(sessions: ModuleType) -> None:
    router = sessions.session_router()
    routes = {(method, route.path) for route in router.routes for method in route.methods}
    assert len(routes) >= 5
    missing = [f"{method} {path}" for method, path in sorted(routes) if f"`{method} {path}`" not in REFERENCE]
    assert missing == []
