"""REST /api/v1/nodes: reads (paging, filters, ETags, bad input) and writes (permissions, If-Match, events)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app import db
from app.models import AuditEvent, Change, NationalNode, OutboxEntry
from tests.factories import create_node

pytestmark = pytest.mark.asyncio
N = NationalNode.__table__  # type: ignore[attr-defined]


async def make(n: int, **overrides: object) -> list[dict]:
    async with db.transaction() as s:
        return [await create_node(s, **overrides) for _ in range(n)]


async def pages(client, url: str) -> list[dict]:
    """Follow Link headers to the end; every page is a 200 and the last has no next link."""
    seen: list[dict] = []
    while url:
        r = await client.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        seen.extend(body["items"])
        if body["next_cursor"]:
            url = r.headers["link"].split(">")[0].lstrip("<").replace("http://test", "")
        else:
            assert "link" not in r.headers
            url = ""
    return seen


def ids(items: list[dict]) -> list[str]:
    return [str(i["id"]) for i in items]


async def test_paging_returns_every_node_once_in_each_sort(client):
    made = await make(7) + await make(4, party="FR")
    newest_first = sorted(made, key=lambda n: (n["updated_at"], n["id"]), reverse=True)
    assert ids(await pages(client, "/api/v1/nodes?limit=3")) == ids(newest_first)
    assert ids(await pages(client, "/api/v1/nodes?limit=2&sort=updated_at")) == ids(newest_first[::-1])
    by_party = sorted(made, key=lambda n: (n["party"], n["updated_at"], n["id"]))
    assert ids(await pages(client, "/api/v1/nodes?limit=4&sort=party")) == ids(by_party)


async def test_paging_with_ties_loses_nothing(client):
    made = await make(9, updated_at=datetime(2025, 6, 1, tzinfo=UTC))
    seen = await pages(client, "/api/v1/nodes?limit=2")
    assert len(seen) == 9 and sorted(ids(seen)) == sorted(ids(made))


@pytest.mark.parametrize(
    ("query", "expect"),
    [
        ("party=FR", {"fr"}),
        ("party=fr", {"fr"}),
        ("status=inactive", {"inactive"}),
        ("status=in-development&party=FR", set()),
        ("updated_since=2030-01-01", {"late"}),
        ("updated_since=2030-01-01T00:00:00Z&party=FR", set()),
        ("", {"br", "fr", "inactive", "late"}),
    ],
)
async def test_filters(client, query, expect):
    async with db.transaction() as s:
        tags = {
            "br": await create_node(s),
            "fr": await create_node(s, party="FR"),
            "inactive": await create_node(s, status="inactive"),
            "late": await create_node(s, updated_at=datetime(2031, 1, 1, tzinfo=UTC)),
        }
    r = await client.get(f"/api/v1/nodes?{query}")
    assert r.status_code == 200, r.text
    assert set(ids(r.json()["items"])) == {str(tags[t]["id"]) for t in expect}


async def test_single_node_shape_etag_and_304(client):
    (node,) = await make(1, focal_point={"name": "Ana", "email": "ana@example.org"}, description={"fr": "Le CHM"})
    r = await client.get(f"/api/v1/nodes/{node['id']}")
    assert r.status_code == 200
    body = r.json()
    assert body["party"] == "BR" and body["focal_point"]["email"] == "ana@example.org"
    assert body["description"] == {"fr": "Le CHM"}
    etag = r.headers["etag"]
    again = await client.get(f"/api/v1/nodes/{node['id']}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert (await client.get(f"/api/v1/nodes/{node['id']}", headers={"If-None-Match": '"x"'})).status_code == 200
    missing = await client.get(f"/api/v1/nodes/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("url", "status", "loc"),
    [
        ("/api/v1/nodes?cursor=garbage!!", 400, ["query", "cursor"]),
        ("/api/v1/nodes?cursor=WyJ4Il0", 400, ["query", "cursor"]),
        ("/api/v1/nodes?limit=0", 422, ["query", "limit"]),
        ("/api/v1/nodes?limit=100000", 422, ["query", "limit"]),
        ("/api/v1/nodes?party=XX", 400, ["query", "party"]),
        ("/api/v1/nodes?party=BRA", 422, ["query", "party"]),
        ("/api/v1/nodes?status=sleeping", 400, ["query", "status"]),
        ("/api/v1/nodes?updated_since=yesterday", 400, ["query", "updated_since"]),
        ("/api/v1/nodes?sort=name", 400, ["query", "sort"]),
        ("/api/v1/nodes/not-a-uuid", 422, ["path", "node_id"]),
    ],
)
async def test_bad_input_is_a_clear_problem(client, url, status, loc):
    r = await client.get(url)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["detail"]
    assert any(e["loc"] == loc for e in body["errors"]), body


async def test_cursor_of_another_sort_is_refused(client):
    await make(3)
    first = (await client.get("/api/v1/nodes?limit=1&sort=updated_at")).json()
    r = await client.get(f"/api/v1/nodes?limit=1&cursor={first['next_cursor']}")
    assert r.status_code == 400 and "sort" in r.json()["detail"]
    by_party = (await client.get("/api/v1/nodes?limit=1&sort=party")).json()
    r = await client.get(f"/api/v1/nodes?limit=1&cursor={by_party['next_cursor']}")
    assert r.status_code == 400 and r.json()["errors"][0]["loc"] == ["query", "cursor"]
