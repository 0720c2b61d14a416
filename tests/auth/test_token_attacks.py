"""Forged, tampered, expired, revoked and malformed tokens: every one is refused with problem+json."""

from __future__ import annotations

import base64
import time
import uuid

import orjson
import pytest
from jose import jwt
from sqlalchemy import text

from app import db
from app.settings import get_settings
from tests.auth import bearer, token_for

pytestmark = pytest.mark.asyncio
WHOAMI = "/api/v1/auth/whoami"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    return jwt.get_unverified_claims(token)


def sign(claims: dict, *, key: str | None = None, algorithm: str = "HS256", headers: dict | None = None) -> str:
    return jwt.encode(claims, key or get_settings().secret_key(), algorithm=algorithm, headers=headers)


def assert_refused(r, status: int = 401, detail: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    if detail:
        assert detail in body["detail"], body["detail"]
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")


async def test_resigned_genuine_claims_are_accepted(client):
    """The crafting pipeline is sound: re-signing unchanged claims works, so each refusal below is the attack's."""
    claims = claims_of(await token_for("BR"))
    r = await client.get(WHOAMI, headers=bearer(sign(claims)))
    assert r.status_code == 200, r.text
    assert r.json()["party"] == "BR"


async def test_alg_none_is_refused(client):
    claims = claims_of(await token_for("BR"))
    for alg in ("none", "None", "NONE"):
        forged = f"{b64(orjson.dumps({'alg': alg, 'typ': 'JWT'}))}.{b64(orjson.dumps(claims))}."
        assert_refused(await client.get(WHOAMI, headers=bearer(forged)), detail="algorithm")


async def test_wrong_key_is_refused(client):
    claims = claims_of(await token_for("BR"))
    forged = sign(claims, key="x" * 48)
    assert_refused(await client.get(WHOAMI, headers=bearer(forged)), detail="ignature")


async def test_other_algorithms_are_refused(client):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    claims = claims_of(await token_for("BR"))
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for forged in (sign(claims, algorithm="HS512"), sign(claims, algorithm="HS384"),
                   sign(claims, key=pem.decode(), algorithm="RS256")):  # fmt: skip
        assert_refused(await client.get(WHOAMI, headers=bearer(forged)), detail="algorithm")


async def test_hs256_header_over_other_signature_is_refused(client):
    claims = claims_of(await token_for("BR"))
    hs512 = sign(claims, algorithm="HS512")
    _, payload, signature = hs512.split(".")
    forged = f"{b64(orjson.dumps({'alg': 'HS256', 'typ': 'JWT'}))}.{payload}.{signature}"
    assert_refused(await client.get(WHOAMI, headers=bearer(forged)))


async def test_expired_is_refused(client):
    claims = claims_of(await token_for("BR"))
    now = int(time.time())
    claims |= {"iat": now - 3600, "exp": now - 120}
    assert_refused(await client.get(WHOAMI, headers=bearer(sign(claims))), detail="expired")


async def test_expired_row_is_refused_even_with_a_valid_jwt(client):
    token = await token_for("BR")
    async with db.transaction() as s:
        await s.execute(text("UPDATE api_tokens SET expires_at = now() - interval '1 minute'"))
    assert_refused(await client.get(WHOAMI, headers=bearer(token)), detail="expired")


async def test_nbf_in_the_future_is_refused(client):
    claims = claims_of(await token_for("BR"))
    assert_refused(await client.get(WHOAMI, headers=bearer(sign(claims | {"nbf": int(time.time()) + 600}))),
                   detail="nbf")  # fmt: skip
    ok = await client.get(WHOAMI, headers=bearer(sign(claims | {"nbf": int(time.time()) - 10})))
    assert ok.status_code == 200, ok.text


async def test_iat_in_the_future_is_refused(client):
    claims = claims_of(await token_for("BR"))
    assert_refused(await client.get(WHOAMI, headers=bearer(sign(claims | {"iat": int(time.time()) + 3600}))))


@pytest.mark.parametrize("claim", ["exp", "aud", "iss", "jti", "sub", "iat", "typ"])
async def test_missing_required_claim_is_refused(client, claim):
    claims = claims_of(await token_for("BR"))
    del claims[claim]
    assert_refused(await client.get(WHOAMI, headers=bearer(sign(claims))), detail=claim)


@pytest.mark.parametrize(
    ("claim", "value"),
    [("aud", "someone-else"), ("aud", ["chm-api", "x"]), ("iss", "evil"), ("typ", "JWT"), ("typ", "refresh"),
     ("exp", "9999999999"), ("exp", 9.9e9), ("iat", [1]), ("iat", True), ("sub", 7), ("jti", "not-a-uuid"),
     ("jti", ""), ("nbf", "0")],
)  # fmt: skip
async def test_wrong_claim_value_or_type_is_refused(client, claim, value):
    claims = claims_of(await token_for("BR"))
    claims[claim] = value
    assert_refused(await client.get(WHOAMI, headers=bearer(sign(claims))))


async def test_jti_without_a_row_is_refused(client):
    claims = claims_of(await token_for("BR"))
    claims["jti"] = str(uuid.uuid4())
    assert_refused(await client.get(WHOAMI, headers=bearer(sign(claims))), detail="unknown token")


async def test_sub_not_matching_the_row_is_refused(client):
    """A BR token re-signed for FR (say, a leaked key plus a known jti) must not act for FR."""
    claims = claims_of(await token_for("BR"))
    assert_refused(await client.get(WHOAMI, headers=bearer(sign(claims | {"sub": "FR"}))), detail="subject")
    assert_refused(await client.get(WHOAMI, headers=bearer(sign(claims | {"sub": "SECRETARIAT"}))))


async def test_scope_claim_grants_nothing(client):
    """Scopes come from the row, not from the JWT."""
    claims = claims_of(await token_for("BR", "records:write"))
    r = await client.get(WHOAMI, headers=bearer(sign(claims | {"scope": "admin tokens:write"})))
    assert r.status_code == 200
    assert r.json()["scopes"] == ["records:write"]


async def test_revoked_is_refused(client):
    token = await token_for("BR")
    async with db.transaction() as s:
        await s.execute(text("UPDATE api_tokens SET revoked_at = now()"))
    assert_refused(await client.get(WHOAMI, headers=bearer(token)), detail="revoked")


async def test_huge_authorization_header_is_refused_quickly(client):
    start = time.perf_counter()
    r = await client.get(WHOAMI, headers={"Authorization": "Bearer " + "a" * 10_000_000})
    assert_refused(r, 431)  # by the header size limit, before the application sees it
    assert time.perf_counter() - start < 5


async def test_long_token_is_refused_before_decoding(client):
    claims = claims_of(await token_for("BR"))
    assert_refused(await client.get(WHOAMI, headers=bearer(sign(claims | {"pad": "x" * 5000}))), detail="longer")


@pytest.mark.parametrize("param", ["access_token", "token"])
async def test_token_in_query_string_is_refused(client, param):
    token = await token_for("BR")
    r = await client.get(f"{WHOAMI}?{param}={token}")
    assert_refused(r, status=400, detail="query string")
    assert r.json()["errors"][0]["loc"] == ["query", param]
    r = await client.get(f"/api/v1/records?{param}={token}", headers=bearer(token))
    assert_refused(r, status=400)


@pytest.mark.parametrize(
    "header",
    ["garbage", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer a.b.c", "Bearer a b",
     "Bearer ....", "Bearer " + b64(b"{") + ".e30.", "Bearer " + b64(b"[]") + ".e30.sig",
     "Bearer " + b64(b'{"alg":"HS256"}') + "." + b64(b"[1]") + ".sig", "Bearer \u00e9t\u00e9.x.y"],
)  # fmt: skip
async def test_garbage_is_refused(client, header):
    assert_refused(await client.get(WHOAMI, headers={"Authorization": header.encode("utf-8")}))


async def test_refused_token_never_degrades_to_anonymous_on_reads(client):
    r = await client.get("/api/v1/records", headers={"Authorization": "Bearer nope"})
    assert_refused(r)
