"""Runtime, token primitives: secrets come from the OS's CSPRNG, comparisons are constant-time, and the
cookie size limit sits exactly at 4096 bytes.

Timing cannot be measured reliably in a test, so these tests spy on the calls instead: the real functions
still run, the spy only records that the constant-time one was the one used.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from runtime_support import generated_package


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root: Path = tmp_path_factory.mktemp("rt_tokens")
    with generated_package(root, "rt_tokens", ["csrf=true"]) as package:
        yield package


@pytest.fixture
def compare_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls


def test_secrets_are_checked_in_constant_time(sessions: ModuleType, compare_calls: list[tuple[Any, Any]]) -> None:
    key = "k" * 40
    stored = sessions.tokens.hash_secret("the-secret", key)
    assert sessions.tokens.verify_secret("the-secret", stored, key)
    assert not sessions.tokens.verify_secret("another-secret", stored, key)
    assert len(compare_calls) == 2


def test_double_submit_tokens_are_checked_in_constant_time(
    sessions: ModuleType, compare_calls: list[tuple[Any, Any]]
) -> None:
    guard = sessions.csrf.CsrfGuard(double_submit=True)
    headers = [(b"origin", b"https://app.example"), (b"host", b"app.example"), (b"x-csrf-token", b"abc")]
    guard.check("POST", "https", headers, "abc")
    with pytest.raises(sessions.CsrfFailed):
        guard.check("POST", "https", headers, "abd")
    assert len(compare_calls) == 2


def test_ids_and_secrets_come_from_the_secrets_module(sessions: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[int] = []
    real = secrets.token_urlsafe

    def spy(nbytes: int | None = None) -> str:
        drawn.append(nbytes or 0)
        return real(nbytes)

    monkeypatch.setattr(secrets, "token_urlsafe", spy)
    token = sessions.tokens.issue_token()
    assert drawn == [32, 32]  # 256 bits for the id, 256 for the secret
    assert len({token.session_id, token.secret}) == 2


def test_the_cookie_limit_is_exactly_4096_bytes(sessions: ModuleType) -> None:
    transport = sessions.CookieTransport("sid")
    fits = "a" * (4096 - len("sid="))
    assert transport.write(fits, 60)[0][1].startswith(b"sid=" + fits.encode())
    with pytest.raises(sessions.TokenTooLarge):
        transport.write(fits + "a", 60)
