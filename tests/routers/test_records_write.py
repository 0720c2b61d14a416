"""Record writes through REST: the life cycle, ownership, server-owned fields, If-Match, bulk, audit."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select, text

from app import db
from app.models import AuditEvent, Change, Record, RecordRevision
from tests.auth import bearer, token_for

pytestmark = pytest.mark.asyncio

BODY = {
    "type": "resource",
    "title": {"en": "Mangrove restoration toolkit", "fr": "Boîte à outils pour la restauration des mangroves"},
    "summary": {"en": "Methods and case studies."},
    "languages": ["en", "fr"],
    "subjects": ["CBD-SUBJECT-MARINE"],
    "gbf_targets": ["GBF-TARGET-02"],
    "links": [{"url": "https://example.org/toolkit", "name": "Toolkit", "language": "en"}],
}


async def count(model) -> int:
    async with db.read_connection() as conn:
        return (await conn.execute(select(func.count()).select_from(model.__table__))).scalar_one()


async def snapshot() -> list:
    async with db.read_connection() as conn:
        rows = await conn.execute(text("SELECT id, status, revision, title, updated_at FROM records ORDER BY id"))
        drafts = await conn.execute(text("SELECT record_id, content, status FROM record_drafts ORDER BY record_id"))
        return [list(rows), list(drafts)]


@pytest.fixture
async def br(engine):
    return bearer(await token_for("BR", "records:write", "records:publish"))


@pytest.fixture
async def fr(engine):
    return bearer(await token_for("FR", "records:write", "records:publish"))


async def test_life_cycle_draft_submit_publish_edit_publish_withdraw(client, br):
    r = await client.post("/api/v1/records", json=BODY, headers=br)
    assert r.status_code == 201, r.text
    rec = r.json()
    rid = rec["id"]
    assert rec["status"] == "draft" and rec["party"] == "BR" and rec["revision"] == 0 and rec["uid"] is None
    assert (await client.get(f"/api/v1/records/{rid}")).status_code == 404  # anonymous: drafts are invisible
    assert (await client.get(f"/api/v1/records/{rid}", headers=br)).status_code == 200

    r = await client.post(f"/api/v1/records/{rid}/submit", headers=br)
    assert r.json()["status"] == "pending"
    r = await client.post(f"/api/v1/records/{rid}/publish", headers=br)
    pub = r.json()
    assert pub["status"] == "published" and pub["revision"] == 1
    assert pub["uid"].startswith("CHM-RES-BR-") and pub["uid"].endswith("-1")
    anon = await client.get(f"/api/v1/records/{rid}")
    assert anon.status_code == 200 and anon.json()["title"]["en"] == BODY["title"]["en"]

    # Editing a published record makes a working draft; the public keeps revision 1.
    r = await client.patch(
        f"/api/v1/records/{rid}", json={"title": {"en": "Mangrove toolkit, 2nd edition"}}, headers=br
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "draft" and r.json()["title"]["en"] == "Mangrove toolkit, 2nd edition"
    public = (await client.get(f"/api/v1/records/{rid}")).json()
    assert public["title"]["en"] == BODY["title"]["en"] and public["revision"] == 1
    assert "draft_status" not in public or public["draft_status"] is None
    owner = (await client.get(f"/api/v1/records/{rid}", headers=br)).json()
    assert owner["draft_status"] == "draft"
    draft = (await client.get(f"/api/v1/records/{rid}/draft", headers=br)).json()
    assert draft["title"]["en"] == "Mangrove toolkit, 2nd edition"
    assert (await client.get(f"/api/v1/records/{rid}/draft")).status_code == 404

    r = await client.post(f"/api/v1/records/{rid}/publish", headers=br)
    assert r.json()["revision"] == 2 and r.json()["uid"].endswith("-2")
    public = (await client.get(f"/api/v1/records/{rid}")).json()
    assert public["title"]["en"] == "Mangrove toolkit, 2nd edition"
    revs = (await client.get(f"/api/v1/records/{rid}/revisions")).json()["items"]
    assert [v["revision"] for v in revs] == [2, 1]
    assert revs[1]["content"]["title"]["en"] == BODY["title"]["en"]
    old = await client.get(f"/api/v1/records/by-uid/{revs[1]['uid']}")
    assert old.json()["title"]["en"] == BODY["title"]["en"]

    r = await client.post(f"/api/v1/records/{rid}/withdraw", headers=br)
    assert r.json()["status"] == "withdrawn"
    gone = await client.get(f"/api/v1/records/{rid}")
    assert gone.status_code == 410 and gone.json()["tombstone"]["uid"].endswith("-2")
    listing = (await client.get("/api/v1/records")).json()["items"]
    assert rid not in {i["id"] for i in listing}

    async with db.read_connection() as conn:
        changes = (await conn.execute(select(Change.op).order_by(Change.seq))).scalars().all()
        actions = (await conn.execute(select(AuditEvent.action).order_by(AuditEvent.id))).scalars().all()
    assert changes == ["create", "update", "publish", "update", "publish", "withdraw"]
    assert [a for a in actions if a.startswith("record.")] == [
        "record.create",
        "record.submit",
        "record.publish",
        "record.update",
        "record.publish",
        "record.withdraw",
    ]


async def test_publish_needs_the_publish_scope(client):
    writer = bearer(await token_for("BR", "records:write"))
    rid = (await client.post("/api/v1/records", json=BODY, headers=writer)).json()["id"]
    r = await client.post(f"/api/v1/records/{rid}/publish", headers=writer)
    assert r.status_code == 403 and "records:publish" in r.json()["detail"]
    r = await client.post(f"/api/v1/records/{rid}/withdraw", headers=writer)
    assert r.status_code == 403


async def test_anonymous_cannot_write(client):
    r = await client.post("/api/v1/records", json=BODY)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert await count(Record) == 0


async def test_party_a_cannot_touch_party_b_records_through_any_endpoint(client, br, fr):
    rid = (await client.post("/api/v1/records", json=BODY, headers=br)).json()["id"]
    await client.post(f"/api/v1/records/{rid}/publish", headers=br)
    before = await snapshot()
    audit_before = await count(AuditEvent)
    attempts = [
        client.patch(f"/api/v1/records/{rid}", json={"title": {"en": "hijacked"}}, headers=fr),
        client.put(f"/api/v1/records/{rid}", json=BODY, headers=fr),
        client.post(f"/api/v1/records/{rid}/submit", headers=fr),
        client.post(f"/api/v1/records/{rid}/publish", headers=fr),
        client.post(f"/api/v1/records/{rid}/withdraw", headers=fr),
        client.post("/api/v1/records", json={**BODY, "party": "BR"}, headers=fr),
    ]
    for attempt in attempts:
        r = await attempt
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json"
    assert await snapshot() == before
    assert await count(AuditEvent) == audit_before
    # and FR cannot see BR's working draft
    await client.patch(f"/api/v1/records/{rid}", json={"title": {"en": "BR draft"}}, headers=br)
    assert (await client.get(f"/api/v1/records/{rid}/draft", headers=fr)).status_code == 404
    assert (await client.get(f"/api/v1/records/{rid}", headers=fr)).json().get("draft_status") is None


@pytest.mark.parametrize(
    "extra",
    [
        {"id": str(uuid.uuid4())},
        {"uid": "CHM-RES-BR-000001-9"},
        {"status": "published"},
        {"revision": 7},
        {"created_at": "2020-01-01T00:00:00Z"},
        {"updated_at": "2020-01-01T00:00:00Z"},
        {"published_at": "2020-01-01T00:00:00Z"},
    ],
)
async def test_server_owned_fields_are_refused(client, br, extra):
    r = await client.post("/api/v1/records", json={**BODY, **extra}, headers=br)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["body", next(iter(extra))]
    assert await count(Record) == 0


@pytest.mark.parametrize(
    ("patch", "loc"),
    [
        ({"title": {"xx": "nope"}}, ["body", "title"]),
        ({"title": {}}, ["body", "title"]),
        ({"subjects": ["CBD-SUBJECT-NOPE"]}, ["body", "subjects"]),
        ({"gbf_targets": ["GBF-TARGET-24"]}, ["body", "gbf_targets"]),
        ({"type": "poem"}, ["body", "type"]),
        ({"links": [{"url": "not a url"}]}, ["body", "links", 0, "url"]),
        ({"publication_date": "31/12/2024"}, ["body", "publication_date"]),
    ],
)
async def test_invalid_bodies_name_the_field(client, br, patch, loc):
    r = await client.post("/api/v1/records", json={**BODY, **patch}, headers=br)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert any(e["loc"][: len(loc)] == loc for e in r.json()["errors"]), r.json()
    assert await count(Record) == 0


async def test_malformed_json_is_a_problem(client, br):
    r = await client.post("/api/v1/records", content=b"{not json", headers={**br, "content-type": "application/json"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


async def test_if_match(client, br):
    rid = (await client.post("/api/v1/records", json=BODY, headers=br)).json()["id"]
    etag = (await client.get(f"/api/v1/records/{rid}", headers=br)).headers["etag"]
    ok = await client.patch(f"/api/v1/records/{rid}", json={"keywords": ["a"]}, headers={**br, "If-Match": etag})
    assert ok.status_code == 200
    stale = await client.patch(f"/api/v1/records/{rid}", json={"keywords": ["b"]}, headers={**br, "If-Match": etag})
    assert stale.status_code == 412
    current = (await client.get(f"/api/v1/records/{rid}", headers=br)).json()
    assert current["keywords"] == ["a"]


async def test_external_id_is_unique_per_party(client, br, fr):
    assert (await client.post("/api/v1/records", json={**BODY, "external_id": "x1"}, headers=br)).status_code == 201
    dup = await client.post("/api/v1/records", json={**BODY, "external_id": "x1"}, headers=br)
    assert dup.status_code == 409
    assert (await client.post("/api/v1/records", json={**BODY, "external_id": "x1"}, headers=fr)).status_code == 201


async def test_secretariat_writes_for_any_party_but_must_name_it(client):
    sec = bearer(await token_for(None, "admin"))
    r = await client.post("/api/v1/records", json=BODY, headers=sec)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "party"]
    r = await client.post("/api/v1/records", json={**BODY, "party": "KE"}, headers=sec)
    assert r.status_code == 201 and r.json()["party"] == "KE"


async def test_drafts_visible_to_owner_and_secretariat_only(client, br, fr):
    rid = (await client.post("/api/v1/records", json=BODY, headers=br)).json()["id"]
    sec = bearer(await token_for(None, "admin"))
    for headers, visible in ((br, True), (sec, True), (fr, False), ({}, False)):
        listed = (await client.get("/api/v1/records", headers=headers)).json()["items"]
        assert (rid in {i["id"] for i in listed}) is visible
        assert ((await client.get(f"/api/v1/records/{rid}", headers=headers)).status_code == 200) is visible
    drafts = (await client.get("/api/v1/records?status=draft", headers=fr)).json()["items"]
    assert drafts == []


# --- bulk ---------------------------------------------------------------------------------------------


def item(n: int, **kw) -> dict:
    return {**BODY, "external_id": f"ext-{n}", "title": {"en": f"Bulk record {n}"}, **kw}


async def test_bulk_upsert_created_updated_unchanged_and_per_item_errors(client, br):
    items = [item(1), item(2), {**item(3), "subjects": ["CBD-SUBJECT-NOPE"]}, item(4, party="FR"), {"type": "news"}]
    r = await client.post("/api/v1/records/bulk?publish=true", json={"items": items}, headers=br)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["status"] for x in res] == ["created", "created", "error", "error", "error"]
    assert [x["external_id"] for x in res] == ["ext-1", "ext-2", "ext-3", "ext-4", None]
    assert "CBD-SUBJECT-NOPE" in res[2]["error"]["detail"]
    assert res[2]["error"]["errors"][0]["loc"] == ["items", 2, "subjects"]
    assert res[4]["error"]["errors"][0]["loc"][:2] == ["items", 4]
    assert res[3]["error"]["code"] == "FORBIDDEN"
    assert await count(Record) == 2 and await count(RecordRevision) == 2
    public = (await client.get("/api/v1/records")).json()["items"]
    assert {p["title"]["en"] for p in public} == {"Bulk record 1", "Bulk record 2"}

    again = [item(1), item(2, title={"en": "Bulk record 2, revised"}), item(5)]
    res = (await client.post("/api/v1/records/bulk?publish=true", json={"items": again}, headers=br)).json()["results"]
    assert [x["status"] for x in res] == ["unchanged", "updated", "created"]
    two = (await client.get(f"/api/v1/records/{res[1]['id']}")).json()
    assert two["revision"] == 2 and two["title"]["en"] == "Bulk record 2, revised"


async def test_bulk_string_bounds_and_text_rules_are_per_item_errors(client, br):
    """Length bounds (checked in pydantic-core) and the NUL/surrogate rule (a Python check after them) still name
    the item and the field; the good items land."""
    items = [
        item(1),
        item(2, keywords=["k" * 201]),  # Keyword: at most 200
        item(3, keywords=["bad\u0000word"]),  # NUL
        item(4, subjects=[""]),  # Term: at least 1
        item(5, title={"en": "t" * 100_001}),  # an lstring value: at most 100,000
        item(6, keywords=["k" * 200], subjects=["CBD-SUBJECT-MARINE"]),  # at the bound: fine
    ]
    r = await client.post("/api/v1/records/bulk?publish=true", json={"items": items}, headers=br)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["status"] for x in res] == ["created", "error", "error", "error", "error", "created"]
    locs = [x["error"]["errors"][0]["loc"] if x["error"] else None for x in res]
    assert locs[1:5] == [["items", 1, "keywords", 0], ["items", 2, "keywords", 0], ["items", 3, "subjects", 0],
                         ["items", 4, "title", "en"]]  # fmt: skip
    assert "200" in res[1]["error"]["detail"] and "NUL" in res[2]["error"]["detail"]
    assert await count(Record) == 2 and await count(RecordRevision) == 2


async def test_bulk_secretariat_same_external_id_in_two_parties(client, br):
    """The lock query matches (party, external_id) pairs: BR's ext-1 is updated, FR's ext-1 is a new record, and
    a Party token still cannot reach the other Party's record through bulk."""
    sec = bearer(await token_for(None, "admin"))
    first = (await client.post("/api/v1/records/bulk?publish=true", json={"items": [item(1)]}, headers=br)).json()
    br_id = first["results"][0]["id"]
    items = [item(1, party="BR", title={"en": "BR revised"}), item(1, party="FR"), item(2, party="FR")]
    res = (await client.post("/api/v1/records/bulk?publish=true", json={"items": items}, headers=sec)).json()["results"]
    assert [x["status"] for x in res] == ["updated", "created", "created"]
    assert res[0]["id"] == br_id and res[1]["id"] != br_id
    assert (await client.get(f"/api/v1/records/{br_id}")).json()["title"]["en"] == "BR revised"
    assert (await client.get(f"/api/v1/records/{res[1]['id']}")).json()["party"] == "FR"
    # BR's token: its own ext-1 is unchanged; FR's ext-2 is refused, whatever exists under that key
    again = [item(1, title={"en": "BR revised"}), item(2, party="FR", title={"en": "hijack"})]
    res = (await client.post("/api/v1/records/bulk?publish=true", json={"items": again}, headers=br)).json()["results"]
    assert [x["status"] for x in res] == ["unchanged", "error"] and res[1]["error"]["code"] == "FORBIDDEN"
    assert (await client.get(f"/api/v1/records/{br_id}")).json()["revision"] == 2
    fr_two = [x for x in (await client.get("/api/v1/records?party=FR")).json()["items"] if x["external_id"] == "ext-2"]
    assert fr_two[0]["title"]["en"] == "Bulk record 2"


async def test_bulk_without_publish_makes_drafts_and_needs_scope_for_publish(client):
    writer = bearer(await token_for("BR", "records:write"))
    r = await client.post("/api/v1/records/bulk", json={"items": [item(1)]}, headers=writer)
    assert r.json()["results"][0]["status"] == "created"
    assert (await client.get("/api/v1/records")).json()["items"] == []
    r = await client.post("/api/v1/records/bulk?publish=true", json={"items": [item(2)]}, headers=writer)
    assert r.status_code == 403
    assert await count(Record) == 1


async def test_bulk_of_1001_items_is_refused_whole(client, br):
    r = await client.post("/api/v1/records/bulk", json={"items": [item(n) for n in range(1001)]}, headers=br)
    assert r.status_code in (413, 422)
    assert r.headers["content-type"] == "application/problem+json"
    assert await count(Record) == 0


async def test_bulk_duplicate_external_ids_in_one_batch(client, br):
    res = (await client.post("/api/v1/records/bulk", json={"items": [item(1), item(1)]}, headers=br)).json()["results"]
    assert [x["status"] for x in res] == ["created", "error"]


async def test_bulk_changes_and_audit_hold_exactly_the_successful_writes(client, br):
    items = [item(1), item(2), {**item(3), "title": {"zz": "bad"}}]
    await client.post("/api/v1/records/bulk?publish=true", json={"items": items}, headers=br)
    async with db.read_connection() as conn:
        ops = (await conn.execute(select(Change.op, func.count()).group_by(Change.op))).all()
        audit = (await conn.execute(select(AuditEvent.action).where(AuditEvent.kind == "record"))).scalars().all()
    assert dict(ops) == {"create": 2, "publish": 2}
    assert sorted(audit) == ["record.create"] * 2 + ["record.publish"] * 2
