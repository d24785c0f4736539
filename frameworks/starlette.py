"""Starlette: the shared pure ASGI middleware, request helpers, routes as `Route` objects."""

from __future__ import annotations

from collections.abc import Sequence

from ..engine.detect import Signature
from ..engine.project import ProjectLayout
from ..engine.spec import Condition, TemplateFile
from .base import SECRET_KEY_STEP, StandardPlugin, tests_step

_ADAPTER = (
    TemplateFile("asgi/asgi.py.j2", "asgi.py"),
    TemplateFile("asgi/middleware.py.j2", "middleware.py"),
    TemplateFile("starlette/access.py.j2", "access.py"),
    TemplateFile("starlette/integration.py.j2", "integration.py"),
    TemplateFile("starlette/routes.py.j2", "routes.py", when=Condition((("management_routes", "equals", True),))),
    TemplateFile("tests/starlette/conftest.py.j2", "conftest.py", target="tests"),
    # The HTTP scenarios are shared; conftest.py builds this framework's demo app for them.
    TemplateFile("tests/shared/test_session_http.py.j2", "test_session_http.py", target="tests"),
    TemplateFile("tests/shared/test_memory_store.py.j2", "test_memory_store.py", target="tests"),
)


class StarlettePlugin(StandardPlugin):
    """Starlette without FastAPI: endpoints take the request and ask it for the session."""

    name = "starlette"
    display_name = "Starlette"
    signature = Signature(("starlette",), "starlette", "Starlette")

    def adapter_templates(self) -> Sequence[TemplateFile]:
        return _ADAPTER

    def adapter_exports(self) -> list[tuple[str, list[str]]]:
        return [
            (
                "access",
                ["get_session", "get_session_manager", "require_principal", "require_recent_auth"],
            ),
            ("integration", ["setup_sessions"]),
            ("middleware", ["SessionMiddleware"]),
        ]

    def next_steps(self, layout: ProjectLayout) -> list[str]:
        return [
            f"Mount it: `from {layout.package} import setup_sessions`, then `setup_sessions(app)` "
            "right after `app = Starlette(routes=...)`.",
            SECRET_KEY_STEP,
            f"Use it in an endpoint: `session = get_session(request)` with `from {layout.package} import get_session`.",
            tests_step(layout),
        ]
