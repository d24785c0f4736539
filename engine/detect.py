"""What the project already says: its web framework and the package that holds its app.

The framework comes from the declared dependencies first (pyproject.toml: PEP 621
dependencies and optional groups, PEP 735 dependency groups, Poetry's dependencies and
groups; requirements*.txt), and only when they name none or several, from the code (a
module that imports the framework and builds its app: `Flask(__name__)`, `FastAPI(`).
The package is the one that holds the app: under src/, a flat package (flaskr's
`create_app`), or `app/`. Every finding keeps its evidence, so the user is told why.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Folders that hold no project code of interest (environments, caches, build output).
_SKIP_DIRS = {
    "node_modules",
    "site-packages",
    "build",
    "dist",
    "venv",
    "env",
    "__pycache__",
    "docs",
}
# Scanning stops here: detection must stay fast in a large repository.
_MAX_FILES = 3000
_MAX_BYTES = 512 * 1024
_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_APP_FACTORY = re.compile(r"^\s*(?:async\s+)?def\s+create_app\s*\(", re.M)


@dataclass(frozen=True)
class Signature:
    """How a framework shows in a project: its distributions, its module and app class."""

    distributions: tuple[str, ...]
    module: str
    app_class: str
    # Frameworks this one is built on; naming them beside it is no second framework.
    builds_on: tuple[str, ...] = ()

    def builds_app(self, text: str) -> int | None:
        """The line where `text` builds this framework's app (and imports the framework), if any."""
        if not re.search(rf"^\s*(?:from|import)\s+{re.escape(self.module)}\b", text, re.M):
            return None
        found = re.search(rf"\b{re.escape(self.app_class)}\s*\(", text)
        return None if found is None else text.count("\n", 0, found.start()) + 1


@dataclass(frozen=True)
class FrameworkDetection:
    """Frameworks the project names, each with its evidence, and the one chosen if unambiguous."""

    chosen: str | None
    evidence: Mapping[str, tuple[str, ...]]
    notes: tuple[str, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return self.chosen is None and len(self.evidence) > 1

    def describe(self) -> str:
        """`flask (requirements.txt names flask; app.py:3 builds Flask(...))`."""
        found = "; ".join(f"{name}: {', '.join(items)}" for name, items in self.evidence.items())
        return found or "no dependency or code names a supported framework"


@dataclass(frozen=True)
class PackageDetection:
    """The dotted package the module goes into, and why."""

    package: str
    reason: str


@dataclass
class _Scan:
    """Python files of the project, read once, each at most _MAX_BYTES."""

    root: Path
    files: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, root: Path) -> _Scan:
        scan = cls(root)
        for path in _python_files(root):
            if len(scan.files) >= _MAX_FILES:
                break
            try:
                if path.stat().st_size <= _MAX_BYTES:
                    scan.files[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
        return scan


def _python_files(root: Path) -> Iterator[Path]:
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(folder.iterdir(), reverse=True)
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if entry.is_dir() and not entry.is_symlink():
                if not name.startswith(".") and name not in _SKIP_DIRS and not (entry / "pyvenv.cfg").exists():
                    stack.append(entry)
            elif name.endswith(".py"):
                yield entry


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_dependencies(root: Path) -> tuple[dict[str, list[str]], list[str]]:
    """{normalised distribution: [where it is declared]}, and notes on files that could not be read."""
    found: dict[str, list[str]] = {}
    notes: list[str] = []

    def add(requirement: str, where: str) -> None:
        match = _REQUIREMENT_NAME.match(requirement)
        if match:
            found.setdefault(_normalise(match.group(1)), []).append(where)

    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            notes.append(f"pyproject.toml was not read ({exc}); its dependencies are not considered")
            data = {}
        for where, requirement in _pyproject_requirements(data):
            add(requirement, f"pyproject.toml {where}")
    for path in sorted([*root.glob("requirements*.txt"), *root.glob("requirements/*.txt")]):
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            text = line.split("#", 1)[0].strip()
            if text and not text.startswith("-"):  # -r, -e, --index-url: not a requirement name
                add(text, path.relative_to(root).as_posix())
    return found, notes


def _pyproject_requirements(data: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, requirement) of every dependency list pyproject.toml may hold."""
    project = _table(data.get("project"))
    for item in _strings(project.get("dependencies")):
        yield "project.dependencies", item
    for group, items in _table(project.get("optional-dependencies")).items():
        for item in _strings(items):
            yield f"project.optional-dependencies.{group}", item
    for group, items in _table(data.get("dependency-groups")).items():
        for item in _strings(items):
            yield f"dependency-groups.{group}", item
    poetry = _table(_table(data.get("tool")).get("poetry"))
    tables = {"tool.poetry.dependencies": poetry.get("dependencies")}
    tables["tool.poetry.dev-dependencies"] = poetry.get("dev-dependencies")
    for group, body in _table(poetry.get("group")).items():
        tables[f"tool.poetry.group.{group}.dependencies"] = _table(body).get("dependencies")
    for where, table in tables.items():
        for name in _table(table):
            if name.lower() != "python":
                yield where, name


def _table(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def detect_framework(root: Path, signatures: Mapping[str, Signature]) -> FrameworkDetection:
    """The framework the project uses: dependencies decide, the code breaks ties or fills in."""
    declared, notes = declared_dependencies(root)
    by_deps: dict[str, list[str]] = {}
    for name, signature in signatures.items():
        for distribution in signature.distributions:
            for where in declared.get(_normalise(distribution), []):
                by_deps.setdefault(name, []).append(f"{where} names {distribution}")
    _drop_foundations(by_deps, signatures)
    if len(by_deps) == 1:
        return FrameworkDetection(next(iter(by_deps)), _frozen(by_deps), tuple(notes))
    scan = _Scan.of(root)
    by_code: dict[str, list[str]] = {}
    for rel, text in scan.files.items():
        for name, signature in signatures.items():
            line = signature.builds_app(text)
            if line is not None:
                by_code.setdefault(name, []).append(f"{rel}:{line} builds {signature.app_class}(...)")
    _drop_foundations(by_code, signatures)
    candidates = set(by_deps) & set(by_code) if by_deps else set(by_code)
    evidence: dict[str, list[str]] = {}
    for name in signatures:
        items = by_deps.get(name, []) + by_code.get(name, [])
        if items:
            evidence[name] = items
    chosen = next(iter(candidates)) if len(candidates) == 1 else None
    return FrameworkDetection(chosen, _frozen(evidence), tuple(notes))


def _drop_foundations(found: dict[str, list[str]], signatures: Mapping[str, Signature]) -> None:
    """FastAPI needs Starlette: a project naming both uses FastAPI."""
    for name in list(found):
        for base in signatures[name].builds_on:
            found.pop(base, None)


def _frozen(found: Mapping[str, list[str]]) -> dict[str, tuple[str, ...]]:
    return {name: tuple(items) for name, items in found.items()}


def detect_package(root: Path, signatures: Sequence[Signature] = ()) -> PackageDetection:
    """`<pkg>.sessions` in the package that holds the app, else `sessions` at the top."""
    src = root / "src"
    base = src if src.is_dir() and _packages(src) else root
    where = "src/" if base is src else ""
    packages = [name for name in _packages(base) if not name.startswith("test")]
    holders = {name: _holds_app(base / name, signatures) for name in packages}
    with_app = [name for name in packages if holders[name]]
    if len(with_app) == 1:
        name = with_app[0]
        return PackageDetection(f"{name}.sessions", f"{where}{name}/ holds the app: {holders[name]}")
    if "app" in packages:
        return PackageDetection("app.sessions", f"{where}app/ is the app package")
    if len(packages) == 1:
        return PackageDetection(f"{packages[0]}.sessions", f"{where}{packages[0]}/ is the only package")
    if packages:
        listed = ", ".join(packages)
        return PackageDetection("sessions", f"no single package holds the app ({listed}); --package chooses one")
    return PackageDetection("sessions", "the project has no package yet")


def _packages(folder: Path) -> list[str]:
    try:
        return sorted(
            p.name for p in folder.iterdir() if p.is_dir() and p.name.isidentifier() and (p / "__init__.py").is_file()
        )
    except OSError:
        return []


def _holds_app(package: Path, signatures: Sequence[Signature]) -> str:
    """Why `package` holds the app (`create_app in flaskr/__init__.py`), or "" when it does not."""
    for path in sorted(package.glob("*.py")):  # the app lives at the top of its package
        try:
            text = path.read_text(encoding="utf-8", errors="replace")[:_MAX_BYTES]
        except OSError:
            continue
        rel = f"{package.name}/{path.name}"
        if _APP_FACTORY.search(text):
            return f"create_app in {rel}"
        for signature in signatures:
            line = signature.builds_app(text)
            if line is not None:
                return f"{rel}:{line} builds {signature.app_class}(...)"
    return ""
