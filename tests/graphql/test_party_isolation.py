"""Party A against Party B on the GraphQL mutations REST already guards: refused (403), and nothing changes;
GraphQL `ifMatch` is REST's `If-Match` (412 when stale); the `recordDraft` query is the owner's."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app import db
from app.models import AuditEvent, Change, CooperationOffer, CooperationRequest, Decision, NationalNode
from tests.auth import bearer, token_for
from tests.factories import create_decision, create_node, create_request
from tests.graphql import data, error, gql

pytestmark = pytest.mark.asyncio

NODE_INPUT = {"name": {"en": "Taken over"}, "url": "https://evil.example.org/"}
REQUEST_INPUT = {"title": {"en": "Taken over"}}


async def _state() -> tuple:
    """Everything a refused write must leave as it was: the rows, the audit trail and the change log."""
    async with db.transaction() as s:
        counts = []
        for model in (AuditEvent, Change, NationalNode, CooperationRequest, CooperationOffer, Decision):
            counts.append(int((await s.execute(select(func.count()).select_from(model))).scalar_one()))
        rows = []
        for model in (NationalNode, CooperationRequest, CooperationOffer, Decision):
            table = model.__table__  # type: ignore[attr-defined]
            rows.append(sorted(str(tuple(r)) for r in (await s.execute(select(table))).all()))
        return tuple(counts), tuple(map(tuple, rows))


async def _refused(client, query: str, variables: dict, headers: dict, code: str = "FORBIDDEN") -> None:
    before = await _state()
    err = error(await gql(client, query, variables, headers))
    assert err["extensions"]["code"] == code, err
    assert await _state() == before


async def test_a_party_never_writes_another_partys_nodes_or_requests(client):
    async with db.transaction() as s:
        node = await create_node(s, party="BR")
        req = await create_request(s, party="BR")
    fr = bearer(await token_for("FR"))  # every scope a Party token may hold
    nid, rid = str(node["id"]), str(req["id"])

    replace_node = "mutation($id: UUID!, $i: NodeInput!) { replaceNode(id: $id, input: $i) { id } }"
    await _refused(client, replace_node, {"id": nid, "i": NODE_INPUT}, fr)
    await _refused(client, replace_node, {"id": nid, "i": {**NODE_INPUT, "party": "FR"}}, fr)
    create_node_q = "mutation($i: NodeInput!) { createNode(input: $i) { id } }"
    await _refused(client, create_node_q, {"i": {**NODE_INPUT, "party": "BR"}}, fr)

    create_req = "mutation($i: RequestInput!) { createCooperationRequest(input: $i) { id } }"
    await _refused(client, create_req, {"i": {**REQUEST_INPUT, "party": "BR"}}, fr)
    replace_req = "mutation($id: UUID!, $i: RequestInput!) { replaceCooperationRequest(id: $id, input: $i) { id } }"
    await _refused(client, replace_req, {"id": rid, "i": REQUEST_INPUT}, fr)
    delete_req = "mutation($id: UUID!) { deleteCooperationRequest(id: $id) }"
    await _refused(client, delete_req, {"id": rid}, fr)

    # The owner still can: the refusals above were about the Party, not the input.
    br = bearer(await token_for("BR"))
    assert data(await gql(client, replace_node, {"id": nid, "i": NODE_INPUT}, br))["replaceNode"] == {"id": nid}
    assert data(await gql(client, delete_req, {"id": rid}, br))["deleteCooperationRequest"] == rid


async def test_only_the_offering_party_edits_or_withdraws_its_offer(client):
    async with db.transaction() as s:
        req = await create_request(s, party="BR", offers=[{"provider_party": "FR"}])
    rid = str(req["id"])
    br, de = bearer(await token_for("BR")), bearer(await token_for("DE"))
    fr = bearer(await token_for("FR"))
    listed = data(await gql(client, f'{{ cooperationRequest(id: "{rid}") {{ offers {{ nodes {{ id }} }} }} }}'))
    oid = listed["cooperationRequest"]["offers"]["nodes"][0]["id"]
    update = ("mutation($r: UUID!, $id: UUID!) { updateOffer(requestId: $r, id: $id, "
              'input: {description: {en: "Taken over"}}) { id } }')  # fmt: skip
    withdraw = "mutation($r: UUID!, $id: UUID!) { withdrawOffer(requestId: $r, id: $id) }"
    for other in (br, de):  # the requester does not edit the provider's offer; a third Party even less
        await _refused(client, update, {"r": rid, "id": oid}, other)
        await _refused(client, withdraw, {"r": rid, "id": oid}, other)
    assert data(await gql(client, update, {"r": rid, "id": oid}, fr))["updateOffer"] == {"id": oid}
    assert data(await gql(client, withdraw, {"r": rid, "id": oid}, fr))["withdrawOffer"] == oid


async def test_a_party_never_writes_decisions(client):
    async with db.transaction() as s:
        await create_decision(s, session=15, number=4)
    party = bearer(await token_for("BR"))
    code = "COP-15-4"
    full = {"code": code, "symbol": "CBD/COP/DEC/15/4", "body": "COP", "session": 15, "number": 4,
            "title": {"en": "Taken over"}}  # fmt: skip
    update = 'mutation($c: String!) { updateDecision(code: $c, input: {title: {en: "Taken over"}}) { code } }'
    replace = "mutation($c: String!, $i: DecisionInput!) { replaceDecision(code: $c, input: $i) { code } }"
    delete = "mutation($c: String!) { deleteDecision(code: $c) }"
    await _refused(client, update, {"c": code}, party)
    await _refused(client, replace, {"c": code, "i": full}, party)
    await _refused(client, delete, {"c": code}, party)


async def test_if_match_is_the_rest_precondition(client):
    async with db.transaction() as s:
        node = await create_node(s, party="BR")
    br = bearer(await token_for("BR"))
    nid = str(node["id"])
    etag = (await client.get(f"/api/v1/nodes/{nid}")).headers["etag"]
    patch = "mutation($id: UUID!, $m: String) { updateNode(id: $id, input: {url: $u}, ifMatch: $m) { url } }"
    patch = patch.replace("$m: String)", "$m: String, $u: String)")
    stale = '"0000000000000000"'
    await _refused(client, patch, {"id": nid, "m": stale, "u": "https://a.example.org/"}, br, "PRECONDITION_FAILED")
    rest = await client.patch(f"/api/v1/nodes/{nid}", json={"url": "https://a.example.org/"},
                              headers={**br, "If-Match": stale})  # fmt: skip
    assert rest.status_code == 412
    got = data(await gql(client, patch, {"id": nid, "m": etag, "u": "https://a.example.org/"}, br))
    assert got["updateNode"] == {"url": "https://a.example.org/"}
    # The ETag it matched is stale now: the same ifMatch again is refused.
    await _refused(client, patch, {"id": nid, "m": etag, "u": "https://b.example.org/"}, br, "PRECONDITION_FAILED")


async def test_record_draft_is_the_owners(client):
    br = bearer(await token_for("BR", "records:write", "records:publish"))
    fr = bearer(await token_for("FR", "records:write"))
    rid = (await client.post("/api/v1/records", json={"type": "news", "title": {"en": "v1"}}, headers=br)).json()["id"]
    assert (await client.post(f"/api/v1/records/{rid}/publish", headers=br)).status_code == 200
    assert (await client.patch(f"/api/v1/records/{rid}", json={"title": {"en": "v2"}}, headers=br)).status_code == 200
    q = f'{{ recordDraft(id: "{rid}") {{ id status titleI18n draftStatus }} }}'
    mine = data(await gql(client, q, headers=br))["recordDraft"]
    assert mine == {"id": rid, "status": "DRAFT", "titleI18n": {"en": "v2"}, "draftStatus": "DRAFT"}
    assert mine["titleI18n"] == (await client.get(f"/api/v1/records/{rid}/draft", headers=br)).json()["title"]
    for headers in (fr, {}):  # another Party and anonymous readers see the published revision only
        assert error(await gql(client, q, headers=headers))["extensions"]["code"] == "NOT_FOUND"
        public = f'{{ record(id: "{rid}") {{ titleI18n }} }}'
        assert data(await gql(client, public, headers=headers))["record"] == {"titleI18n": {"en": "v1"}}
