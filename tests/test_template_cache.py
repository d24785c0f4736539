"""The compiled-template cache: it saves compiling between runs and never changes output."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from helpers import build_file_tree, new_project

from session_kit.engine import render, template_cache
from session_kit.engine.kit import Kit
from session_kit.engine.project import LOCK_NAME
from session_kit.engine.render import Renderer
from session_kit.engine.template_cache import bytecode_cache
from session_kit.generate import GenerateRequest, generate

CONTEXT = {"name": "ada", "items": [1, 2]}
TEMPLATE = "{% for i in items %}{{ name }}{{ i }}\n{% endfor %}"


def _entries(root: Path) -> list[Path]:
    return sorted(root.rglob("*.cache"))


def test_a_second_renderer_uses_the_compiled_templates_of_the_first(tmp_path: Path) -> None:
    templates = build_file_tree(tmp_path / "t", {"a.j2": TEMPLATE})
    first = Renderer(templates, cache_root=tmp_path / "cache").render("a.j2", CONTEXT)
    (entry,) = _entries(tmp_path / "cache")
    compiled_at = entry.stat().st_mtime_ns

    second = Renderer(templates, cache_root=tmp_path / "cache").render("a.j2", CONTEXT)

    assert second == first == "ada1\nada2\n"
    assert entry.stat().st_mtime_ns == compiled_at  # read back, not compiled and written again


def test_an_edited_template_is_compiled_again(tmp_path: Path) -> None:
    templates = build_file_tree(tmp_path / "t", {"a.j2": TEMPLATE})
    assert Renderer(templates, cache_root=tmp_path / "cache").render("a.j2", CONTEXT) == "ada1\nada2\n"
    (templates / "a.j2").write_text("{{ name | upper }}\n")

    assert Renderer(templates, cache_root=tmp_path / "cache").render("a.j2", CONTEXT) == "ADA\n"


def test_generation_is_byte_identical_cold_warm_and_uncached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(template_cache, "user_cache_root", lambda: tmp_path / "cache")
    outputs = []
    for run in ("cold", "warm", "uncached"):
        if run == "uncached":
            monkeypatch.setattr(render, "bytecode_cache", lambda options, root: None)
        project = new_project(tmp_path / run)
        generate(GenerateRequest(project_dir=project, kit=Kit()))
        outputs.append({path.relative_to(project): path.read_bytes() for path in _generated(project)})
        if run == "cold":
            assert _entries(tmp_path / "cache")
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(outputs[0]) > 20


def _generated(project: Path) -> list[Path]:
    return sorted(
        p for p in project.rglob("*") if p.is_file() and p.name != LOCK_NAME and ".session-kit" not in p.parts
    )


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions that bind the user")
def test_an_unwritable_cache_directory_is_skipped(tmp_path: Path) -> None:
    templates = build_file_tree(tmp_path / "t", {"a.j2": TEMPLATE})
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert Renderer(templates, cache_root=locked).render("a.j2", CONTEXT) == "ada1\nada2\n"
    finally:
        locked.chmod(stat.S_IRWXU)


def test_a_cache_that_fails_to_write_still_renders(tmp_path: Path) -> None:
    templates = build_file_tree(tmp_path / "t", {"a.j2": TEMPLATE})
    renderer = Renderer(templates, cache_root=tmp_path / "cache")
    cache = renderer.environment.bytecode_cache
    assert cache is not None
    # The directory vanishes and a file takes its place: writing fails with an OSError.
    directory = Path(cache.directory)  # type: ignore[attr-defined]
    directory.rmdir()
    directory.write_text("not a directory")

    assert renderer.render("a.j2", CONTEXT) == "ada1\nada2\n"


def test_no_cache_when_the_directory_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert bytecode_cache({"trim_blocks": True}, blocker) is None
    templates = build_file_tree(tmp_path / "t", {"a.j2": TEMPLATE})
    assert Renderer(templates, cache_root=blocker).render("a.j2", CONTEXT) == "ada1\nada2\n"


def test_environment_options_key_the_cache(tmp_path: Path) -> None:
    one = bytecode_cache({"trim_blocks": True}, tmp_path)
    other = bytecode_cache({"trim_blocks": False}, tmp_path)
    assert one is not None
    assert other is not None
    assert one.directory != other.directory  # type: ignore[attr-defined]
