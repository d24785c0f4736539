"""A Jinja2 extension giving copier and cookiecutter session-kit's two filters, so all three
tools render the very same templates in the generation benchmark."""

from __future__ import annotations

from jinja2 import Environment
from jinja2.ext import Extension

from session_kit.engine.render import python_literal, timedelta_literal


class SessionKitFilters(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["py"] = python_literal
        environment.filters["timedelta"] = timedelta_literal
