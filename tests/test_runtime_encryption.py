"""Runtime, encryption at rest: with SESSION_DATA_ENCRYPTION_KEYS set, what a session says about its user
never reaches the store in the clear, and keys rotate without losing sessions.

Driven through a real generated FastAPI app; the SQL case reads the SQLite file's raw bytes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from runtime_support import BASE_URL, SECRET, START, build_app, cookie_of, generated_package, holding

MARKER = "very-private-favourite-colour"


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("rt_encryption")
    with generated_package(root, "rt_encryption", ["stores=memory,sql"]) as package:
        yield package


@pytest.fixture
def clock(sessions: ModuleType) -> Any:
    return sessions.ManualClock(START)


def new_key() -> str:
    return Fernet.generate_key().decode()


def encrypted_app(sessions: ModuleType, clock: Any, keys: list[str], store: Any) -> tuple[Any, Any]:
    """An app whose store is wrapped the way `setup_sessions` does it from the settings."""
    from fastapi import FastAPI

    app = FastAPI()
    settings = sessions.SessionSettings(secret_key=SECRET, transport="cookie", data_encryption_keys=keys)
    manager = sessions.setup_sessions(app, settings, store=store, clock=clock)
    return app, manager


def test_the_stored_record_holds_no_plaintext(sessions: ModuleType, clock: Any) -> None:
    inner = sessions.MemoryStore(100, clock=clock)
    app, manager = build_app(sessions, clock, inner, data_encryption_keys=[new_key()])
    assert isinstance(manager.store, sessions.stores.encrypted.EncryptedStore)
    with TestClient(app, base_url=BASE_URL, client=("198.51.100.7", 4000)) as client:
        token = cookie_of(client.post("/login/ada"))
        client.post(f"/put/{MARKER}")
        assert client.get("/get").json() == {"value": MARKER, "user": "ada"}
    assert token is not None
    raw = asyncio.run(inner.load(token.split(".")[0]))
    stored = raw.to_json()
    assert MARKER not in stored
    assert "198.51.100.7" not in stored
    assert set(raw.data) == {"sealed"}
    assert (raw.principal.kind, raw.principal.id) == ("user", "ada")  # still indexable per principal


def test_listing_opens_the_client_facts(sessions: ModuleType, clock: Any) -> None:
    app, manager = build_app(sessions, clock, data_encryption_keys=[new_key()])
    with TestClient(app, base_url=BASE_URL, client=("198.51.100.7", 4000)) as client:
        client.post("/login/ada")
    listed = asyncio.run(manager.list_sessions(sessions.SessionPrincipal(kind="user", id="ada")))
    assert [info.ip for info in listed] == ["198.51.100.7"]


def test_a_sqlite_file_holds_no_plaintext(sessions: ModuleType, clock: Any, tmp_path: Path) -> None:
    database = tmp_path / "sessions.db"
    settings = sessions.SessionSettings(
        secret_key=SECRET, store_url=f"sqlite+aiosqlite:///{database}", data_encryption_keys=[new_key()]
    )
    from fastapi import FastAPI

    asyncio.run(_create_tables(sessions, settings.store_url))
    app = FastAPI()
    manager = sessions.setup_sessions(app, settings, clock=clock)
    app.get("/put/{value}")(_put_route(sessions))
    with TestClient(app, base_url=BASE_URL) as client:
        assert client.get(f"/put/{MARKER}").status_code == 200
    asyncio.run(manager.close())
    assert database.stat().st_size > 0
    assert MARKER.encode() not in database.read_bytes()


async def _create_tables(sessions: ModuleType, url: str) -> None:
    store = sessions.open_store(url)
    await store.create_tables()
    await store.close()


def _put_route(sessions: ModuleType) -> Any:
    from fastapi import Depends

    session_dep = Depends(sessions.get_session)

    async def put(value: str, session: Any = session_dep) -> dict[str, str]:
        session.data["value"] = value
        return {"value": value}

    return put


def test_keys_rotate_without_losing_sessions(sessions: ModuleType, clock: Any) -> None:
    old, new = new_key(), new_key()
    store = sessions.MemoryStore(100, clock=clock)
    before, _ = build_app(sessions, clock, store, data_encryption_keys=[old])
    with TestClient(before, base_url=BASE_URL) as client:
        token = cookie_of(client.post(f"/put/{MARKER}"))
    assert token is not None
    rotating, _ = build_app(sessions, clock, store, data_encryption_keys=[new, old])
    with TestClient(rotating, base_url=BASE_URL) as client:
        assert holding(client, token).get("/get").json()["value"] == MARKER
        client.post("/put/resaved")  # saved again: now under the new key
    after, _ = build_app(sessions, clock, store, data_encryption_keys=[new])
    with TestClient(after, base_url=BASE_URL) as client:
        assert holding(client, token).get("/get").json()["value"] == "resaved"
    lost, _ = build_app(sessions, clock, store, data_encryption_keys=[new_key()])
    with TestClient(lost, base_url=BASE_URL) as client:
        assert holding(client, token).get("/get").json()["value"] is None  # unreadable: a fresh session


def test_a_bad_key_is_refused_at_startup(sessions: ModuleType) -> None:
    with pytest.raises(sessions.SessionConfigurationError, match="SESSION_DATA_ENCRYPTION_KEYS key 1 is not a Fernet"):
        sessions.load_settings(secret_key=SECRET, data_encryption_keys=["not-a-key"])


def test_without_keys_nothing_is_wrapped(sessions: ModuleType, clock: Any) -> None:
    _, manager = build_app(sessions, clock)
    assert not isinstance(manager.store, sessions.stores.encrypted.EncryptedStore)


def sealed_pair(sessions: ModuleType, clock: Any) -> tuple[Any, Any]:
    """A memory store and the encrypted store around it."""
    inner = sessions.MemoryStore(100, clock=clock)
    return inner, sessions.stores.encrypted.EncryptedStore(inner, [new_key()])


def plain_record(sessions: ModuleType, clock: Any, session_id: str) -> Any:
    return sessions.SessionRecord(
        session_id=session_id,
        secret_hash="f" * 64,
        data={"colour": MARKER},
        principal=sessions.SessionPrincipal("user", "ada", {"name": "Ada"}),
        created_at=clock.now,
        last_seen_at=clock.now,
        expires_at=clock.now + timedelta(hours=1),
        client={"ip": "198.51.100.7"},
    )


def test_a_touch_only_load_encrypts_nothing_again(sessions: ModuleType, clock: Any) -> None:
    inner, store = sealed_pair(sessions, clock)
    asyncio.run(store.create(plain_record(sessions, clock, "a")))
    before = asyncio.run(inner.load("a"))
    clock.advance(timedelta(minutes=10))
    due = sessions.stores.Touch(
        at=clock.now, due_before=clock.now - timedelta(minutes=1), idle_since=clock.now - timedelta(hours=1)
    )
    touched = asyncio.run(store.load("a", touch=due))
    assert (touched.last_seen_at, touched.data["colour"]) == (clock.now, MARKER)
    after = asyncio.run(inner.load("a"))
    # Fernet tokens differ on every encryption: equal tokens mean nothing was sealed again.
    assert (after.data, after.principal, after.client) == (before.data, before.principal, before.client)
    assert after.last_seen_at == clock.now


def test_a_lost_save_returns_the_current_record_opened(sessions: ModuleType, clock: Any) -> None:
    _, store = sealed_pair(sessions, clock)
    asyncio.run(store.create(plain_record(sessions, clock, "a")))
    loaded = asyncio.run(store.load("a"))
    assert asyncio.run(store.save(replace(loaded, data={"colour": "blue"}), expected_version=1)).saved
    lost = asyncio.run(store.save(replace(loaded, data={"colour": "red"}), expected_version=1))
    assert not lost.saved
    assert lost.current.data == {"colour": "blue"}
    assert lost.current.client == {"ip": "198.51.100.7"}


def test_a_rotation_pointer_opens_as_a_pointer(sessions: ModuleType, clock: Any) -> None:
    _, store = sealed_pair(sessions, clock)
    asyncio.run(store.create(plain_record(sessions, clock, "old")))
    grace_until = clock.now + timedelta(seconds=30)
    asyncio.run(store.create(plain_record(sessions, clock, "new"), replaces="old", grace_until=grace_until))
    pointer = asyncio.run(store.load("old"))
    assert (pointer.replaced_by, pointer.data, pointer.principal) == ("new", {}, None)
    assert asyncio.run(store.load("new")).data == {"colour": MARKER}


def _python(sessions: ModuleType, code: str) -> subprocess.CompletedProcess[str]:
    top = sessions.__name__.split(".")[0]
    root = Path(sys.modules[top].__file__ or "").parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_")}
    env["PYTHONPATH"] = str(root)
    return subprocess.run(
        [sys.executable, "-c", code.replace("PACKAGE", sessions.__name__)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_cryptography_is_imported_only_when_encryption_is_configured(sessions: ModuleType) -> None:
    result = _python(
        sessions,
        f"""
import sys
from fastapi import FastAPI
from PACKAGE import SessionSettings, setup_sessions
setup_sessions(FastAPI(), SessionSettings(secret_key={SECRET!r}))
print("without keys:", "cryptography" in sys.modules)
setup_sessions(FastAPI(), SessionSettings(secret_key={SECRET!r}, data_encryption_keys=[{new_key()!r}]))
print("with keys:", "cryptography" in sys.modules)
""",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["without keys: False", "with keys: True"]


def test_missing_cryptography_is_a_clear_startup_error(sessions: ModuleType) -> None:
    result = _python(
        sessions,
        f"""
import sys
sys.modules["cryptography"] = None  # as if it were not installed
from fastapi import FastAPI
from PACKAGE import SessionConfigurationError, SessionSettings, setup_sessions
setup_sessions(FastAPI(), SessionSettings(secret_key={SECRET!r}))
try:
    setup_sessions(FastAPI(), SessionSettings(secret_key={SECRET!r}, data_encryption_keys=[{new_key()!r}]))
except SessionConfigurationError as error:
    print(error)
""",
    )
    assert result.returncode == 0, result.stderr
    assert "encryption at rest needs the cryptography package: pip install cryptography" in result.stdout
