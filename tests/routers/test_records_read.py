"""REST reads of records: paging, filters, visibility, ETags, bad input."""

from __future__ import annotations

import uuid

import pytest

from app import db
from tests.factories import create_record

pytestmark = pytest.mark.asyncio


async def make(n: int, **overrides: object) -> list[dict]:
    async with db.transaction() as s:
        return [await create_record(s, **overrides) for _ in range(n)]


async def pages(client, url: str) -> list[dict]:
    seen: list[dict] = []
    while url:
        r = await client.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        seen.extend(body["items"])
        nxt = body["next_cursor"]
        if nxt:
            assert 'rel="next"' in r.headers["link"]
            url = r.headers["link"].split(">")[0].lstrip("<").replace("http://test", "")
        else:
            assert "link" not in r.headers
            url = ""
    return seen


async def test_paging_returns_every_published_record_once(client):
    made = await make(23)
    await make(2, status="draft")
    seen = await pages(client, "/api/v1/records?limit=5")
    assert [r["id"] for r in seen] == [str(r["id"]) for r in sorted(made, key=lambda r: r["updated_at"], reverse=True)]
    assert all(r["status"] == "published" for r in seen)


async def test_paging_ascending_and_by_published_at(client):
    made = await make(7)
    asc = await pages(client, "/api/v1/records?limit=3&sort=updated_at")
    assert [r["id"] for r in asc] == [str(r["id"]) for r in made]
    pub = await pages(client, "/api/v1/records?limit=2&sort=-published_at")
    assert sorted(r["id"] for r in pub) == sorted(str(r["id"]) for r in made)


async def test_paging_with_ties_in_updated_at_loses_nothing(client):
    from datetime import UTC, datetime

    same = datetime(2025, 6, 1, tzinfo=UTC)
    made = await make(9, updated_at=same)
    seen = await pages(client, "/api/v1/records?limit=2")
    assert sorted(r["id"] for r in seen) == sorted(str(r["id"]) for r in made)
    assert len(seen) == 9


async def test_record_shape_and_uid(client):
    (rec,) = await make(1, type="news", party="FR")
    r = await client.get(f"/api/v1/records/{rec['id']}")
    assert r.status_code == 200
    body = r.json()
    assert body["uid"] == f"CHM-NEWS-FR-{rec['serial']:06d}-1"
    assert body["title"]["fr"].startswith("Fiche")
    by_uid = await client.get(f"/api/v1/records/by-uid/{body['uid']}")
    assert by_uid.status_code == 200 and by_uid.json()["id"] == body["id"]


@pytest.mark.parametrize(
    ("query", "expect"),
    [
        ("party=FR", {"fr"}),
        ("party=fr", {"fr"}),
        ("type=news", {"news"}),
        ("subject=CBD-SUBJECT-FORESTS", {"forest"}),
        ("gbf_target=GBF-TARGET-03", {"t3"}),
        ("updated_since=2030-01-01", {"late"}),
        ("updated_since=2030-01-01T00:00:00Z&party=FR", set()),
        ("type=news&party=FR", set()),
    ],
)
async def test_filters(client, query, expect):
    from datetime import UTC, datetime

    tags = {}
    async with db.transaction() as s:
        tags["fr"] = await create_record(s, party="FR")
        tags["news"] = await create_record(s, type="news")
        tags["forest"] = await create_record(s, subjects=["CBD-SUBJECT-FORESTS"])
        tags["t3"] = await create_record(s, gbf_targets=["GBF-TARGET-03", "GBF-TARGET-01"])
        tags["late"] = await create_record(s, updated_at=datetime(2031, 1, 1, tzinfo=UTC))
        await create_record(s, party="FR", status="draft", type="news")
    r = await client.get(f"/api/v1/records?{query}")
    assert r.status_code == 200, r.text
    got = {item["id"] for item in r.json()["items"]}
    assert got == {str(tags[t]["id"]) for t in expect}


async def test_anonymous_never_sees_drafts_pending_or_withdrawn(client):
    draft, pending, withdrawn = [(await make(1, status=s))[0] for s in ("draft", "pending", "withdrawn")]
    for status in ("draft", "pending", "withdrawn"):
        r = await client.get(f"/api/v1/records?status={status}")
        assert r.status_code == 200 and r.json()["items"] == []
    assert (await client.get(f"/api/v1/records/{draft['id']}")).status_code == 404
    assert (await client.get(f"/api/v1/records/{pending['id']}")).status_code == 404
    gone = await client.get(f"/api/v1/records/{withdrawn['id']}")
    assert gone.status_code == 410
    assert gone.headers["content-type"] == "application/problem+json"
    assert gone.json()["tombstone"]["id"] == str(withdrawn["id"])
    assert "title" not in gone.json()["tombstone"]


async def test_etag_and_304(client):
    (rec,) = await make(1)
    r = await client.get(f"/api/v1/records/{rec['id']}")
    etag = r.headers["etag"]
    again = await client.get(f"/api/v1/records/{rec['id']}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = await client.get(f"/api/v1/records/{rec['id']}", headers={"If-None-Match": '"nope"'})
    assert other.status_code == 200


async def test_revisions(client):
    (rec,) = await make(1, revision=3)
    r = await client.get(f"/api/v1/records/{rec['id']}/revisions?limit=2")
    body = r.json()
    assert [i["revision"] for i in body["items"]] == [3, 2]
    r2 = await client.get(f"/api/v1/records/{rec['id']}/revisions?limit=2&cursor={body['next_cursor']}")
    assert [i["revision"] for i in r2.json()["items"]] == [1]
    one = await client.get(f"/api/v1/records/{rec['id']}/revisions/2")
    assert one.json()["uid"].endswith("-2")
    assert (await client.get(f"/api/v1/records/{rec['id']}/revisions/9")).status_code == 404


@pytest.mark.parametrize(
    ("url", "status", "loc"),
    [
        ("/api/v1/records?cursor=garbage!!", 400, ["query", "cursor"]),
        ("/api/v1/records?cursor=WyJ4Il0", 400, ["query", "cursor"]),
        ("/api/v1/records?limit=0", 422, ["query", "limit"]),
        ("/api/v1/records?limit=100000", 422, ["query", "limit"]),
        ("/api/v1/records?limit=abc", 422, ["query", "limit"]),
        ("/api/v1/records?type=poem", 400, ["query", "type"]),
        ("/api/v1/records?status=lost", 400, ["query", "status"]),
        ("/api/v1/records?party=XX", 400, ["query", "party"]),
        ("/api/v1/records?subject=CBD-SUBJECT-NOPE", 400, ["query", "subject"]),
        ("/api/v1/records?gbf_target=GBF-TARGET-99", 400, ["query", "gbf_target"]),
        ("/api/v1/records?updated_since=yesterday", 400, ["query", "updated_since"]),
        ("/api/v1/records?sort=title", 400, ["query", "sort"]),
        ("/api/v1/records/not-a-uuid", 422, ["path", "record_id"]),
    ],
)
async def test_bad_input_is_a_clear_problem(client, url, status, loc):
    r = await client.get(url)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert any(e["loc"] == loc for e in body["errors"]), body


async def test_cursor_of_another_sort_is_refused(client):
    await make(3)
    first = (await client.get("/api/v1/records?limit=1&sort=created_at")).json()
    r = await client.get(f"/api/v1/records?limit=1&cursor={first['next_cursor']}")
    assert r.status_code == 400 and "sort" in r.json()["detail"]


async def test_unknown_routes_and_methods_are_problems(client):
    r = await client.get("/api/v1/nope")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = await client.delete("/api/v1/parties")
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"
    missing = await client.get(f"/api/v1/records/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
