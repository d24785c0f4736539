"""Litestar: an `InitPlugin` with Litestar middleware, dependency injection and a `Router`."""

from __future__ import annotations

from collections.abc import Sequence

from ..engine.detect import Signature
from ..engine.project import ProjectLayout
from ..engine.spec import Condition, TemplateFile
from .base import SECRET_KEY_STEP, StandardPlugin, tests_step

_ADAPTER = (
    TemplateFile("asgi/asgi.py.j2", "asgi.py"),
    TemplateFile("litestar/middleware.py.j2", "middleware.py"),
    TemplateFile("litestar/dependencies.py.j2", "dependencies.py"),
    TemplateFile("litestar/integration.py.j2", "integration.py"),
    TemplateFile("litestar/routes.py.j2", "routes.py", when=Condition((("management_routes", "equals", True),))),
    TemplateFile("tests/litestar/conftest.py.j2", "conftest.py", target="tests"),
    # The HTTP scenarios are shared; conftest.py builds this framework's demo app for them.
    TemplateFile("tests/shared/test_session_http.py.j2", "test_session_http.py", target="tests"),
    TemplateFile("tests/shared/test_memory_store.py.j2", "test_memory_store.py", target="tests"),
)


class LitestarPlugin(StandardPlugin):
    """Litestar: the session arrives through Litestar's own dependency injection."""

    name = "litestar"
    display_name = "Litestar"
    signature = Signature(("litestar",), "litestar", "Litestar")

    def adapter_templates(self) -> Sequence[TemplateFile]:
        return _ADAPTER

    def adapter_exports(self) -> list[tuple[str, list[str]]]:
        return [
            (
                "dependencies",
                [
                    "ManagerDep",
                    "PrincipalDep",
                    "WebSessionDep",
                    "provide_session",
                    "provide_session_manager",
                    "require_principal",
                    "require_recent_auth",
                ],
            ),
            ("integration", ["SessionPlugin"]),
            ("middleware", ["SessionMiddleware"]),
        ]

    def next_steps(self, layout: ProjectLayout) -> list[str]:
        return [
            f"Mount it: `from {layout.package} import SessionPlugin`, then "
            "`Litestar(route_handlers=[...], plugins=[SessionPlugin()])`.",
            SECRET_KEY_STEP,
            f"Use it in a handler: `async def view(session: WebSessionDep)` "
            f"with `from {layout.package} import WebSessionDep`.",
            tests_step(layout),
        ]
