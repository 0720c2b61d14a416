"""The vocabulary hierarchy (GBF goals above targets, broader/narrower subjects, UN M49 regions) as the API shows
it, and broader terms in filters matching their narrower ones (REST, GraphQL, search)."""

from __future__ import annotations

import pytest

from app import db
from app.search import worker
from tests.factories import create_record, create_request
from tests.graphql import data, gql

pytestmark = pytest.mark.asyncio


async def terms(client, name: str) -> dict[str, dict]:
    r = await client.get(f"/api/v1/vocabularies/{name}")
    assert r.status_code == 200, r.text
    return {t["code"]: t for t in r.json()["terms"]}


async def test_goals_subjects_and_regions_show_broader_and_narrower(client):
    gbf = await terms(client, "gbf-targets")
    assert gbf["GBF-GOAL-A"]["narrower"] == [f"GBF-TARGET-{n:02d}" for n in range(1, 9)]
    assert gbf["GBF-TARGET-13"]["broader"] == ["GBF-GOAL-C"] and gbf["GBF-GOAL-C"]["broader"] == []
    assert sum(len(gbf[f"GBF-GOAL-{g}"]["narrower"]) for g in "ABCD") == 23
    subjects = await terms(client, "cbd-subjects")
    assert subjects["CBD-SUBJECT-DSI"]["broader"] == ["CBD-SUBJECT-ACCESS-BENEFIT-SHARING"]
    assert "CBD-SUBJECT-MARINE" in subjects["CBD-SUBJECT-THEMATIC-PROGRAMMES"]["narrower"]
    regions = await terms(client, "regions")
    assert regions["SIDS"]["extra"]["level"] == "grouping" and "FJ" in regions["SIDS"]["extra"]["countries"]
    assert "061" in regions["009"]["narrower"] and regions["061"]["title"]["en"] == "Polynesia"
    assert regions["202"]["broader"] == ["002"] and "KE" in regions["014"]["extra"]["countries"]
    assert len(regions["LDC"]["extra"]["countries"]) == 44
    every_country = set(regions["001"]["extra"]["countries"])
    assert {"BR", "FJ", "FR", "CK", "NU", "PS"} <= every_country
    q = '{ vocabulary(name: "gbf-targets") { terms { code broader narrower } } }'
    graph = {t["code"]: t for t in data(await gql(client, q))["vocabulary"]["terms"]}
    assert graph["GBF-GOAL-A"]["narrower"] == gbf["GBF-GOAL-A"]["narrower"]


async def test_a_goal_or_broader_subject_in_a_filter_includes_narrower_terms(client):
    async with db.transaction() as s:
        a = await create_record(s, gbf_targets=["GBF-TARGET-02"], subjects=["CBD-SUBJECT-DSI"])
        b = await create_record(s, gbf_targets=["GBF-TARGET-19"], subjects=["CBD-SUBJECT-FORESTS"])
        goal = await create_record(s, gbf_targets=["GBF-GOAL-A"])
        req = await create_request(s, gbf_targets=["GBF-TARGET-05"])
        await create_request(s, gbf_targets=["GBF-TARGET-20"])

    async def ids(url: str) -> set[str]:
        r = await client.get(url)
        assert r.status_code == 200, r.text
        return {i["id"] for i in r.json()["items"]}

    want = {str(a["id"]), str(goal["id"])}
    assert await ids("/api/v1/records?gbf_target=GBF-GOAL-A") == want
    assert await ids("/api/v1/records?gbf_target=GOAL-A") == want  # the short alias
    assert await ids("/api/v1/records?gbf_target=GBF-TARGET-02") == {str(a["id"])}  # narrower never widens
    assert await ids("/api/v1/records?subject=CBD-SUBJECT-ACCESS-BENEFIT-SHARING") == {str(a["id"])}
    assert await ids("/api/v1/records?subject=CBD-SUBJECT-THEMATIC-PROGRAMMES") == {str(b["id"])}
    assert await ids("/api/v1/cooperation-requests?gbf_target=GOAL-A") == {str(req["id"])}
    q = '{ records(filter: {gbfTarget: "GBF-GOAL-A"}) { nodes { id } } }'
    assert {n["id"] for n in data(await gql(client, q))["records"]["nodes"]} == want
    assert (await client.get("/api/v1/records?gbf_target=GOAL-Z")).status_code == 400


async def test_search_filters_expand_broader_terms(client, engine):
    from app.search import set_backend
    from app.search.postgres import PostgresBackend

    backend = PostgresBackend()
    set_backend(backend)
    try:
        from tests.search.util import publish_new

        a = await publish_new(title={"en": "Wetland atlas"}, gbf_targets=["GBF-TARGET-03"])
        await publish_new(title={"en": "Wetland finance"}, gbf_targets=["GBF-TARGET-19"])
        await worker.drain(backend)
        r = await client.get("/api/v1/search", params={"q": "wetland", "gbf_target": "GOAL-A"})
        assert r.status_code == 200, r.text
        assert [h["id"] for h in r.json()["hits"]] == [str(a)]
    finally:
        set_backend(None)


VOCABULARY_LISTS = [  # every write schema with lists drawn from a vocabulary
    ("app.models.cooperation", "RequestCreate"), ("app.models.cooperation", "RequestUpdate"),
    ("app.models.opportunity", "OpportunityCreate"), ("app.models.opportunity", "OpportunityUpdate"),
    ("app.models.record", "RecordCreate"), ("app.models.record", "RecordUpdate"),
    ("app.models.decision", "DecisionCreate"), ("app.models.decision", "DecisionUpdate"),
]  # fmt: skip


@pytest.mark.parametrize(("module", "name"), VOCABULARY_LISTS)
async def test_a_term_list_holds_its_whole_vocabulary_and_no_more(module, name):
    import importlib

    import annotated_types

    from app.reference import load_vocabularies
    from app.services.reference import FIELD_VOCABULARY

    schema = getattr(importlib.import_module(module), name)
    checked = 0
    for field, info in schema.model_fields.items():
        if field not in FIELD_VOCABULARY:
            continue
        caps = [m.max_length for m in info.metadata if isinstance(m, annotated_types.MaxLen)]
        assert caps == [len(load_vocabularies()[FIELD_VOCABULARY[field]])], (name, field, caps)
        checked += 1
    assert checked >= 3


async def test_every_gbf_goal_and_target_fit_in_one_request_opportunity_and_record(client):
    from tests.auth import bearer, token_for

    every = [t["code"] for t in (await client.get("/api/v1/vocabularies/gbf-targets")).json()["terms"]]
    assert len(every) == 27  # 4 goals and 23 targets
    headers = bearer(await token_for("FJ", "cooperation:write", "records:write"))
    for url, body in (
        ("/api/v1/cooperation-requests", {"title": {"en": "Everything at once"}}),
        ("/api/v1/opportunities", {"title": {"en": "Support for every target"}}),
        ("/api/v1/records", {"type": "project", "title": {"en": "A project on every target"}}),
    ):
        r = await client.post(url, json={**body, "gbf_targets": every}, headers=headers)
        assert r.status_code == 201, (url, r.text)
        assert r.json()["gbf_targets"] == every
    q = "mutation($i: RequestInput!) { createCooperationRequest(input: $i) { gbfTargets } }"
    got = data(await gql(client, q, {"i": {"title": {"en": "Through GraphQL"}, "gbfTargets": every}}, headers))
    assert got["createCooperationRequest"]["gbfTargets"] == every
