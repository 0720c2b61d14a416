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


# --- writes --------------------------------------------------------------------------------------------------

from tests.auth import bearer, token_for  # noqa: E402

BODY = {"name": {"en": "Brazil CHM"}, "url": "https://chm.example.br/", "languages": ["en", "es"]}


async def counts() -> dict[str, dict[str, int]]:
    """Rows per kind in audit_events, changes and search_outbox (minting test tokens is not counted)."""
    out: dict[str, dict[str, int]] = {}
    async with db.read_connection() as conn:
        for name, model in (("audit", AuditEvent), ("changes", Change), ("outbox", OutboxEntry)):
            t = model.__table__  # type: ignore[union-attr]
            rows = await conn.execute(select(t.c.kind, func.count()).where(t.c.kind != "token").group_by(t.c.kind))
            out[name] = dict(rows.all())
    return out


async def stored(node_id: object) -> dict | None:
    async with db.read_connection() as conn:
        row = (await conn.execute(select(N).where(N.c.id == node_id))).first()
    return dict(row._mapping) if row else None


async def test_create_read_back_and_events(client):
    tok = await token_for("BR", "nodes:write")
    r = await client.post("/api/v1/nodes", json=BODY, headers=bearer(tok))
    assert r.status_code == 201, r.text
    node = r.json()
    assert node["party"] == "BR" and node["status"] == "active" and node["languages"] == ["en", "es"]
    assert r.headers["location"] == f"/api/v1/nodes/{node['id']}"
    got = await client.get(r.headers["location"])
    assert got.json() == node and got.headers["etag"] == r.headers["etag"]
    assert await counts() == {"audit": {"node": 1}, "changes": {"node": 1}, "outbox": {"node": 1}}


async def test_secretariat_names_the_party(client):
    tok = await token_for(None, "admin")
    r = await client.post("/api/v1/nodes", json={**BODY, "party": "fr"}, headers=bearer(tok))
    assert r.status_code == 201 and r.json()["party"] == "FR"
    r = await client.post("/api/v1/nodes", json=BODY, headers=bearer(tok))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "party"]
    r = await client.post("/api/v1/nodes", json={**BODY, "party": "XX"}, headers=bearer(tok))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "party"]


@pytest.mark.parametrize(
    ("extra", "status", "loc"),
    [
        ({"party": "FR"}, 403, None),
        ({"id": str(uuid.uuid4())}, 422, ["body", "id"]),
        ({"created_at": "2020-01-01T00:00:00Z"}, 422, ["body", "created_at"]),
        ({"updated_at": "2020-01-01T00:00:00Z"}, 422, ["body", "updated_at"]),
        ({"status": "asleep"}, 422, ["body", "status"]),
        ({"languages": ["pt"]}, 422, ["body", "languages", 0]),
        ({"url": "not a url"}, 422, ["body", "url"]),
        ({"name": {"xx": "?"}}, 422, ["body", "name"]),
    ],
)
async def test_create_refuses_server_owned_and_foreign_fields(client, extra, status, loc):
    tok = await token_for("BR", "nodes:write")
    r = await client.post("/api/v1/nodes", json={**BODY, **extra}, headers=bearer(tok))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    if loc:
        assert any(e["loc"] == loc for e in r.json()["errors"]), r.json()
    assert (await client.get("/api/v1/nodes")).json()["items"] == []
    assert await counts() == {"audit": {}, "changes": {}, "outbox": {}}


async def test_writes_need_a_token_with_the_scope(client):
    (node,) = await make(1)
    assert (await client.post("/api/v1/nodes", json=BODY)).status_code == 401
    tok = await token_for("BR", "records:write")
    assert (await client.post("/api/v1/nodes", json=BODY, headers=bearer(tok))).status_code == 403
    assert (await client.patch(f"/api/v1/nodes/{node['id']}", json={"status": "inactive"},
                               headers=bearer(tok))).status_code == 403  # fmt: skip
    assert (await client.delete(f"/api/v1/nodes/{node['id']}", headers=bearer(tok))).status_code == 403
    assert await stored(node["id"]) == node


async def test_update_with_if_match_and_stale_412(client):
    tok = await token_for("BR", "nodes:write")
    (node,) = await make(1)
    url = f"/api/v1/nodes/{node['id']}"
    etag = (await client.get(url)).headers["etag"]
    r = await client.patch(url, json={"status": "inactive", "focal_point": {"name": "Ana"}},
                           headers={**bearer(tok), "If-Match": etag})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "inactive" and r.json()["name"] == node["name"]
    assert r.json()["updated_at"] > node["updated_at"].isoformat()
    assert r.headers["etag"] != etag and (await client.get(url)).headers["etag"] == r.headers["etag"]
    stale = await client.put(url, json=BODY, headers={**bearer(tok), "If-Match": etag})
    assert stale.status_code == 412 and stale.headers["content-type"] == "application/problem+json"
    assert (await client.get(url)).json() == r.json()
    put = await client.put(url, json={**BODY, "party": "BR"}, headers={**bearer(tok), "If-Match": r.headers["etag"]})
    assert put.status_code == 200, put.text
    assert put.json()["status"] == "active" and put.json()["focal_point"] is None and put.json()["url"] == BODY["url"]
    assert (await client.delete(url, headers={**bearer(tok), "If-Match": etag})).status_code == 412
    assert (await client.delete(url, headers={**bearer(tok), "If-Match": put.headers["etag"]})).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.delete(url, headers=bearer(tok))).status_code == 404
    assert await counts() == {"audit": {"node": 3}, "changes": {"node": 3}, "outbox": {"node": 3}}


async def test_patch_cannot_null_required_fields(client):
    tok = await token_for("BR", "nodes:write")
    (node,) = await make(1)
    r = await client.patch(f"/api/v1/nodes/{node['id']}", json={"name": None}, headers=bearer(tok))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "name"]
    r = await client.patch(f"/api/v1/nodes/{node['id']}", json={"description": None}, headers=bearer(tok))
    assert r.status_code == 200 and r.json()["description"] is None
    async with db.read_connection() as conn:  # SQL NULL, not a JSON null
        assert (await conn.execute(select(N.c.description.is_(None)).where(N.c.id == node["id"]))).scalar_one()


async def test_another_party_changes_nothing(client):
    fr = await token_for("FR", "nodes:write")
    br = await token_for("BR", "nodes:write")
    (node,) = await make(1)
    url = f"/api/v1/nodes/{node['id']}"
    attempts = [
        client.patch(url, json={"status": "inactive"}, headers=bearer(fr)),
        client.put(url, json=BODY, headers=bearer(fr)),
        client.put(url, json={**BODY, "party": "FR"}, headers=bearer(fr)),
        client.delete(url, headers=bearer(fr)),
        client.put(url, json={**BODY, "party": "FR"}, headers=bearer(br)),  # BR cannot hand its node to FR
    ]
    for attempt in attempts:
        r = await attempt
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json"
    assert await stored(node["id"]) == node
    assert await counts() == {"audit": {}, "changes": {}, "outbox": {}}


async def test_secretariat_edits_any_node_but_cannot_move_it(client):
    tok = await token_for(None, "nodes:write")
    (node,) = await make(1)
    url = f"/api/v1/nodes/{node['id']}"
    r = await client.put(url, json={**BODY, "party": "FR"}, headers=bearer(tok))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "party"]
    r = await client.patch(url, json={"platform": "custom"}, headers=bearer(tok))
    assert r.status_code == 200 and r.json()["platform"] == "custom" and r.json()["party"] == "BR"
    assert (await counts())["audit"] == {"node": 1}
