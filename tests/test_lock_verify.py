"""session-kit.lock and the vendor snapshot: stable records, drift detection, and re-locking."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from helpers import new_project

from session_kit.engine.kit import Kit
from session_kit.engine.project import LOCK_NAME, read_lock
from session_kit.engine.state import relock, verify
from session_kit.errors import ProjectError, RefusedOverwrite
from session_kit.generate import GenerateRequest, generate

MANAGER = "app/sessions/manager.py"
CLOCK = "app/sessions/clock.py"


@pytest.fixture
def generated(kit: Kit, project: Path) -> Path:
    generate(GenerateRequest(project_dir=project, kit=kit, environ={}))
    return project


def _vendor(root: Path, kit: Kit) -> Path:
    return root / ".session-kit" / "vendor" / "session" / kit.manifest.version


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    return set()


def test_the_lock_is_stable_sorted_json_without_timestamps_or_paths(tmp_path: Path, kit: Kit) -> None:
    first = new_project(tmp_path / "first")
    second = new_project(tmp_path / "second")
    for root in (first, second):
        generate(GenerateRequest(project_dir=root, kit=kit, environ={}))
    text = (first / LOCK_NAME).read_text()
    assert text == (second / LOCK_NAME).read_text()
    assert (_vendor(first, kit) / "module.json").read_bytes() == (_vendor(second, kit) / "module.json").read_bytes()
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"
    words = {word for key in _keys(data) for word in key.split("_")}
    assert not words & {"time", "timestamp", "date", "created", "updated", "at"}
    assert not re.search(r"\d{4}-\d{2}-\d{2}", text)
    assert str(tmp_path) not in text
    files = data["modules"]["session"]["files"]
    assert files[MANAGER]["sha256"] == files[MANAGER]["generated_sha256"]
    assert files[MANAGER]["template"] == "core/manager.py.j2"


def test_a_clean_project_verifies(generated: Path) -> None:
    report = verify(generated)
    assert (report.findings, report.exit_code) == ([], 0)
    lock = read_lock(generated)
    assert lock is not None
    assert report.checked == 2 * len(lock.modules["session"].files)  # each file and its vendor copy


def test_verify_reports_every_kind_of_drift(generated: Path, kit: Kit) -> None:
    (generated / MANAGER).write_text("# edited\n")
    (generated / CLOCK).unlink()
    (generated / "app/sessions/extra.py").write_text("# mine\n")
    (generated / "tests/sessions/test_mine.py").write_text("# mine\n")
    vendor = _vendor(generated, kit)
    (vendor / "app/sessions/models.py").write_text("# damaged base\n")
    (vendor / "app/sessions/errors.py").unlink()
    (vendor / "app/sessions/stray.py").write_text("")
    # What tools and --force leave behind is not drift.
    (generated / "app/sessions/__pycache__").mkdir()
    (generated / "app/sessions/__pycache__/manager.cpython-311.pyc").write_bytes(b"\0")
    (generated / f"{MANAGER}.orig").write_text("# old\n")

    report = verify(generated)
    vendor_rel = vendor.relative_to(generated).as_posix()
    assert sorted((f.path, f.status) for f in report.findings) == sorted(
        [
            (MANAGER, "modified"),
            (CLOCK, "missing"),
            ("app/sessions/extra.py", "unexpected"),
            ("tests/sessions/test_mine.py", "unexpected"),
            (f"{vendor_rel}/app/sessions/models.py", "vendor-modified"),
            (f"{vendor_rel}/app/sessions/errors.py", "vendor-missing"),
            (f"{vendor_rel}/app/sessions/stray.py", "unexpected"),
        ]
    )
    assert report.exit_code == 1
    assert report.to_json()["ok"] is False


def test_files_outside_the_generated_folders_are_not_drift(generated: Path) -> None:
    (generated / "app/views.py").write_text("# the rest of the app\n")
    (generated / "tests/test_views.py").write_text("# its tests\n")
    assert verify(generated).findings == []


def test_verify_without_a_lock_says_how_to_get_one(project: Path) -> None:
    with pytest.raises(ProjectError, match="run `session-kit add module session` first"):
        verify(project)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("{not json", "not a readable session-kit lock"), ('{"lock_format": 99}', "lock_format 99 is not supported")],
)
def test_a_damaged_lock_is_a_project_error(generated: Path, text: str, reason: str) -> None:
    (generated / LOCK_NAME).write_text(text)
    with pytest.raises(ProjectError, match=reason):
        verify(generated)


def test_relock_refuses_to_replace_a_lock_without_overwrite(generated: Path) -> None:
    with pytest.raises(RefusedOverwrite, match="pass --overwrite") as caught:
        relock(generated, "0.1.0", overwrite=False)
    assert caught.value.exit_code == 1


def test_relock_with_overwrite_accepts_edits_so_verify_passes(generated: Path) -> None:
    (generated / MANAGER).write_text("# edited and accepted\n")
    assert verify(generated).exit_code == 1
    lock = relock(generated, "0.1.0", overwrite=True)
    (generated / LOCK_NAME).write_text(lock.text())
    assert verify(generated).findings == []
    entry = lock.modules["session"].files[MANAGER]
    assert entry.sha256 != entry.generated_sha256  # the vendor snapshot still holds what was generated


def test_a_deleted_lock_is_rebuilt_from_the_vendor_record(generated: Path, kit: Kit) -> None:
    original = (generated / LOCK_NAME).read_text()
    (generated / LOCK_NAME).unlink()
    rebuilt = relock(generated, kit.package_version, overwrite=False)
    assert rebuilt.text() == original


def test_relock_needs_every_recorded_file(generated: Path) -> None:
    (generated / CLOCK).unlink()
    with pytest.raises(ProjectError, match=f"{CLOCK} is recorded for module session but missing"):
        relock(generated, "0.1.0", overwrite=True)


def test_relock_with_neither_lock_nor_vendor_snapshot_has_nothing_to_lock(project: Path) -> None:
    with pytest.raises(ProjectError, match="nothing to lock"):
        relock(project, "0.1.0", overwrite=False)


def test_a_damaged_vendor_record_is_a_project_error(generated: Path, kit: Kit) -> None:
    (generated / LOCK_NAME).unlink()
    (_vendor(generated, kit) / "module.json").write_text('{"version": "0.1.0"}')
    with pytest.raises(ProjectError, match=r"module\.json: files: is missing; nothing was written"):
        relock(generated, "0.1.0", overwrite=False)
