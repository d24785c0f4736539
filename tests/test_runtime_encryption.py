"""Runtime, encryption at rest: with SESSION_DATA_ENCRYPTION_KEYS set, what a session says about its user
never reaches the store in the clear, and keys rotate without losing sessions.

Driven through a real generated FastAPI app; the SQL case reads the SQLite file's raw bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
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
