"""Read YAML while remembering the line of every key, so errors can point at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import SpecError, UserError

KeyPath = tuple[str | int, ...]

# libyaml's parser is several times faster and gives the same marks; fall back when absent.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML document plus the 1-based line of every key path in it."""

    path: Path
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, key_path: KeyPath) -> int | None:
        """The line of `key_path`, or of its nearest ancestor that has one."""
        probe = key_path
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), None)

    def error(self, key_path: KeyPath, message: str) -> SpecError:
        """A SpecError naming this file, the line of `key_path` and the dotted key."""
        dotted = ".".join(str(part) for part in key_path)
        return SpecError(self.path, message, line=self.line_of(key_path), key=dotted)


def load_yaml(path: Path, *, error_type: type[UserError] = SpecError) -> YamlDocument:
    """Parse `path` safely; duplicate keys and syntax errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _error(error_type, path, "file not found", None) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(error_type, path, f"cannot be read ({exc})", None) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(path, None)
        data = loader.construct_document(node)
        lines: dict[KeyPath, int] = {}
        _index(node, (), lines, loader, path, error_type)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "invalid YAML"
        raise _error(error_type, path, f"invalid YAML: {reason}", line) from None
    except yaml.YAMLError as exc:
        raise _error(error_type, path, f"invalid YAML: {exc}", None) from None
    finally:
        loader.dispose()
    return YamlDocument(path, data, lines)


def _index(
    node: yaml.Node,
    key_path: KeyPath,
    lines: dict[KeyPath, int],
    loader: yaml.SafeLoader | yaml.CSafeLoader,
    path: Path,
    error_type: type[UserError],
) -> None:
    lines.setdefault(key_path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[object] = set()
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            child = (*key_path, str(key))
            if key in seen:
                dotted = ".".join(str(part) for part in child)
                raise _error(error_type, path, "duplicate key; each key may appear only once", line, dotted)
            seen.add(key)
            lines[child] = line
            _index(value_node, child, lines, loader, path, error_type)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index(item, (*key_path, index), lines, loader, path, error_type)


def _error(error_type: type[UserError], path: Path, message: str, line: int | None, key: str = "") -> UserError:
    if issubclass(error_type, SpecError):
        return error_type(path, message, line=line, key=key)
    where = str(path) if line is None else f"{path}:{line}"
    return error_type(f"{where}: {key}: {message}" if key else f"{where}: {message}")
