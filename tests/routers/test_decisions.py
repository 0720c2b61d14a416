"""REST /api/v1/decisions: reads (code order, paging, filters, paragraphs, ETags) and Secretariat writes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, update

from app import db
from app.models import ApiToken, AuditEvent, Change, Decision, DecisionParagraph, OutboxEntry
from tests.auth import bearer, token_for
from tests.factories import create_decision

pytestmark = pytest.mark.asyncio
D = Decision.__table__  # type: ignore[attr-defined]
DP = DecisionParagraph.__table__  # type: ignore[attr-defined]
T = ApiToken.__table__  # type: ignore[attr-defined]


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


def codes(items: list[dict]) -> list[str]:
    return [i["code"] for i in items]


async def seed() -> dict[str, dict]:
    specs = [
        ("NP-MOP", 4, 2, date(2022, 12, 19)), ("COP", 15, 4, date(2022, 12, 19)), ("COP", 9, 30, date(2008, 5, 30)),
        ("CP-MOP", 10, 1, None), ("COP", 9, 1, date(2008, 5, 30)), ("COP", 10, 2, date(2010, 10, 29)),
    ]  # fmt: skip
    async with db.transaction() as s:
        out = {}
        for body, session, number, adopted in specs:
            d = await create_decision(s, body=body, session=session, number=number, adopted_on=adopted)
            out[d["code"]] = d
    return out


async def test_default_order_is_code_order_across_pages(client):
    await seed()
    seen = await pages(client, "/api/v1/decisions?limit=2")
    assert codes(seen) == ["COP-9-1", "COP-9-30", "COP-10-2", "COP-15-4", "CP-MOP-10-1", "NP-MOP-4-2"]
    assert all(i["paragraphs"] is None for i in seen)


async def test_other_sorts_page_without_loss(client):
    made = await seed()
    adopted = await pages(client, "/api/v1/decisions?limit=2&sort=-adopted_on")
    assert codes(adopted)[-1] == "CP-MOP-10-1"  # no adoption date: last
    assert [i["adopted_on"] for i in adopted[:5]] == sorted((i["adopted_on"] for i in adopted[:5]), reverse=True)
    assert sorted(codes(adopted)) == sorted(made)
    updated = await pages(client, "/api/v1/decisions?limit=4&sort=-updated_at")
    assert codes(updated) == [d["code"] for d in sorted(made.values(), key=lambda d: d["updated_at"], reverse=True)]


@pytest.mark.parametrize(
    ("query", "expect"),
    [
        ("body=COP", {"COP-9-1", "COP-15-4"}),
        ("body=cp-mop", {"CP-MOP-10-1"}),
        ("session=15", {"COP-15-4"}),
        ("body=COP&session=9", {"COP-9-1"}),
        ("status=retired", {"CP-MOP-10-1"}),
        ("subject=CBD-SUBJECT-FORESTS", {"COP-9-1"}),
        ("gbf_target=GBF-TARGET-03", {"COP-15-4"}),
        ("updated_since=2030-01-01", {"NP-MOP-4-2"}),
        ("status=active&gbf_target=GBF-TARGET-03&session=9", set()),
    ],
)
async def test_filters(client, query, expect):
    async with db.transaction() as s:
        await create_decision(s, session=9, number=1, subjects=["CBD-SUBJECT-FORESTS"])
        await create_decision(s, session=15, number=4, gbf_targets=["GBF-TARGET-03", "GBF-TARGET-02"])
        await create_decision(s, body="CP-MOP", session=10, number=1, status="retired")
        await create_decision(s, body="NP-MOP", session=4, number=2, updated_at=datetime(2031, 1, 1, tzinfo=UTC))
    r = await client.get(f"/api/v1/decisions?{query}")
    assert r.status_code == 200, r.text
    assert set(codes(r.json()["items"])) == expect


async def test_single_with_paragraphs_in_order_etag_and_304(client):
    paragraphs = [{"number": str(i), "type": "operative", "text": {"en": f"Paragraph {i}"}, "actors": ["Parties"]}
                  for i in (1, 2, 3)]  # fmt: skip
    async with db.transaction() as s:
        await create_decision(s, session=15, number=4, paragraphs=paragraphs)
    r = await client.get("/api/v1/decisions/COP-15-4")
    assert r.status_code == 200
    assert [p["text"]["en"] for p in r.json()["paragraphs"]] == ["Paragraph 1", "Paragraph 2", "Paragraph 3"]
    assert (await client.get("/api/v1/decisions/cop-15-4")).json()["code"] == "COP-15-4"
    again = await client.get("/api/v1/decisions/COP-15-4", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    missing = await client.get("/api/v1/decisions/COP-15-99")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("url", "status", "loc"),
    [
        ("/api/v1/decisions?cursor=garbage!!", 400, ["query", "cursor"]),
        ("/api/v1/decisions?cursor=WyJjb2RlIiwxLDIsMyw0XQ", 400, ["query", "cursor"]),
        ("/api/v1/decisions?limit=0", 422, ["query", "limit"]),
        ("/api/v1/decisions?limit=100000", 422, ["query", "limit"]),
        ("/api/v1/decisions?body=SBSTTA", 400, ["query", "body"]),
        ("/api/v1/decisions?session=x", 422, ["query", "session"]),
        ("/api/v1/decisions?status=dead", 400, ["query", "status"]),
        ("/api/v1/decisions?subject=CBD-SUBJECT-NOPE", 400, ["query", "subject"]),
        ("/api/v1/decisions?gbf_target=GBF-TARGET-99", 400, ["query", "gbf_target"]),
        ("/api/v1/decisions?updated_since=2024-13-45", 400, ["query", "updated_since"]),
        ("/api/v1/decisions?sort=title", 400, ["query", "sort"]),
    ],
)
async def test_bad_input_is_a_clear_problem(client, url, status, loc):
    r = await client.get(url)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert any(e["loc"] == loc for e in r.json()["errors"]), r.json()


# --- writes --------------------------------------------------------------------------------------------------

NEW = {
    "code": "COP-16-1", "symbol": "CBD/COP/DEC/16/1", "body": "COP", "session": 16, "number": 1,
    "title": {"en": "Resource mobilization", "es": "Movilización de recursos"}, "adopted_on": "2024-11-01",
    "meeting": {"code": "COP-16", "place": "Cali", "start": "2024-10-21", "end": "2024-11-01"},
    "subjects": ["CBD-SUBJECT-FORESTS"], "gbf_targets": ["GBF-TARGET-19"], "url": "https://www.cbd.int/doc/decisions/",
    "paragraphs": [{"number": "1", "text": {"en": "Welcomes"}, "type": "preambular"},
                   {"number": "2", "text": {"en": "Decides"}, "actors": ["Parties"]}],
}  # fmt: skip


async def counts() -> dict[str, dict[str, int]]:
    """Rows per kind in audit_events, changes and search_outbox (minting test tokens is not counted)."""
    out: dict[str, dict[str, int]] = {}
    async with db.read_connection() as conn:
        for name, model in (("audit", AuditEvent), ("changes", Change), ("outbox", OutboxEntry)):
            t = model.__table__  # type: ignore[union-attr]
            rows = await conn.execute(select(t.c.kind, func.count()).where(t.c.kind != "token").group_by(t.c.kind))
            out[name] = dict(rows.all())
    return out


async def snapshot() -> tuple[Any, Any]:
    async with db.read_connection() as conn:
        return ((await conn.execute(select(D).order_by(D.c.code))).all(),
                (await conn.execute(select(DP).order_by(DP.c.decision_id, DP.c.position))).all())  # fmt: skip


async def test_secretariat_creates_updates_and_deletes(client):
    tok = bearer(await token_for(None, "decisions:write"))
    r = await client.post("/api/v1/decisions", json=NEW, headers=tok)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/api/v1/decisions/COP-16-1"
    got = await client.get("/api/v1/decisions/COP-16-1")
    assert got.json() == r.json() and got.headers["etag"] == r.headers["etag"]
    assert [p["text"]["en"] for p in got.json()["paragraphs"]] == ["Welcomes", "Decides"]
    assert got.json()["meeting"]["place"] == "Cali"

    etag = r.headers["etag"]
    patched = await client.patch("/api/v1/decisions/COP-16-1", headers={**tok, "If-Match": etag},
                                 json={"status": "superseded", "paragraphs": [{"text": {"fr": "Décide"}}]})  # fmt: skip
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == "superseded" and patched.json()["title"] == NEW["title"]
    assert [p["text"] for p in patched.json()["paragraphs"]] == [{"fr": "Décide"}]
    stale = await client.put("/api/v1/decisions/COP-16-1", json=NEW, headers={**tok, "If-Match": etag})
    assert stale.status_code == 412
    assert (await client.get("/api/v1/decisions/COP-16-1")).json() == patched.json()
    put = await client.put("/api/v1/decisions/COP-16-1", json={**NEW, "paragraphs": []},
                           headers={**tok, "If-Match": patched.headers["etag"]})  # fmt: skip
    assert put.status_code == 200 and put.json()["paragraphs"] == [] and put.json()["status"] == "active"
    assert (await client.delete("/api/v1/decisions/COP-16-1", headers=tok)).status_code == 204
    assert (await client.get("/api/v1/decisions/COP-16-1")).status_code == 404
    assert await snapshot() == ([], [])
    assert await counts() == {"audit": {"decision": 4}, "changes": {"decision": 4}, "outbox": {"decision": 4}}


async def test_duplicate_code_is_a_conflict(client):
    tok = bearer(await token_for(None, "admin"))
    assert (await client.post("/api/v1/decisions", json=NEW, headers=tok)).status_code == 201
    before = await snapshot()
    r = await client.post("/api/v1/decisions", json={**NEW, "title": {"en": "Other"}}, headers=tok)
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["loc"] == ["body", "code"]
    assert await snapshot() == before
    assert (await counts())["audit"] == {"decision": 1}


async def test_party_tokens_never_write_decisions(client):
    async with db.transaction() as s:
        await create_decision(s, session=15, number=4)
    before = await snapshot()
    # The tokens service never mints a Party token with decisions:write; grant it on the row anyway (as a
    # legacy or tampered row would) to prove the decisions service refuses Party principals on its own.
    party = bearer(await token_for("BR", "nodes:write"))
    async with db.transaction() as s:
        await s.execute(update(T).where(T.c.principal == "BR").values(scopes=["nodes:write", "decisions:write"]))
    assert "decisions:write" in (await client.get("/api/v1/auth/whoami", headers=party)).json()["scopes"]
    attempts = [
        client.post("/api/v1/decisions", json=NEW, headers=party),
        client.put("/api/v1/decisions/COP-15-4", json={**NEW, "code": "COP-15-4", "session": 15, "number": 4},
                   headers=party),
        client.patch("/api/v1/decisions/COP-15-4", json={"status": "retired"}, headers=party),
        client.delete("/api/v1/decisions/COP-15-4", headers=party),
    ]  # fmt: skip
    for attempt in attempts:
        r = await attempt
        assert r.status_code == 403, r.text
    assert (await client.post("/api/v1/decisions", json=NEW)).status_code == 401
    no_scope = bearer(await token_for(None, "tokens:write"))
    assert (await client.post("/api/v1/decisions", json=NEW, headers=no_scope)).status_code == 403
    assert await snapshot() == before
    assert await counts() == {"audit": {}, "changes": {}, "outbox": {}}


@pytest.mark.parametrize(
    ("change", "loc", "named"),
    [
        ({"subjects": ["CBD-SUBJECT-NOPE"]}, ["body", "subjects"], "CBD-SUBJECT-NOPE"),
        ({"gbf_targets": ["GBF-TARGET-01", "GBF-TARGET-24"]}, ["body", "gbf_targets"], "GBF-TARGET-24"),
        ({"aichi_targets": ["AICHI-TARGET-21"]}, ["body", "aichi_targets"], "AICHI-TARGET-21"),
        ({"code": "COP-16-2"}, ["body", "code"], "COP-16-1"),
        ({"code": "SBSTTA-1-1"}, ["body", "code"], None),
        ({"id": "x"}, ["body", "id"], None),
        ({"created_at": "2020-01-01T00:00:00Z"}, ["body", "created_at"], None),
        ({"paragraphs": [{"text": {"en": "x"}, "position": 3}]}, ["body", "paragraphs", 0, "position"], None),
        ({"title": {}}, ["body", "title"], None),
    ],
)
async def test_invalid_bodies_are_422_naming_the_field(client, change, loc, named):
    tok = bearer(await token_for(None, "admin"))
    r = await client.post("/api/v1/decisions", json={**NEW, **change}, headers=tok)
    assert r.status_code == 422, r.text
    err = next(e for e in r.json()["errors"] if e["loc"] == loc)
    if named:
        assert named in err["msg"]
    assert await snapshot() == ([], [])


async def test_updates_validate_terms_and_nulls(client):
    tok = bearer(await token_for(None, "admin"))
    async with db.transaction() as s:
        await create_decision(s, session=15, number=4)
    before = await snapshot()
    r = await client.patch("/api/v1/decisions/COP-15-4", json={"gbf_targets": ["GBF-TARGET-77"]}, headers=tok)
    assert r.status_code == 422 and "GBF-TARGET-77" in r.json()["detail"]
    r = await client.patch("/api/v1/decisions/COP-15-4", json={"title": None}, headers=tok)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "title"]
    r = await client.put("/api/v1/decisions/COP-15-4", json=NEW, headers=tok)  # body names COP-16-1
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "code"]
    assert (await client.patch("/api/v1/decisions/COP-1-1", json={}, headers=tok)).status_code == 404
    assert await snapshot() == before
    assert await counts() == {"audit": {}, "changes": {}, "outbox": {}}
