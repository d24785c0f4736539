"""Validate a parsed state file field by field, so a damaged one is named, never a traceback.

Each check returns the value with its type narrowed, or raises DamagedState naming the file,
the dotted key and what to do about it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import DamagedState

SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?")
SHA256 = re.compile(r"[0-9a-f]{64}")


class Checker:
    """The file being checked and the repair its messages suggest."""

    def __init__(self, path: Path, remedy: str) -> None:
        self.path = path
        self.remedy = remedy

    def fail(self, key: str, problem: str) -> DamagedState:
        return DamagedState(self.path, key, problem, self.remedy)

    def read_json(self, what: str) -> Any:
        """The file's JSON document; DamagedState saying it is no readable `what` when it is not."""
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self.fail("", f"not a readable {what} ({exc})") from None

    def field(self, body: Mapping[str, Any], key: str, where: str) -> Any:
        if key not in body:
            raise self.fail(_join(where, key), "is missing")
        return body[key]

    def mapping(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise self.fail(key, f"must be a mapping, not {_kind(value)}")
        return value

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, not {_kind(value)}")
        return value

    def strings(self, value: Any, key: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(key, f"must be a list of strings, not {_kind(value)}")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {_kind(value)}")
        return value

    def integer(self, value: Any, key: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, f"must be an integer, not {_kind(value)}")
        return value

    def version(self, value: Any, key: str) -> str:
        text = self.string(value, key)
        if not SEMVER.fullmatch(text):
            raise self.fail(key, f"{text!r} is not a version (MAJOR.MINOR.PATCH)")
        return text

    def digest(self, value: Any, key: str) -> str:
        text = self.string(value, key)
        if not SHA256.fullmatch(text):
            raise self.fail(key, f"{text!r} is not a sha256 hex digest")
        return text

    def relative_path(self, value: Any, key: str) -> str:
        text = self.string(value, key)
        path = PurePosixPath(text)
        if not text or path.is_absolute() or ".." in path.parts or "\\" in text:
            raise self.fail(key, f"{text!r} is not a path inside the project")
        return text


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)
