"""The issue's concrete probes: each used to answer 500; now a 4xx problem, nothing written, search still
answers and the connection stays usable."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from app import db
from app.models import Record
from app.services import paging, signing
from tests.auth import bearer, token_for

pytestmark = pytest.mark.asyncio

BODY = {"type": "resource", "title": {"en": "Mangroves"}}


async def records_count() -> int:
    async with db.read_connection() as conn:
        return (await conn.execute(select(func.count()).select_from(Record.__table__))).scalar_one()


@pytest.fixture
async def br(engine):  # type: ignore[no-untyped-def]
    return bearer(await token_for("BR", "records:write", "records:publish"))


def is_problem(r, *statuses: int) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code in statuses, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == r.status_code


@pytest.mark.parametrize("url", [
    "/api/v1/search?q=a%00b",
    "/api/v1/decisions/COP%00",
    "/api/v1/records?party=B%00",
    "/api/v1/records/by-uid/CHM-RES-BR-%00-1",
    "/api/v1/records/00000000-0000-0000-0000-000000000000/revisions/2147483648",
    "/api/v1/changes?since=9223372036854775808",
    "/api/v1/records/by-uid/CHM-RES-BR-99999999999999999999999-1",
    "/api/v1/records/by-uid/CHM-RES-BR-000001-99999999999",
    "/api/v1/records?updated_since=9999-12-31T23:59:59-14:00",
    "/api/v1/records?updated_since=0001-01-01T00:00:00%2B14:00",
    "/api/v1/records?cursor=" + signing.dumps(["-updated", "9999-12-31T23:59:59-14:00", str(uuid.uuid4())],
                                              purpose=paging.CURSOR_PURPOSE),
    "/api/v1/records?cursor=WyItdXBkYXRlZCIsIjk5OTktMTItMzFUMjM6NTk6NTktMTQ6MDAiXQ",  # an unsigned (old-style) cursor
])  # fmt: skip
async def test_anonymous_urls_that_used_to_500(client, url) -> None:  # type: ignore[no-untyped-def]
    r = await client.get(url)
    is_problem(r, 400, 404, 422)
    assert (await client.get("/api/v1/search?q=biodiversity")).status_code == 200


@pytest.mark.parametrize("patch", [
    {"title": {"en": "a\u0000b"}},
    {"keywords": ["ok", "nul\u0000"]},
    {"publication_date": "9999-12-31"},
    {"publication_date": "0001-01-01"},
    {"type": None},
    {"title": None},
    {"external_id": "x\u0000"},
    {"links": [{"url": "https://example.org", "name": "\u0000"}]},
])  # fmt: skip
async def test_bad_bodies_are_422_naming_the_field(client, br, patch) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/records", json={**BODY, **patch}, headers=br)
    is_problem(r, 422)
    field = next(iter(patch))
    assert any(field in e["loc"] for e in r.json()["errors"]), r.json()
    assert await records_count() == 0
    created = await client.post("/api/v1/records", json=BODY, headers=br)
    assert created.status_code == 201
    r = await client.patch(f"/api/v1/records/{created.json()['id']}", json=patch, headers=br)
    is_problem(r, 422)


@pytest.mark.parametrize("raw", [
    b'{"type": "resource", "title": {"en": "\\ud800"}}',
    b'{"type": "\\ud800", "title": {"en": "x"}}',
    b'{"type": "resource", "title": {"\\ud800": "x"}}',
    b'{"type": "resource", "title": {"en": "x"}, "external_id": 123456789012345678901234567890}',
])  # fmt: skip
async def test_unencodable_input_is_not_echoed(client, br, raw) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/records", content=raw, headers={**br, "content-type": "application/json"})
    is_problem(r, 422)
    assert await records_count() == 0


async def test_expires_days_is_a_strict_integer(client) -> None:  # type: ignore[no-untyped-def]
    admin = bearer(await token_for(None, "admin", "tokens:write"))
    for bad in (True, "30", 30.5):
        r = await client.post("/api/v1/tokens", json={"name": "x", "party": "BR", "scopes": ["records:write"],
                                                      "expires_days": bad}, headers=admin)  # fmt: skip
        is_problem(r, 422)
