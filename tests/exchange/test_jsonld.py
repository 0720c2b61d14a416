"""JSON-LD on Accept: application/ld+json, expanded by pyld with a document loader that refuses the network."""

from __future__ import annotations

from typing import Any

import pytest
from pyld import jsonld

from app import db
from app.models.decision import DecisionCreate
from app.models.node import NodeCreate
from app.services import decisions, nodes
from tests.exchange.harvesting import ADMIN, content, create

pytestmark = pytest.mark.asyncio
SCHEMA = "https://schema.org/"
LD = {"Accept": "application/ld+json"}


def no_network(url: str, options: Any = None) -> Any:
    raise jsonld.JsonLdError(f"network access refused: {url}", "loading document failed")


def expand(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return jsonld.expand(doc, {"documentLoader": no_network})


def walk(node: Any) -> Any:
    """Every (key, value) in an expanded document."""
    if isinstance(node, list):
        for item in node:
            yield from walk(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)


def assert_schema_org(expanded: list[dict[str, Any]]) -> None:
    assert expanded, "nothing expanded"
    for key, value in walk(expanded):
        assert key.startswith("@") or key.startswith(SCHEMA), key
        if key == "@type":
            assert all(t.startswith(SCHEMA) for t in value), value


async def get_ld(client: Any, url: str) -> dict[str, Any]:
    resp = await client.get(url, headers=LD)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/ld+json", resp.text
    assert "Accept" in resp.headers["vary"]
    return resp.json()


async def test_each_entity_expands_offline_to_schema_org(client: Any) -> None:
    record = await create(**content(1, type="news", summary={"en": "Summary", "fr": "Résumé"}))
    async with db.transaction() as s:
        await decisions.create_decision(s, ADMIN, data=DecisionCreate.model_validate({
            "code": "COP-15-4", "symbol": "CBD/COP/DEC/15/4", "body": "COP", "session": 15, "number": 4,
            "title": {"en": "Kunming-Montreal Global Biodiversity Framework", "fr": "Cadre mondial"},
            "adopted_on": "2022-12-19", "gbf_targets": ["GBF-TARGET-02"],
            "meeting": {"code": "COP-15", "place": "Montreal", "start": "2022-12-07", "end": "2022-12-19"},
            "paragraphs": [{"number": "1", "type": "operative", "text": {"en": "Adopts the framework"}},
                           {"number": "2", "type": "operative", "text": {"en": "Urges Parties"}}]}))  # fmt: skip
        node = await nodes.create_node(s, ADMIN, data=NodeCreate.model_validate({
            "party": "BR", "name": {"en": "Brazil CHM"}, "url": "https://chm.example.br/",
            "focal_point": {"name": "A. Silva", "email": "chm@example.br"}}))  # fmt: skip

    rec = expand(await get_ld(client, f"/api/v1/records/{record['id']}"))
    assert_schema_org(rec)
    assert rec[0]["@type"] == [SCHEMA + "NewsArticle"]
    assert {"@value": "Résumé", "@language": "fr"} in rec[0][SCHEMA + "description"]

    dec = expand(await get_ld(client, "/api/v1/decisions/COP-15-4"))
    assert_schema_org(dec)
    assert dec[0]["@type"] == [SCHEMA + "Legislation"]
    parts = dec[0][SCHEMA + "hasPart"]
    assert len(parts) == 2 and all(p["@type"] == [SCHEMA + "Legislation"] for p in parts)

    web = expand(await get_ld(client, f"/api/v1/nodes/{node['id']}"))
    assert_schema_org(web)
    assert web[0]["@type"] == [SCHEMA + "WebSite"]
    assert web[0][SCHEMA + "publisher"][0]["@type"] == [SCHEMA + "GovernmentOrganization"]

    party = expand(await get_ld(client, "/api/v1/parties/BR"))
    assert_schema_org(party)
    assert party[0]["@type"] == [SCHEMA + "Country"]

    page = expand(await get_ld(client, "/api/v1/records?limit=5"))
    assert_schema_org(page)
    assert page[0]["@type"] == [SCHEMA + "ItemList"]


async def test_negotiation_defaults_to_json_and_hides_drafts(client: Any) -> None:
    record = await create(**content(1))
    draft = await create(publish=False, **content(2))
    url = f"/api/v1/records/{record['id']}"
    for accept in (
        None,
        "application/json",
        "*/*",
        "text/html,*/*;q=0.8",
        "application/ld+json;q=0.1, application/json",
    ):
        resp = await client.get(url, headers={"Accept": accept} if accept else {})
        assert resp.headers["content-type"] == "application/json", accept
    ld = await client.get(url, headers={"Accept": "application/json;q=0.5, application/ld+json"})
    assert ld.headers["content-type"] == "application/ld+json"
    assert ld.headers["etag"] != (await client.get(url)).headers["etag"]  # one ETag per representation
    assert (await client.get(f"/api/v1/records/{draft['id']}", headers=LD)).status_code == 404


async def test_openapi_documents_the_negotiation(client: Any) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/api/v1/records/{record_id}",
        "/api/v1/records",
        "/api/v1/decisions/{code}",
        "/api/v1/parties/{code}",
    ):
        content_types = paths[path]["get"]["responses"]["200"]["content"]
        assert {"application/json", "application/ld+json"} <= set(content_types), path
    assert "application/ld+json" not in paths["/api/v1/changes"]["get"]["responses"]["200"]["content"]
    assert {"/oai", "/api/v1/records.atom", "/api/v1/records.ndjson", "/api/v1/parties.ndjson"} <= set(paths)
