"""The kit's three versions (package, module.yaml, changelog) must agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_kit, set_version

from session_kit import __version__
from session_kit.engine.fingerprint import (
    RELEASES,
    check_fingerprint,
    read_releases,
    record_fingerprint,
    template_fingerprint,
)
from session_kit.engine.kit import Kit
from session_kit.engine.vet import vet
from session_kit.errors import ReleaseError, SpecError, VersionDrift
from session_kit.generate import GenerateRequest, generate


def test_the_real_kit_versions_agree() -> None:
    kit = Kit()
    assert kit.check_versions() == __version__ == kit.manifest.version == kit.changelog()[0].version


def test_a_kit_with_one_version_everywhere_passes(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, version="2.3.4")
    assert kit.check_versions() == "2.3.4"
    assert [entry.version for entry in kit.changelog()][:2] == ["2.3.4", Kit().manifest.version]


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


# --- the template fingerprint -------------------------------------------------------------------


def test_the_real_templates_match_the_fingerprint_recorded_for_the_current_version() -> None:
    """Changing templates/ needs a new version, a changelog entry and a recorded fingerprint."""
    kit = Kit()
    assert kit.manifest.version in {entry.version for entry in kit.changelog()}
    assert "templates match the fingerprint recorded" in check_fingerprint(kit)


def test_released_0_1_0_is_frozen_and_the_current_version_is_recorded() -> None:
    releases = read_releases(Kit())
    assert releases["0.1.0"].released is True
    assert Kit().manifest.version in releases


def test_the_fingerprint_follows_paths_and_bytes_only(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    first = template_fingerprint(kit.templates_dir)
    clock = kit.templates_dir / "core/clock.py.j2"
    clock.touch()
    clock.chmod(0o755)
    assert template_fingerprint(kit.templates_dir) == first  # timestamps and modes do not count
    clock.write_text(clock.read_text() + "# changed\n")
    changed = template_fingerprint(kit.templates_dir)
    assert changed != first
    clock.rename(kit.templates_dir / "core/clock2.py.j2")
    assert template_fingerprint(kit.templates_dir) not in (first, changed)


def test_changed_templates_fail_vet_until_recorded_for_an_unreleased_version(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, version="3.1.0")
    (kit.templates_dir / "core/clock.py.j2").write_text("CLOCK = 1\n")
    with pytest.raises(SpecError, match=r"the templates changed since their fingerprint for 3\.1\.0"):
        check_fingerprint(kit)
    assert any("fingerprint" in problem for problem in vet(kit).problems)
    record_fingerprint(kit)  # 3.1.0 is not released: recording again is allowed
    assert vet(kit).problems == []


def test_a_released_version_refuses_a_new_fingerprint(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, version="3.2.0")
    record_fingerprint(kit, release=True)
    before = (kit.root / RELEASES).read_text()
    (kit.templates_dir / "core/clock.py.j2").write_text("CLOCK = 2\n")
    with pytest.raises(ReleaseError, match=r"3\.2\.0 is released"):
        record_fingerprint(kit)
    assert (kit.root / RELEASES).read_text() == before
    with pytest.raises(SpecError, match="bump the version"):
        check_fingerprint(kit)
    # The way out: a new version with its changelog entry.
    set_version(kit.root, "3.3.0")
    bumped = Kit(kit.root)
    record_fingerprint(bumped)
    assert vet(bumped).problems == []
    assert read_releases(bumped)["3.2.0"].released is True


def test_recording_needs_a_changelog_entry_for_the_version(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    set_version(kit.root, "4.0.0", changelog=False)
    with pytest.raises(ReleaseError, match=r"no entry for 4\.0\.0"):
        record_fingerprint(Kit(kit.root))
    assert any("versions disagree" in problem for problem in vet(Kit(kit.root)).problems)


def test_a_version_without_a_fingerprint_fails_vet(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, version="5.0.0")
    (kit.root / RELEASES).write_text("releases:\n")
    assert any("no template fingerprint is recorded for 5.0.0" in problem for problem in vet(kit).problems)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("releases: [1]\n", "releases: must be a mapping"),
        ("releases:\n  latest: {templates: x, released: true}\n", "'latest' is not a version"),
        ("releases:\n  1.0.0: {templates: x, released: true}\n", "must be sha256:<64 hex digits>"),
        ("releases:\n  1.0.0: {templates: sha256:" + "0" * 64 + ", released: maybe}\n", "must be true or false"),
    ],
)
def test_a_malformed_releases_file_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    kit = make_kit(tmp_path)
    (kit.root / RELEASES).write_text(text)
    with pytest.raises(SpecError, match=message):
        read_releases(kit)
