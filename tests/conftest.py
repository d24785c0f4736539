"""Shared fixtures: a clean environment, a throw-away kit, an empty project, the test option spec."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from helpers import OPTIONS_YAML, build_file_tree, make_kit, new_project
from store_suite import START

from session_kit.engine.kit import Kit
from session_kit.engine.spec import OptionSpecSet, load_option_specs


@pytest.fixture(autouse=True)
def _no_session_kit_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that read os.environ must not see the developer's SESSION_KIT_* settings."""
    for name in list(os.environ):
        if name.startswith("SESSION_KIT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    return make_kit(tmp_path)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project with an `app` package."""
    return new_project(tmp_path / "project")


@pytest.fixture
def spec(tmp_path: Path) -> OptionSpecSet:
    """OPTIONS_YAML loaded: one option of every type, and a conditional one."""
    build_file_tree(tmp_path / "spec", {"base.yaml": OPTIONS_YAML})
    return load_option_specs(tmp_path / "spec" / "base.yaml")


@pytest.fixture
def anyio_backend() -> str:
    """The store tests run on asyncio, the loop the generated code targets."""
    return "asyncio"


@pytest.fixture
def clock(sessions: ModuleType) -> Any:
    """A settable clock from the generated package; modules that use it define `sessions`."""
    return sessions.ManualClock(START)
