"""The kit's three versions (package, module.yaml, changelog) must agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_kit, set_version

from session_kit import __version__
from session_kit.engine.kit import Kit
from session_kit.errors import VersionDrift
from session_kit.generate import GenerateRequest, generate


def test_the_real_kit_versions_agree() -> None:
    kit = Kit()
    assert kit.check_versions() == __version__ == kit.manifest.version == kit.changelog()[0].version


def test_a_kit_with_one_version_everywhere_passes(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, version="2.3.4")
    assert kit.check_versions() == "2.3.4"
    assert [entry.version for entry in kit.changelog()][:2] == ["2.3.4", "0.1.0"]


def test_three_different_versions_name_all_three_sources(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    set_version(kit.root, "1.0.0", module=False, changelog=False)
    set_version(kit.root, "2.0.0", package=False, changelog=False)
    set_version(kit.root, "3.0.0", package=False, module=False)
    kit = Kit(kit.root)
    with pytest.raises(VersionDrift) as caught:
        kit.check_versions()
    message = str(caught.value)
    assert f"package __version__ is 1.0.0 ({kit.root / '__init__.py'})" in message
    assert f"module.yaml version is 2.0.0 ({kit.root / 'module.yaml'})" in message
    assert f"newest changelog entry is 3.0.0 ({kit.root / 'docs/changelog.md'})" in message
    assert caught.value.exit_code == 1


@pytest.mark.parametrize("source", ["package", "module", "changelog"])
def test_any_single_source_out_of_step_is_drift(tmp_path: Path, source: str) -> None:
    kit = make_kit(tmp_path, version="1.1.0")
    set_version(kit.root, "1.2.0", **{name: name == source for name in ("package", "module", "changelog")})
    with pytest.raises(VersionDrift, match=r"1\.2\.0"):
        Kit(kit.root).check_versions()


def test_a_changelog_without_entries_is_drift(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    (kit.root / "docs/changelog.md").write_text("# Changelog\n\nNothing released yet.\n")
    with pytest.raises(VersionDrift, match="newest changelog entry is missing"):
        kit.check_versions()


def test_generation_stops_on_drift_before_touching_the_project(tmp_path: Path, project: Path) -> None:
    kit = make_kit(tmp_path)
    set_version(kit.root, "9.9.9", package=False, changelog=False)
    with pytest.raises(VersionDrift):
        generate(GenerateRequest(project_dir=project, kit=Kit(kit.root), environ={}))
    assert not (project / "session-kit.lock").exists()
