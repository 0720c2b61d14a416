"""REST and GraphQL /opportunities: ownership, validation, ETags, filters, audit, change log and search outbox."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from app import db
from app.models import AuditEvent, Change, Opportunity, OutboxEntry
from tests.auth import bearer, token_for
from tests.graphql import data, error, gql

pytestmark = pytest.mark.asyncio
URL = "/api/v1/opportunities"
NEW = {
    "title": {"en": "Mangrove restoration fellowships", "fr": "Bourses pour la restauration des mangroves"},
    "description": {"en": "Six-month fellowships on mangrove restoration for coastal managers."},
    "assistance_types": ["capacity-building", "training"],
    "subjects": ["CBD-SUBJECT-MARINE"],
    "gbf_targets": ["GBF-TARGET-02"],
    "eligible_countries": ["fj", "WS"],
    "application_deadline": "2030-06-30",
    "url": "https://example.org/fellowships",
    "contact": {"name": "Programme office", "email": "office@example.org"},
}


async def counts() -> dict[str, dict[str, int]]:
    out = {}
    async with db.read_connection() as conn:
        for name, model in (("audit", AuditEvent), ("changes", Change), ("outbox", OutboxEntry)):
            t = model.__table__
            rows = await conn.execute(select(t.c.kind, func.count()).where(t.c.kind != "token").group_by(t.c.kind))
            out[name] = dict(rows.all())
    return out


async def rows() -> list:
    async with db.read_connection() as conn:
        t = Opportunity.__table__  # type: ignore[attr-defined]
        return (await conn.execute(select(t).order_by(t.c.id))).all()


async def test_life_cycle_with_etags_and_events(client):
    de = bearer(await token_for("DE", "cooperation:write"))
    r = await client.post(URL, json=NEW, headers=de)
    assert r.status_code == 201, r.text
    opp = r.json()
    assert opp["provider_party"] == "DE" and opp["status"] == "open" and opp["eligible_countries"] == ["FJ", "WS"]
    assert "match_tsv" not in opp
    url = r.headers["location"]
    got = await client.get(url)
    assert got.json() == opp and got.headers["etag"] == r.headers["etag"]
    assert (await client.get(url, headers={"If-None-Match": got.headers["etag"]})).status_code == 304
    closed = await client.patch(url, json={"status": "closed", "description": None},
                                headers={**de, "If-Match": r.headers["etag"]})  # fmt: skip
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["description"] is None
    assert (await client.put(url, json=NEW, headers={**de, "If-Match": r.headers["etag"]})).status_code == 412
    put = await client.put(url, json=NEW, headers={**de, "If-Match": closed.headers["etag"]})
    assert put.status_code == 200 and put.json()["status"] == "open"
    assert (await client.delete(url, headers=de)).status_code == 204
    assert (await client.get(url)).status_code == 404
    kinds = {"opportunity": 4}
    assert await counts() == {"audit": kinds, "changes": kinds, "outbox": kinds}
    feed = (await client.get("/api/v1/changes?kind=opportunity")).json()["items"]
    assert [c["op"] for c in feed] == ["create", "update", "update", "delete"]
    assert {c["party"] for c in feed} == {"DE"}


async def test_secretariat_publishes_for_an_organization(client):
    sec = bearer(await token_for(None, "cooperation:write"))
    r = await client.post(URL, json=NEW, headers=sec)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "provider_organization"]
    r = await client.post(URL, json={**NEW, "provider_organization": "Ocean Fund"}, headers=sec)
    assert r.status_code == 201 and r.json()["provider_party"] is None
    de = bearer(await token_for("DE", "cooperation:write"))
    url = r.headers["location"]
    assert (await client.patch(url, json={"status": "closed"}, headers=de)).status_code == 403
    assert (await client.patch(url, json={"provider_organization": None}, headers=sec)).status_code == 422
    r2 = await client.post(URL, json={**NEW, "provider_party": "FR"}, headers=sec)
    assert r2.status_code == 201 and r2.json()["provider_party"] == "FR"


@pytest.mark.parametrize(
    ("change", "status", "loc"),
    [
        ({"provider_party": "FR"}, 403, None),
        ({"id": str(uuid.uuid4())}, 422, ["body", "id"]),
        ({"subjects": ["CBD-SUBJECT-NOPE"]}, 422, ["body", "subjects"]),
        ({"gbf_targets": ["GBF-TARGET-30"]}, 422, ["body", "gbf_targets"]),
        ({"assistance_types": ["moral-support"]}, 422, ["body", "assistance_types"]),
        ({"eligible_countries": ["ZZ"]}, 422, ["body", "eligible_countries"]),
        ({"eligible_regions": ["ATLANTIS"]}, 422, ["body", "eligible_regions"]),
        ({"status": "draft"}, 422, ["body", "status"]),
        ({"title": {"xx": "Bad"}}, 422, ["body", "title"]),
        ({"url": "not a url"}, 422, ["body", "url"]),
        ({"title": {"en": "nul \u0000 byte"}}, 422, ["body", "title"]),
        ({"provider_organization": "nul \u0000"}, 422, ["body", "provider_organization"]),
        ({"application_deadline": "99999-01-01"}, 422, ["body", "application_deadline"]),
    ],
)
async def test_create_refuses_bad_and_foreign_bodies(client, change, status, loc):
    de = bearer(await token_for("DE", "cooperation:write"))
    r = await client.post(URL, json={**NEW, **change}, headers=de)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    if loc:
        assert any(e["loc"][: len(loc)] == loc for e in r.json()["errors"]), r.json()
    assert await rows() == []
    assert await counts() == {"audit": {}, "changes": {}, "outbox": {}}


async def test_other_parties_and_anonymous_cannot_write(client):
    de = bearer(await token_for("DE", "cooperation:write"))
    url = (await client.post(URL, json=NEW, headers=de)).headers["location"]
    before = await rows()
    fr = bearer(await token_for("FR", "cooperation:write"))
    no_scope = bearer(await token_for("DE", "records:write"))
    for attempt, status in [
        (client.patch(url, json={"status": "closed"}, headers=fr), 403),
        (client.put(url, json=NEW, headers=fr), 403),
        (client.put(url, json={**NEW, "provider_party": "FR"}, headers=de), 403),
        (client.delete(url, headers=fr), 403),
        (client.patch(url, json={"status": "closed"}, headers=no_scope), 403),
        (client.patch(url, json={"status": "closed"}), 401),
        (client.post(URL, json=NEW), 401),
    ]:
        r = await attempt
        assert r.status_code == status, r.text
    assert await rows() == before


async def test_list_filters_and_paging(client):
    de = bearer(await token_for("DE", "cooperation:write"))
    fr = bearer(await token_for("FR", "cooperation:write"))
    made = []
    for i, (headers, targets) in enumerate([(de, ["GBF-TARGET-02"]), (de, ["GBF-TARGET-19"]), (fr, ["GBF-TARGET-03"]),
                                            (fr, [])]):  # fmt: skip
        body = {**NEW, "gbf_targets": targets, "status": "closed" if i == 3 else "open"}
        made.append((await client.post(URL, json=body, headers=headers)).json())
    seen, url = [], f"{URL}?limit=3"
    while url:
        page = await client.get(url)
        seen += page.json()["items"]
        url = page.json()["next_cursor"] and f"{URL}?limit=3&cursor={page.json()['next_cursor']}"
    assert [o["id"] for o in seen] == [o["id"] for o in made[::-1]]

    async def ids(query: str) -> set[str]:
        r = await client.get(f"{URL}?{query}")
        assert r.status_code == 200, r.text
        return {o["id"] for o in r.json()["items"]}

    assert await ids("party=fr") == {made[2]["id"], made[3]["id"]}
    assert await ids("status=closed") == {made[3]["id"]}
    assert await ids("gbf_target=GBF-TARGET-19") == {made[1]["id"]}
    assert (await client.get(f"{URL}?status=expired")).status_code == 400
    assert (await client.get(f"{URL}?gbf_target=GBF-TARGET-99")).status_code == 400


async def test_graphql_mirrors_rest(client):
    de = bearer(await token_for("DE", "cooperation:write"))
    fields = ("id providerPartyCode providerParty { code } titleI18n titleText: title(lang: FR) eligibleCountries "
              "eligibleRegions applicationDeadline status")  # fmt: skip
    inp = {"title": NEW["title"], "gbfTargets": ["GBF-TARGET-02"], "eligibleCountries": ["FJ"],
           "applicationDeadline": "2030-01-31"}  # fmt: skip
    create = f"mutation($i: OpportunityInput!) {{ createOpportunity(input: $i) {{ {fields} }} }}"
    created = data(await gql(client, create, {"i": inp}, de))["createOpportunity"]
    assert created["providerParty"] == {"code": "DE"} and created["titleText"].startswith("Bourses")
    rest = (await client.get(f"{URL}/{created['id']}")).json()
    assert rest["application_deadline"] == "2030-01-31" and rest["eligible_countries"] == ["FJ"]
    fr = bearer(await token_for("FR", "cooperation:write"))
    err = error(await gql(client, "mutation($id: UUID!) { updateOpportunity(id: $id, input: {status: CLOSED}) "
                                  "{ id } }", {"id": created["id"]}, fr))  # fmt: skip
    assert err["extensions"]["code"] == "FORBIDDEN"
    err = error(await gql(client, "mutation($i: OpportunityInput!) { createOpportunity(input: $i) { id } }",
                          {"i": {**inp, "gbfTargets": ["GBF-TARGET-99"]}}, de))  # fmt: skip
    assert "GBF-TARGET-99" in err["message"]
    listed = data(await gql(client, "{ opportunities(filter: {party: \"DE\"}) { nodes { id } } "
                                    "party(code: \"DE\") { opportunities { nodes { id } } } }"))  # fmt: skip
    assert listed["opportunities"]["nodes"] == [{"id": created["id"]}] == listed["party"]["opportunities"]["nodes"]
    gone = data(await gql(client, "mutation($id: UUID!) { deleteOpportunity(id: $id) }", {"id": created["id"]}, de))
    assert gone["deleteOpportunity"] == created["id"]


async def test_graphql_types_mirror_the_pydantic_schemas():
    """Every OpportunityPublic field is on the GraphQL type, every OpportunityCreate field on the input."""
    from app.graphql.schema import build_schema
    from app.models.opportunity import OpportunityCreate, OpportunityPublic, OpportunityUpdate

    renames = {"provider_party": "providerPartyCode", "title": "titleI18n", "description": "descriptionI18n"}

    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(p.title() for p in rest)

    schema = build_schema(introspection=True)._schema
    for model, type_name, rename in ((OpportunityPublic, "Opportunity", renames),
                                     (OpportunityCreate, "OpportunityInput", {}),
                                     (OpportunityUpdate, "OpportunityPatch", {})):  # fmt: skip
        fields = set(schema.type_map[type_name].fields)  # type: ignore[attr-defined]
        want = {rename.get(f, camel(f)) for f in model.model_fields}
        assert want <= fields, (type_name, want - fields)
