"""Runtime, JWT mode: strict verification, revocation, key rotation and the classic attacks.

Every forged token must get exactly the same answer as no token at all: a fresh anonymous session and
the generic 401 of a protected route.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi.testclient import TestClient
from runtime_support import BASE_URL, SECRET, START, build_app, cookie_of, generated_package, holding

KEY = "runtime-jwt-hmac-key-with-more-than-256-bits-0123456789"
GENERIC_401 = {"detail": {"code": "session.authentication_required", "message": "Sign in to continue."}}


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("rt_jwt")
    with generated_package(root, "rt_jwt", ["token_format=jwt"]) as package:
        yield package


@pytest.fixture
def clock(sessions: ModuleType) -> Any:
    return sessions.ManualClock(START)


@pytest.fixture
def site(sessions: ModuleType, clock: Any) -> Iterator[tuple[TestClient, str]]:
    app, _ = build_app(sessions, clock, jwt_secrets=[KEY])
    with TestClient(app, base_url=BASE_URL) as client:
        token = cookie_of(client.post("/login/ada"))
        assert token is not None
        yield client, token


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


def sign(sessions: ModuleType, claims: dict[str, Any], key: str = KEY, **header: Any) -> str:
    headers = {"typ": "session+jwt", "kid": sessions.codec.key_id(key.encode()), **header}
    return jwt.encode(claims, key, algorithm="HS256", headers=headers)


def refused(client: TestClient, token: str) -> bool:
    response = holding(client, token).get("/me")
    return response.status_code == 401 and response.json() == GENERIC_401


def test_a_genuine_token(site: tuple[TestClient, str]) -> None:
    client, token = site
    header, claims = parts(token)
    assert (header["alg"], header["typ"]) == ("HS256", "session+jwt")
    assert claims["iss"] == "rt_jwt.sessions"
    assert claims["aud"] == "rt_jwt.sessions"
    assert claims["exp"] - claims["iat"] == 7 * 24 * 3600
    assert holding(client, token).get("/me").json() == {"id": "ada"}


def test_revocation_works_for_jwts(site: tuple[TestClient, str]) -> None:
    client, token = site
    holding(client, token).post("/logout")
    assert refused(client, token)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none(site: tuple[TestClient, str], alg: str) -> None:
    client, token = site
    header, claims = parts(token)
    forged = f"{b64(json.dumps({**header, 'alg': alg}).encode())}.{b64(json.dumps(claims).encode())}."
    assert refused(client, forged)


@pytest.mark.parametrize("kid", ["nope", "../../../dev/null", "/etc/passwd", "1' OR '1'='1", ""])
def test_unknown_or_path_like_kid(sessions: ModuleType, site: tuple[TestClient, str], kid: str) -> None:
    client, token = site
    assert refused(client, sign(sessions, parts(token)[1], kid=kid))


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "iss", "aud", "sid", "sct"])
def test_missing_claims(sessions: ModuleType, site: tuple[TestClient, str], claim: str) -> None:
    client, token = site
    claims = parts(token)[1]
    del claims[claim]
    assert refused(client, sign(sessions, claims))


def test_expiry_and_leeway(sessions: ModuleType, site: tuple[TestClient, str], clock: Any) -> None:
    client, token = site
    claims, now = parts(token)[1], int(clock.now.timestamp())
    assert not refused(client, sign(sessions, {**claims, "exp": now - 29}))
    assert refused(client, sign(sessions, {**claims, "exp": now - 31}))
    assert refused(client, sign(sessions, {**claims, "nbf": now + 31}))
    assert refused(client, sign(sessions, {**claims, "iat": now + 31}))
    assert refused(client, sign(sessions, {**claims, "exp": str(now + 100)}))


@pytest.mark.parametrize(
    "change",
    [{"iss": "evil"}, {"aud": "other-service"}, {"aud": ["a", "b"]}, {"iss": "rt_jwt.sessions "}],
)
def test_wrong_issuer_or_audience(sessions: ModuleType, site: tuple[TestClient, str], change: dict[str, Any]) -> None:
    client, token = site
    assert refused(client, sign(sessions, {**parts(token)[1], **change}))


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "SESSION+JWT", None])
def test_wrong_typ(sessions: ModuleType, site: tuple[TestClient, str], typ: str | None) -> None:
    client, token = site
    assert refused(client, sign(sessions, parts(token)[1], typ=typ))


def test_jku_x5u_and_jwk_are_ignored(sessions: ModuleType, site: tuple[TestClient, str]) -> None:
    client, token = site
    attacker = "attacker-hmac-key-with-more-than-256-bits-abcdefgh"
    forged = sign(
        sessions,
        parts(token)[1],
        key=attacker,
        kid=sessions.codec.key_id(KEY.encode()),
        jwk={"kty": "oct", "k": b64(attacker.encode())},
        jku="http://127.0.0.1:1/keys",
        x5u="http://127.0.0.1:1/cert",
    )
    assert refused(client, forged)


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "..",
        "a.b",
        "a.b.c.d",
        "e30.e30.",
        "e30.e30.e30",
        "!!.??.**",
        f"{b64(b'[1]')}.{b64(b'{}')}.x",
        f"{b64(bytes([0xFF, 0xFE]))}.e30.x",
    ],
)
def test_malformed_segments(site: tuple[TestClient, str], token: str) -> None:
    client, _ = site
    assert refused(client, token)


def test_key_rotation_first_signs_all_verify(sessions: ModuleType, clock: Any) -> None:
    new_key = "runtime-jwt-next-hmac-key-more-than-256-bits-987654"
    old_app, _ = build_app(sessions, clock, jwt_secrets=[KEY])
    with TestClient(old_app, base_url=BASE_URL) as client:
        old_token = cookie_of(client.post("/login/ada"))
    app, manager = build_app(sessions, clock, jwt_secrets=[new_key, KEY])
    manager.store = old_app.state.session_manager.store  # the same sessions, as with a shared store
    with TestClient(app, base_url=BASE_URL) as client:
        assert old_token is not None
        assert holding(client, old_token).get("/me").status_code == 200
        client.cookies.clear()
        new_token = cookie_of(client.post("/login/bob"))
    assert new_token is not None
    assert parts(new_token)[0]["kid"] == sessions.codec.key_id(new_key.encode())


def test_short_hmac_secrets_and_big_leeways_are_refused(sessions: ModuleType) -> None:
    with pytest.raises(sessions.SessionConfigurationError, match="256"):
        sessions.load_settings(secret_key=SECRET, jwt_secrets=["x" * 31])
    with pytest.raises(sessions.SessionConfigurationError, match="SESSION_JWT_LEEWAY"):
        sessions.load_settings(secret_key=SECRET, jwt_leeway=301)
    assert sessions.load_settings(secret_key=SECRET).jwt_leeway == timedelta(seconds=30)


def _pem_files(tmp_path: Path, private: Any) -> tuple[Path, bytes]:
    path = tmp_path / "signing.pem"
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public


@pytest.mark.parametrize(
    ("algorithm", "make_key"),
    [
        ("RS256", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ES256", lambda: ec.generate_private_key(ec.SECP256R1())),
        ("EdDSA", ed25519.Ed25519PrivateKey.generate),
    ],
)
def test_asymmetric_keys_and_hs_rs_confusion(
    sessions: ModuleType, clock: Any, tmp_path: Path, algorithm: str, make_key: Any
) -> None:
    path, public_pem = _pem_files(tmp_path, make_key())
    app, _ = build_app(sessions, clock, jwt_algorithm=algorithm, jwt_key_files=[str(path)])
    with TestClient(app, base_url=BASE_URL) as client:
        token = cookie_of(client.post("/login/ada"))
        assert token is not None
        assert parts(token)[0]["alg"] == algorithm
        assert holding(client, token).get("/me").status_code == 200
        header, claims = parts(token)
        signing_input = f"{b64(json.dumps({**header, 'alg': 'HS256'}).encode())}.{b64(json.dumps(claims).encode())}"
        mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        assert refused(client, f"{signing_input}.{b64(mac)}")


def test_key_files_must_fit_the_algorithm(sessions: ModuleType, tmp_path: Path) -> None:
    path, _ = _pem_files(tmp_path, ec.generate_private_key(ec.SECP256R1()))
    settings = sessions.load_settings(secret_key=SECRET, jwt_algorithm="RS256", jwt_key_files=[str(path)])
    with pytest.raises(sessions.SessionConfigurationError, match="not a key for RS256"):
        sessions.codec.codec_from_settings(settings)
    with pytest.raises(sessions.SessionConfigurationError, match="KEY_FILES"):
        sessions.load_settings(secret_key=SECRET, jwt_algorithm="RS256")


def test_a_secret_key_rotation_keeps_jwts_signed_with_the_derived_key(sessions: ModuleType, clock: Any) -> None:
    old_key = "old-oQd49b8SKP7nvu6GHraWgq9rT27XbzthrMbsjhcC8yA"
    new_key = "new-4XJECDKTuwy1HFrLG0TVZPyXP_AtGEp19jK-pVj-V5M"
    store = sessions.MemoryStore(100, clock=clock)
    before, _ = build_app(sessions, clock, store, secret_key=old_key)
    with TestClient(before, base_url=BASE_URL) as client:
        token = cookie_of(client.post("/login/ada"))
    assert token is not None
    rotated, _ = build_app(sessions, clock, store, secret_key=new_key, secret_key_fallbacks=[old_key])
    with TestClient(rotated, base_url=BASE_URL) as client:
        assert holding(client, token).get("/me").json() == {"id": "ada"}
        renewed = cookie_of(client.post("/elevate"))
    assert renewed is not None
    assert parts(renewed)[0]["kid"] != parts(token)[0]["kid"]  # new tokens are signed with the new key
    without, _ = build_app(sessions, clock, store, secret_key=new_key)
    with TestClient(without, base_url=BASE_URL) as client:
        assert refused(client, token)


def test_a_verified_token_is_checked_once_and_its_expiry_every_time(sessions: ModuleType, clock: Any) -> None:
    _, manager = build_app(sessions, clock, jwt_secrets=[KEY])
    codec = manager.codec
    signature_checks: list[str] = []
    original = codec._signed_claims

    def counting(raw: str, *args: Any) -> Any:
        signature_checks.append(raw)
        return original(raw, *args)

    codec._signed_claims = counting
    token = codec.encode(sessions.tokens.issue_token(), _record(sessions, clock, lifetime=timedelta(minutes=5)))
    first, second = codec.decode(token), codec.decode(token)

    assert first is not None
    assert first == second
    assert signature_checks == [token]  # the second request reused the verified claims
    clock.advance(timedelta(minutes=6))
    assert codec.decode(token) is None  # a remembered token still expires
    assert codec.decode(token[:-2] + ("AA" if not token.endswith("AA") else "BB")) is None


def _record(sessions: ModuleType, clock: Any, *, lifetime: timedelta) -> Any:
    now = clock()
    return sessions.SessionRecord(
        session_id="s",
        secret_hash="",
        data={},
        principal=None,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
    )
