"""The generated Redis store works with the oldest supported redis-py, not only the newest.

The venv has the newest redis-py; this test installs the oldest supported release into a
temporary folder and runs the Redis store tests (asynchronous and synchronous flavours, a
single Redis and a cluster) in a subprocess with that folder first on the import path.
Without a reachable package index it is skipped with the reason, unless
SESSION_KIT_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from services import REDIS_URL, REQUIRE_VARIABLE, require_server, services_required, unavailable

OLDEST = "5.0.0"
ROOT = Path(__file__).resolve().parent.parent
REDIS_TESTS = [
    "tests/test_stores.py",
    "tests/test_stores_redis_atomicity.py",
    "tests/test_stores_cluster.py",
    "tests/test_flask_runtime.py",
]


@pytest.mark.slow
def test_the_redis_store_passes_its_tests_with_the_oldest_supported_redis_py(tmp_path: Path) -> None:
    require_server("Redis", REDIS_URL)
    target = tmp_path / "redis-py"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check",
         "--target", str(target), f"redis=={OLDEST}"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if installed.returncode != 0:
        lines = (installed.stderr or installed.stdout).strip().splitlines()
        unavailable(f"redis-py {OLDEST} could not be installed: {lines[-1] if lines else 'no output'}")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(target), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "SESSION_KIT_TEST_REDIS_URL": REDIS_URL,
    }
    if services_required():
        env[REQUIRE_VARIABLE] = "1"
    version = subprocess.run(
        [sys.executable, "-c", "import redis; print(redis.__version__)"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert version.stdout.strip() == OLDEST, version.stdout + version.stderr
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *REDIS_TESTS, "-k", "redis or Redis"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=1200,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout
    assert " skipped" not in tests.stdout.splitlines()[-1], tests.stdout[-2000:]
