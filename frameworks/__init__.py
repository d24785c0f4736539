"""Framework plug-ins, by name."""

from __future__ import annotations

from ..errors import UserError
from .base import FrameworkPlugin, RenderedFile
from .fastapi import FastAPIPlugin
from .flask import FlaskPlugin
from .litestar import LitestarPlugin
from .starlette import StarlettePlugin

PLUGINS: dict[str, FrameworkPlugin] = {
    plugin.name: plugin for plugin in (FastAPIPlugin(), StarlettePlugin(), LitestarPlugin(), FlaskPlugin())
}


def get_plugin(name: str) -> FrameworkPlugin:
    """The plug-in for `name`; UserError listing the supported frameworks otherwise."""
    plugin = PLUGINS.get(name)
    if plugin is None:
        raise UserError(f"framework {name!r} is not supported; supported frameworks: {', '.join(sorted(PLUGINS))}")
    return plugin


__all__ = ["PLUGINS", "FrameworkPlugin", "RenderedFile", "get_plugin"]
