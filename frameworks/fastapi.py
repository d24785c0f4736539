"""FastAPI: a pure ASGI middleware, a `WebSessionDep` dependency and `setup_sessions(app)`."""

from __future__ import annotations

from collections.abc import Sequence

from ..engine.detect import Signature
from ..engine.project import ProjectLayout
from ..engine.spec import Condition, TemplateFile
from .base import SECRET_KEY_STEP, StandardPlugin, tests_step

_ADAPTER = (
    TemplateFile("asgi/asgi.py.j2", "asgi.py"),
    TemplateFile("asgi/middleware.py.j2", "middleware.py"),
    TemplateFile("fastapi/dependencies.py.j2", "dependencies.py"),
    TemplateFile("fastapi/integration.py.j2", "integration.py"),
    TemplateFile("fastapi/routes.py.j2", "routes.py", when=Condition((("management_routes", "equals", True),))),
    TemplateFile("tests/fastapi/conftest.py.j2", "conftest.py", target="tests"),
    TemplateFile("tests/fastapi/test_session_lifecycle.py.j2", "test_session_lifecycle.py", target="tests"),
    TemplateFile("tests/fastapi/test_session_cookies.py.j2", "test_session_cookies.py", target="tests"),
    TemplateFile("tests/shared/test_memory_store.py.j2", "test_memory_store.py", target="tests"),
    TemplateFile("tests/fastapi/test_session_settings.py.j2", "test_session_settings.py", target="tests"),
    TemplateFile("tests/fastapi/test_session_policies.py.j2", "test_session_policies.py", target="tests"),
    TemplateFile("tests/fastapi/test_session_transports.py.j2", "test_session_transports.py", target="tests"),
    TemplateFile("tests/fastapi/test_session_events.py.j2", "test_session_events.py", target="tests"),
    TemplateFile("tests/fastapi/test_session_fuzz.py.j2", "test_session_fuzz.py", target="tests"),
    TemplateFile(
        "tests/fastapi/test_session_jwt.py.j2",
        "test_session_jwt.py",
        target="tests",
        when=Condition((("token_format", "equals", "jwt"),)),
    ),
    TemplateFile(
        "tests/fastapi/test_session_management.py.j2",
        "test_session_management.py",
        target="tests",
        when=Condition((("management_routes", "equals", True),)),
    ),
    *(
        TemplateFile(
            f"tests/fastapi/audit/{sink}.py.j2",
            "test_session_audit.py",
            target="tests",
            when=Condition((("audit", "equals", sink),)),
        )
        for sink in ("logger", "sql", "metrics")
    ),
    TemplateFile(
        "tests/fastapi/test_session_csrf.py.j2",
        "test_session_csrf.py",
        target="tests",
        when=Condition((("csrf", "equals", True),)),
    ),
)


class FastAPIPlugin(StandardPlugin):
    """The first framework; others implement the same `FrameworkPlugin` protocol."""

    name = "fastapi"
    display_name = "FastAPI"
    signature = Signature(("fastapi", "fastapi-slim"), "fastapi", "FastAPI", builds_on=("starlette",))

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
                    "get_session",
                    "get_session_manager",
                    "require_principal",
                    "require_recent_auth",
                ],
            ),
            ("integration", ["setup_sessions"]),
            ("middleware", ["SessionMiddleware"]),
        ]

    def next_steps(self, layout: ProjectLayout) -> list[str]:
        return [
            f"Mount it: `from {layout.package} import setup_sessions`, then `setup_sessions(app)` "
            "right after `app = FastAPI()`.",
            SECRET_KEY_STEP,
            f"Use it in a route: `async def view(session: WebSessionDep)` "
            f"with `from {layout.package} import WebSessionDep`.",
            tests_step(layout),
        ]
