"""The test requirements a project is told to install: exactly what its generated tests import.

The module's dependency profile lists every test requirement any framework's tests may use;
which of them one project needs is read from the rendered test files themselves, so the
printed line can never drift from the code (Flask's tests import neither httpx nor
hypothesis, so a Flask project is not told to install them).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..frameworks.base import RenderedFile

# Test clients that import a requirement on the tests' behalf: Starlette's TestClient (and so
# FastAPI's) and Litestar's are built on httpx.
IMPLIED_IMPORTS: dict[str, tuple[str, ...]] = {
    "fastapi.testclient": ("httpx",),
    "starlette.testclient": ("httpx",),
    "litestar.testing": ("httpx",),
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def imported_modules(sources: Iterable[bytes]) -> set[str]:
    """Every absolute module name the sources import, with the ones their imports imply."""
    found: set[str] = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue  # not Python (a kit may render other files into tests/): it imports nothing
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
    for module in list(found):
        found.update(IMPLIED_IMPORTS.get(module, ()))
    return found


def import_name(requirement: str) -> str:
    """The top-level module a requirement provides: "PyJWT>=2" -> "pyjwt", "pytest>=8" -> "pytest"."""
    match = _NAME.match(requirement.strip())
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return match.group(0).lower().replace("-", "_")


def imported_requirements(
    requirements: Sequence[str], rendered: Sequence[RenderedFile], tests_dir: PurePosixPath
) -> list[str]:
    """The requirements whose module some rendered test file imports, in the profile's order."""
    tests = [
        file.data
        for file in rendered
        if file.path.endswith(".py") and PurePosixPath(file.path).is_relative_to(tests_dir)
    ]
    tops = {module.split(".", 1)[0].lower() for module in imported_modules(tests)}
    return [requirement for requirement in requirements if import_name(requirement) in tops]
