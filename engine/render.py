"""One Jinja2 environment for every template; values arrive already validated."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from ..errors import SpecError
from .template_cache import bytecode_cache

_SAFE_SCALARS = (str, int, bool, type(None))


def python_literal(value: object) -> str:
    """The only way option values reach Python source: as an inert literal.

    Only plain scalars and lists/tuples of them are accepted; `repr` of those is
    always a literal, so no option value can smuggle code into generated files.
    """
    if isinstance(value, float):
        raise TypeError("floats are not option values")
    if type(value) in _SAFE_SCALARS:  # exactly: a subclass (a hook's str or IntEnum) may override __repr__
        return _double_quoted(repr(value)) if type(value) is str else repr(value)
    if isinstance(value, list | tuple):
        items = ", ".join(python_literal(item) for item in value)
        return f"[{items}]" if isinstance(value, list) else f"({items}{',' if len(value) == 1 else ''})"
    raise TypeError(f"{type(value).__name__} cannot be rendered as a Python literal")


def _double_quoted(literal: str) -> str:
    """Prefer double quotes, as ruff format does, so generated code needs no reformatting.

    `repr` falls back to single quotes only when the text has no `"`; then swapping the
    outer quotes is safe, because such text has no `'` either (repr would have used `"`).
    """
    if literal.startswith("'") and '"' not in literal:
        return f'"{literal[1:-1]}"'
    return literal


def timedelta_literal(seconds: object) -> str:
    """Seconds as a readable constructor: 5400 -> ``timedelta(hours=1, minutes=30)``."""
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
        raise TypeError(f"timedelta needs a non-negative integer number of seconds, got {seconds!r}")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{unit}={amount}"
        for unit, amount in (("days", days), ("hours", hours), ("minutes", minutes), ("seconds", secs))
        if amount
    ]
    return f"timedelta({', '.join(parts)})" if parts else "timedelta(0)"


def _defined(convert: Callable[[object], str]) -> Callable[[object], str]:
    """Filters receive undefined values too: fail with Jinja's "'x' is undefined", not a type error."""

    def apply(value: object) -> str:
        if isinstance(value, jinja2.Undefined):
            value._fail_with_undefined_error()
        return convert(value)

    return apply


# Everything about the environment that shapes compiled templates (and so the cache key).
_ENVIRONMENT_OPTIONS: dict[str, Any] = {
    "keep_trailing_newline": True,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "autoescape": False,  # code, not HTML
}


class Renderer:
    """Renders kit templates by name with StrictUndefined and kept trailing newlines.

    Compiled templates are kept in a per-user cache between runs (see template_cache);
    `cache_root` moves it, and `cache=False` turns it off.
    """

    def __init__(self, templates_dir: Path, *, cache: bool = True, cache_root: Path | None = None) -> None:
        self.templates_dir = templates_dir
        options = {**_ENVIRONMENT_OPTIONS, "undefined": "StrictUndefined"}
        self.environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir)),
            undefined=jinja2.StrictUndefined,
            bytecode_cache=bytecode_cache(options, cache_root) if cache else None,
            **_ENVIRONMENT_OPTIONS,
        )
        self.environment.filters["py"] = _defined(python_literal)
        self.environment.filters["timedelta"] = _defined(timedelta_literal)

    def exists(self, name: str) -> bool:
        """Whether the template file is in the kit."""
        return (self.templates_dir / name).is_file()

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        """Render one template; a template fault is a SpecError naming it."""
        try:
            return self.environment.get_template(name).render(context)
        except jinja2.TemplateNotFound:
            raise SpecError(self.templates_dir / name, "template not found") from None
        except jinja2.TemplateSyntaxError as exc:
            raise SpecError(
                self.templates_dir / name, f"template syntax error: {exc.message}", line=exc.lineno
            ) from None
        except (jinja2.UndefinedError, TypeError) as exc:
            raise SpecError(self.templates_dir / name, f"template failed to render: {exc}") from None
