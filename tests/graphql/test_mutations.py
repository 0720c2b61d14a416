"""GraphQL mutations can do exactly what the REST writes can: same scopes, same ownership, same validation,
one transaction each, the same audit and change-log rows."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from app import db
from app.graphql.errors import graphql_path
from app.models import AuditEvent, Change, Decision, NationalNode, Record
from tests.auth import bearer, token_for
from tests.factories import create_node, create_request
from tests.graphql import RECORD, data, error, gql, same

pytestmark = pytest.mark.asyncio

BODY = {
    "type": "resource",
    "title": {"en": "Mangrove restoration toolkit", "fr": "Boîte à outils pour la restauration des mangroves"},
    "summary": {"en": "Methods and case studies."},
    "languages": ["en", "fr"],
    "subjects": ["CBD-SUBJECT-MARINE"],
    "gbfTargets": ["GBF-TARGET-02"],
    "links": [{"url": "https://example.org/toolkit", "name": "Toolkit", "language": "en"}],
}
CREATE = f"mutation($input: RecordInput!) {{ createRecord(input: $input) {{ {RECORD} }} }}"
UPDATE = f"mutation($id: UUID!, $input: RecordPatch!) {{ updateRecord(id: $id, input: $input) {{ {RECORD} }} }}"
REPLACE = f"mutation($id: UUID!, $input: RecordInput!) {{ replaceRecord(id: $id, input: $input) {{ {RECORD} }} }}"
STEP = "mutation($id: UUID!) {{ {op}(id: $id) {{ id status revision uid }} }}"
BULK = ("mutation($items: [RecordInput!]!, $publish: Boolean!) { bulkUpsertRecords(items: $items, publish: $publish)"
        " { externalId id status error } }")  # fmt: skip


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


async def create(client, headers, **extra) -> dict:
    return data(await gql(client, CREATE, {"input": {**BODY, **extra}}, headers))["createRecord"]


async def step(client, op: str, rid: str, headers) -> dict:
    return await gql(client, STEP.format(op=op), {"id": rid}, headers)


async def test_life_cycle_matches_rest_and_leaves_the_same_trail(client, br):
    rec = await create(client, br)
    assert rec["status"] == "DRAFT" and rec["partyCode"] == "BR" and rec["uid"] is None
    same(rec, (await client.get(f"/api/v1/records/{rec['id']}", headers=br)).json())
    assert data(await step(client, "submitRecord", rec["id"], br))["submitRecord"]["status"] == "PENDING"
    pub = data(await step(client, "publishRecord", rec["id"], br))["publishRecord"]
    assert pub["status"] == "PUBLISHED" and pub["revision"] == 1 and pub["uid"].endswith("-1")
    edited = data(await gql(client, UPDATE, {"id": rec["id"], "input": {"title": {"en": "Second edition"}}}, br))
    assert edited["updateRecord"]["status"] == "DRAFT" and edited["updateRecord"]["titleI18n"] == {
        "en": "Second edition"
    }
    public = (await client.get(f"/api/v1/records/{rec['id']}")).json()
    assert public["title"]["en"] == BODY["title"]["en"]  # the public keeps revision 1 until the draft is published
    replaced = data(await gql(client, REPLACE, {"id": rec["id"], "input": {**BODY, "keywords": ["x"]}}, br))
    assert replaced["replaceRecord"]["keywords"] == ["x"]
    assert data(await step(client, "publishRecord", rec["id"], br))["publishRecord"]["revision"] == 2
    assert data(await step(client, "withdrawRecord", rec["id"], br))["withdrawRecord"]["status"] == "WITHDRAWN"
    async with db.read_connection() as conn:
        changes = (await conn.execute(select(Change.op).order_by(Change.seq))).scalars().all()
        actions = (await conn.execute(select(AuditEvent.action).where(AuditEvent.kind == "record")
                                      .order_by(AuditEvent.id))).scalars().all()  # fmt: skip
    assert changes == ["create", "update", "publish", "update", "update", "publish", "withdraw"]
    assert actions == ["record.create", "record.submit", "record.publish", "record.update", "record.update",
                       "record.publish", "record.withdraw"]  # fmt: skip


async def test_party_a_cannot_touch_party_b_records(client, br, fr):
    rid = (await create(client, br))["id"]
    data(await step(client, "publishRecord", rid, br))
    before, audit_before = await snapshot(), await count(AuditEvent)
    attempts = [
        (UPDATE, {"id": rid, "input": {"title": {"en": "hijacked"}}}),
        (REPLACE, {"id": rid, "input": BODY}),
        (STEP.format(op="submitRecord"), {"id": rid}),
        (STEP.format(op="publishRecord"), {"id": rid}),
        (STEP.format(op="withdrawRecord"), {"id": rid}),
        (CREATE, {"input": {**BODY, "party": "BR"}}),
    ]
    for query, variables in attempts:
        body = await gql(client, query, variables, fr)
        assert error(body)["extensions"]["code"] == "FORBIDDEN", (query, body)
        assert body["data"] is None
    assert await snapshot() == before
    assert await count(AuditEvent) == audit_before


async def test_anonymous_cannot_write_and_a_bad_token_is_refused(client):
    assert error(await gql(client, CREATE, {"input": BODY}))["extensions"]["code"] == "UNAUTHENTICATED"
    r = await client.post("/graphql", json={"query": CREATE, "variables": {"input": BODY}},
                          headers={"Authorization": "Bearer not-a-token"})  # fmt: skip
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert await count(Record) == 0


async def test_publish_needs_the_publish_scope(client):
    writer = bearer(await token_for("BR", "records:write"))
    rid = (await create(client, writer))["id"]
    for op in ("publishRecord", "withdrawRecord"):
        err = error(await step(client, op, rid, writer))
        assert err["extensions"]["code"] == "FORBIDDEN" and "records:publish" in err["message"]
    body = await gql(client, BULK, {"items": [{**BODY, "externalId": "x"}], "publish": True}, writer)
    assert error(body)["extensions"]["code"] == "FORBIDDEN"
    assert await count(Record) == 1


@pytest.mark.parametrize("field", ["id", "uid", "status", "revision", "createdAt", "updatedAt", "publishedAt"])
async def test_server_owned_fields_are_refused(client, br, field):
    err = error(await gql(client, CREATE, {"input": {**BODY, field: "2020-01-01T00:00:00Z"}}, br))
    assert err["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" and field in err["message"]
    assert await count(Record) == 0


@pytest.mark.parametrize(
    ("patch", "loc"),
    [
        ({"title": {"xx": "nope"}}, ["input", "title"]),
        ({"title": {}}, ["input", "title"]),
        ({"subjects": ["CBD-SUBJECT-NOPE"]}, ["input", "subjects"]),
        ({"gbfTargets": ["GBF-TARGET-24"]}, ["input", "gbf_targets"]),
        ({"type": "poem"}, ["input", "type"]),
        ({"links": [{"url": "not a url"}]}, ["input", "links", 0, "url"]),
        ({"publicationDate": "31/12/2024"}, ["input", "publication_date"]),
    ],
)
async def test_invalid_inputs_are_the_rest_errors(client, br, patch, loc):
    rest_body = {**{k: v for k, v in BODY.items() if k != "gbfTargets"}, "gbf_targets": BODY["gbfTargets"]}
    rest_patch = {("gbf_targets" if k == "gbfTargets" else "publication_date" if k == "publicationDate" else k): v
                  for k, v in patch.items()}  # fmt: skip
    rest = (await client.post("/api/v1/records", json={**rest_body, **rest_patch}, headers=br)).json()
    err = error(await gql(client, CREATE, {"input": {**BODY, **patch}}, br))
    assert err["extensions"]["code"] == "INVALID"
    assert any(e["loc"][: len(loc)] == loc for e in err["extensions"]["errors"]), err
    # The REST errors, located the GraphQL way: `body` is the `input` argument, with a GraphQL path.
    relocated = [{**e, "loc": ["input", *e["loc"][1:]], "path": graphql_path(["input", *e["loc"][1:]])}
                 for e in rest["errors"]]  # fmt: skip
    assert err["extensions"]["errors"] == relocated
    assert "body." not in err["message"]  # a detail naming fields names them as GraphQL does
    assert await count(Record) == 0


async def test_bulk_upsert_lands_the_valid_items(client, br):
    def item(n: int, **kw) -> dict:
        return {**BODY, "externalId": f"ext-{n}", "title": {"en": f"Bulk record {n}"}, **kw}

    items = [item(1), {**item(2), "subjects": ["CBD-SUBJECT-NOPE"]}, item(3, party="FR"), item(4)]
    res = data(await gql(client, BULK, {"items": items, "publish": True}, br))["bulkUpsertRecords"]
    assert [r["status"] for r in res] == ["created", "error", "error", "created"]
    assert [r["externalId"] for r in res] == ["ext-1", "ext-2", "ext-3", "ext-4"]
    assert "CBD-SUBJECT-NOPE" in res[1]["error"]["detail"] and res[2]["error"]["code"] == "FORBIDDEN"
    public = {r["title"]["en"] for r in (await client.get("/api/v1/records")).json()["items"]}
    assert public == {"Bulk record 1", "Bulk record 4"}
    again = data(await gql(client, BULK, {"items": [item(1), item(4, keywords=["new"])], "publish": True}, br))
    assert [r["status"] for r in again["bulkUpsertRecords"]] == ["unchanged", "updated"]


async def test_bulk_of_1001_items_is_refused_whole(client, br):
    items = [{"type": "news", "title": {"en": "x"}, "externalId": f"e{n}"} for n in range(1001)]
    err = error(await gql(client, BULK, {"items": items, "publish": False}, br))
    assert err["extensions"]["code"] == "TOO_LARGE"
    assert await count(Record) == 0


async def test_node_writes_obey_ownership(client):
    br = bearer(await token_for("BR", "nodes:write"))
    fr = bearer(await token_for("FR", "nodes:write"))
    q = "mutation($input: NodeInput!) { createNode(input: $input) { id partyCode nameI18n url } }"
    node = data(await gql(client, q, {"input": {"name": {"en": "Bioland BR"}, "url": "https://chm.br/"}}, br))
    nid = node["createNode"]["id"]
    assert node["createNode"]["partyCode"] == "BR" and node["createNode"]["url"] == "https://chm.br/"
    patch = "mutation($id: UUID!, $input: NodePatch!) { updateNode(id: $id, input: $input) { nameI18n } }"
    assert (
        error(await gql(client, patch, {"id": nid, "input": {"name": {"en": "x"}}}, fr))["extensions"]["code"]
        == "FORBIDDEN"
    )
    delete = "mutation($id: UUID!) { deleteNode(id: $id) }"
    assert error(await gql(client, delete, {"id": nid}, fr))["extensions"]["code"] == "FORBIDDEN"
    bad = error(await gql(client, patch, {"id": nid, "input": {"url": "nope"}}, br))
    assert bad["extensions"]["code"] == "INVALID" and bad["extensions"]["errors"][0]["loc"] == ["input", "url"]
    assert data(await gql(client, patch, {"id": nid, "input": {"name": {"fr": "Bioland"}}}, br))["updateNode"] == {
        "nameI18n": {"fr": "Bioland"}
    }
    assert data(await gql(client, delete, {"id": nid}, br))["deleteNode"] == nid
    assert await count(NationalNode) == 0


async def test_decision_writes_are_the_secretariats(client):
    q = "mutation($input: DecisionInput!) { createDecision(input: $input) { code paragraphs { textI18n } } }"
    body = {"code": "COP-15-4", "symbol": "CBD/COP/DEC/15/4", "body": "COP", "session": 15, "number": 4,
            "title": {"en": "Kunming-Montreal GBF"}, "paragraphs": [{"text": {"en": "Adopts"}}]}  # fmt: skip
    party = bearer(await token_for("BR"))  # every scope a Party token may hold
    assert error(await gql(client, q, {"input": body}, party))["extensions"]["code"] == "FORBIDDEN"
    assert await count(Decision) == 0
    sec = bearer(await token_for(None, "admin"))
    made = data(await gql(client, q, {"input": body}, sec))["createDecision"]
    assert made == {"code": "COP-15-4", "paragraphs": [{"textI18n": {"en": "Adopts"}}]}
    assert error(await gql(client, q, {"input": body}, sec))["extensions"]["code"] == "CONFLICT"
    bad = error(await gql(client, q, {"input": {**body, "code": "COP-15-5"}}, sec))
    assert bad["extensions"]["code"] == "INVALID" and bad["extensions"]["errors"][0]["loc"] == ["input", "code"]


async def test_cooperation_offers_follow_the_rules(client):
    async with db.transaction() as s:
        req = await create_request(s, party="BR")
        await create_node(s)  # unrelated data stays untouched
    br = bearer(await token_for("BR", "cooperation:write"))
    fr = bearer(await token_for("FR", "cooperation:write"))
    offer = ("mutation($rid: UUID!, $input: OfferInput!) { createOffer(requestId: $rid, input: $input)"
             " { id status providerParty { code } } }")  # fmt: skip
    rid = str(req["id"])
    own = error(await gql(client, offer, {"rid": rid, "input": {"description": {"en": "Help"}}}, br))
    assert own["extensions"]["code"] == "FORBIDDEN"
    made = data(await gql(client, offer, {"rid": rid, "input": {"description": {"en": "Help"}}}, fr))["createOffer"]
    assert made["status"] == "PROPOSED" and made["providerParty"] == {"code": "FR"}
    decide = ("mutation($rid: UUID!, $id: UUID!) { decideOffer(requestId: $rid, id: $id, status: ACCEPTED)"
              " { status } }")  # fmt: skip
    assert error(await gql(client, decide, {"rid": rid, "id": made["id"]}, fr))["extensions"]["code"] == "FORBIDDEN"
    assert data(await gql(client, decide, {"rid": rid, "id": made["id"]}, br))["decideOffer"] == {"status": "ACCEPTED"}
    got = data(await gql(client, f'{{ cooperationRequest(id: "{rid}") {{ status offers {{ nodes {{ status }} }} }} }}'))
    assert got["cooperationRequest"] == {"status": "MATCHED", "offers": {"nodes": [{"status": "ACCEPTED"}]}}
    patch = ("mutation($id: UUID!, $input: RequestPatch!) { updateCooperationRequest(id: $id, input: $input)"
             " { titleI18n } }")  # fmt: skip
    assert (
        error(await gql(client, patch, {"id": rid, "input": {"title": {"en": "x"}}}, fr))["extensions"]["code"]
        == "FORBIDDEN"
    )


async def test_bulk_batch_with_malformed_items_gives_the_same_results_through_both_doors(client, br):
    """A missing title or type is one item's error in GraphQL too, located exactly as REST locates it."""

    def item(n: int, **kw) -> dict:
        return {**BODY, "externalId": f"both-{n}", "title": {"en": f"Both doors {n}"}, **kw}

    gql_items = [item(1), {k: v for k, v in item(2).items() if k != "title"}, item(3, type="no-such-type"), item(4)]
    rest_items = [
        {("gbf_targets" if k == "gbfTargets" else "external_id" if k == "externalId" else k): v for k, v in i.items()}
        for i in gql_items
    ]
    rest = (await client.post("/api/v1/records/bulk", json={"items": rest_items}, headers=br)).json()["results"]
    async with db.transaction() as s:  # start again from nothing, then send the same batch through GraphQL
        await s.execute(text("DELETE FROM records"))
    res = data(await gql(client, BULK, {"items": gql_items, "publish": False}, br))["bulkUpsertRecords"]
    assert [r["status"] for r in res] == [r["status"] for r in rest] == ["created", "error", "error", "created"]
    assert [r["externalId"] for r in res] == [r["external_id"] for r in rest]
    for g, r in zip(res, rest, strict=True):
        if r["error"] is None:
            assert g["error"] is None
            continue
        assert g["error"]["code"] == r["error"]["code"] and g["error"]["detail"] == r["error"]["detail"]
        assert [e["loc"] for e in g["error"]["errors"]] == [e["loc"] for e in r["error"]["errors"]]
    assert res[1]["error"]["errors"][0]["path"] == "items[1].title"
    assert res[2]["error"]["errors"][0]["path"] == "items[2].type"
    assert await count(Record) == 2
