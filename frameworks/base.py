"""The framework plug-in boundary: what every framework adapter provides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Protocol

from ..engine.detect import Signature
from ..engine.project import ProjectLayout
from ..engine.render import Renderer
from ..engine.spec import TemplateFile
from ..engine.unasync import to_sync
from ..overrides import GenerationHooks


@dataclass(frozen=True)
class RenderedFile:
    """One output: project-relative path, exact bytes, and the template it came from."""

    path: str
    data: bytes
    template: str


class FrameworkPlugin(Protocol):
    """A framework adapter. The session core is shared; a plugin adds only its adapter."""

    name: str
    display_name: str
    # False for frameworks that serve requests synchronously (WSGI): the shared core
    # is then rendered as its synchronous twin (see engine/unasync.py).
    async_core: bool
    # How a project shows that it uses this framework (see engine/detect.py).
    signature: Signature

    def adapter_templates(self) -> Sequence[TemplateFile]:
        """Framework-specific templates (middleware, dependencies, routes, tests)."""
        ...

    def adapter_exports(self) -> list[tuple[str, list[str]]]:
        """(module, names) the generated package re-exports from the adapter."""
        ...

    def target_path(self, layout: ProjectLayout, file: TemplateFile) -> PurePosixPath:
        """Project-relative output path of `file`."""
        ...

    def render(
        self,
        renderer: Renderer,
        files: Sequence[TemplateFile],
        context: Mapping[str, Any],
        layout: ProjectLayout,
        hooks: GenerationHooks,
    ) -> list[RenderedFile]:
        """Render `files`, calling the user's after-render hook on each."""
        ...

    def next_steps(self, layout: ProjectLayout) -> list[str]:
        """What the user does after generation, in this framework's idiom."""
        ...


def standard_target(layout: ProjectLayout, file: TemplateFile) -> PurePosixPath:
    """Package files go in the package directory, tests in the project's tests folder."""
    base = layout.package_dir if file.target == "package" else layout.tests_dir
    return base / file.output


class Placement(Protocol):
    """What the shared rendering loop needs of a plugin."""

    async_core: bool

    def target_path(self, layout: ProjectLayout, file: TemplateFile) -> PurePosixPath: ...


class StandardPlugin:
    """The parts most plugins share: `standard_target` placement and `render_files`.

    A subclass sets `name`, `display_name` and `async_core`, and provides its
    templates, exports and next steps.
    """

    async_core = True

    def target_path(self, layout: ProjectLayout, file: TemplateFile) -> PurePosixPath:
        return standard_target(layout, file)

    def render(
        self,
        renderer: Renderer,
        files: Sequence[TemplateFile],
        context: Mapping[str, Any],
        layout: ProjectLayout,
        hooks: GenerationHooks,
    ) -> list[RenderedFile]:
        return render_files(self, renderer, files, context, layout, hooks)


SECRET_KEY_STEP = "Set SESSION_SECRET_KEY (at least 32 random characters) in the app's environment."


def tests_step(layout: ProjectLayout) -> str:
    """The last next step of every framework: run the generated tests."""
    return f"Run the generated tests: `python -m pytest {layout.tests_dir}`."


def render_files(
    plugin: Placement,
    renderer: Renderer,
    files: Sequence[TemplateFile],
    context: Mapping[str, Any],
    layout: ProjectLayout,
    hooks: GenerationHooks,
) -> list[RenderedFile]:
    """The rendering loop every plugin shares."""
    rendered = []
    for file in files:
        path = str(plugin.target_path(layout, file))
        text = renderer.render(file.template, context)
        if not plugin.async_core and file.output.endswith(".py"):
            text = to_sync(text)
        text = hooks.after_render(path, text)
        rendered.append(RenderedFile(path, text.encode("utf-8"), file.template))
    return rendered
