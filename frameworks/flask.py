"""Flask (WSGI): an extension with `init_app`, request hooks, `g.session` and a Blueprint.

Flask serves requests synchronously, so the shared core is rendered as its
synchronous twin (blocking store clients, no event loop per request).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..engine.detect import Signature
from ..engine.project import ProjectLayout
from ..engine.spec import Condition, TemplateFile
from .base import SECRET_KEY_STEP, StandardPlugin, tests_step

_ADAPTER = (
    TemplateFile("flask/extension.py.j2", "extension.py"),
    TemplateFile("flask/routes.py.j2", "routes.py", when=Condition((("management_routes", "equals", True),))),
    TemplateFile("tests/flask/conftest.py.j2", "conftest.py", target="tests"),
    TemplateFile("tests/flask/test_session_flask.py.j2", "test_session_flask.py", target="tests"),
    TemplateFile("tests/shared/test_memory_store.py.j2", "test_memory_store.py", target="tests"),
    TemplateFile(
        "tests/flask/audit/metrics.py.j2",
        "test_session_audit.py",
        target="tests",
        when=Condition((("audit", "equals", "metrics"),)),
    ),
    TemplateFile(
        "tests/flask/test_session_management.py.j2",
        "test_session_management.py",
        target="tests",
        when=Condition((("management_routes", "equals", True),)),
    ),
)


class FlaskPlugin(StandardPlugin):
    """Flask 3: the core is synchronous, the adapter is a Flask extension."""

    name = "flask"
    display_name = "Flask"
    signature = Signature(("flask",), "flask", "Flask")
    async_core = False

    def adapter_templates(self) -> Sequence[TemplateFile]:
        return _ADAPTER

    def adapter_exports(self) -> list[tuple[str, list[str]]]:
        return [
            (
                "extension",
                [
                    "Sessions",
                    "current_principal",
                    "get_session",
                    "get_session_manager",
                    "require_principal",
                    "require_recent_auth",
                ],
            ),
        ]

    def next_steps(self, layout: ProjectLayout) -> list[str]:
        return [
            f"Install it: `from {layout.package} import Sessions`, then `Sessions(app)` "
            "(or `sessions.init_app(app)` in an application factory).",
            SECRET_KEY_STEP,
            f"Use it in a view: `session = get_session()` with `from {layout.package} import get_session`.",
            tests_step(layout),
        ]
