"""NDJSON dumps: the public set, filters, gzip, and a continuation from the high-water mark that misses nothing."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest

from app import db, registry
from app.models.decision import DecisionCreate
from app.models.node import NodeCreate
from app.services import decisions, nodes
from tests.exchange.harvesting import ADMIN, content, create, edit, withdraw

pytestmark = pytest.mark.asyncio


def parse(body: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in body.splitlines() if line]


async def public_ids(client: Any) -> set[str]:
    out: set[str] = set()
    url: str | None = "/api/v1/records?limit=200"
    while url:
        page = (await client.get(url)).json()
        out |= {r["id"] for r in page["items"]}
        url = f"/api/v1/records?limit=200&cursor={page['next_cursor']}" if page["next_cursor"] else None
    return out


async def test_dump_equals_public_set_and_continues_from_the_mark(client: Any) -> None:
    recs = [await create(**content(i)) for i in range(30)]
    await create(publish=False, **content(90, title={"en": "SECRET draft"}))
    await edit(recs[0]["id"], title={"en": "SECRET working draft"})
    await withdraw(recs[1]["id"])

    resp = await client.get("/api/v1/records.ndjson", headers={"Accept-Encoding": "identity"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/x-ndjson")
    assert b"SECRET" not in resp.content
    rows = parse(resp.content)
    assert len(rows) == len({r["id"] for r in rows}) == 29
    assert {r["id"] for r in rows} == await public_ids(client)
    listed = (await client.get(f"/api/v1/records/{recs[5]['id']}")).json()
    assert next(r for r in rows if r["id"] == str(recs[5]["id"])) == listed  # the same shape as the JSON API

    mark = int(resp.headers["x-change-seq"])
    fresh = await create(**content(50))  # written after the dump's snapshot
    await withdraw(recs[2]["id"])
    changes = (await client.get(f"/api/v1/changes?since={mark}&kind=record")).json()["items"]
    assert {(c["id"], c["op"]) for c in changes} == {(str(fresh["id"]), "publish"), (str(recs[2]["id"]), "withdraw")}
    harvested = {r["id"] for r in rows}
    for change in changes:
        (harvested.discard if change["op"] == "withdraw" else harvested.add)(change["id"])
    assert harvested == await public_ids(client)


async def test_dump_filters_gzip_and_other_resources(client: Any) -> None:
    await create(**content(1, type="news"))
    await create(**content(2))
    async with db.transaction() as s:
        await nodes.create_node(s, ADMIN, data=NodeCreate.model_validate(
            {"party": "BR", "name": {"en": "Brazil CHM"}, "url": "https://chm.example.br/"}))  # fmt: skip
    news = parse(
        (await client.get("/api/v1/records.ndjson?type=news", headers={"Accept-Encoding": "identity"})).content
    )
    assert [r["type"] for r in news] == ["news"]

    packed = await client.get("/api/v1/records.ndjson", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert len(parse(packed.content)) == 2  # httpx decodes gzip: the stream is one valid gzip member

    raw = await client.send(client.build_request("GET", "/api/v1/parties.ndjson", headers={"Accept-Encoding": "gzip"}),
                            stream=True)  # fmt: skip
    compressed = b"".join([chunk async for chunk in raw.aiter_raw()])
    await raw.aclose()
    parties = parse(gzip.decompress(compressed))
    assert len(parties) == 196 and parties[0]["code"] < parties[-1]["code"]
    assert len(parse((await client.get("/api/v1/nodes.ndjson")).content)) == 1
    assert parse((await client.get("/api/v1/decisions.ndjson")).content) == []
    assert parse((await client.get("/api/v1/cooperation-requests.ndjson")).content) == []
    for bad in (
        "/api/v1/records.ndjson?party=ZZ",
        "/api/v1/records.ndjson?type=poem",
        "/api/v1/decisions.ndjson?gbf_target=NOPE",
        "/api/v1/records.ndjson?updated_since=yesterday",
    ):
        resp = await client.get(bad)
        assert resp.status_code == 400 and resp.headers["content-type"] == "application/problem+json", bad


async def test_every_dumped_line_is_the_public_json_of_its_resource(client: Any) -> None:
    """The dumps read rows from an asyncpg cursor, not through the list's result path: each line must still be
    exactly what the JSON API answers for that resource (same keys, same order, same values)."""
    recs = [await create(**content(i)) for i in range(5)]
    await create(**content(9, title={"en": "Tabs\tand \"quotes\" \\ back", "es": "Guía ñandú ✓"},
                            links=[{"url": "https://example.org/a?b=1&c=2", "name": "A"}],
                            publication_date="2024-02-29"))  # fmt: skip
    await edit(recs[0]["id"], publish=True, summary={"en": "Second revision"})
    await withdraw(recs[1]["id"])
    async with db.transaction() as s:
        await decisions.create_decision(s, ADMIN, data=DecisionCreate.model_validate({
            "code": "COP-15-4", "symbol": "CBD/COP/DEC/15/4", "body": "COP", "session": 15, "number": 4,
            "title": {"en": "Kunming-Montreal Global Biodiversity Framework"}, "gbf_targets": ["GBF-TARGET-02"],
            "paragraphs": [{"number": "1", "type": "operative", "text": {"en": "Adopts the framework"}},
                           {"number": "2", "type": "operative", "text": {"en": "Invites Parties"}}]}))  # fmt: skip
        await nodes.create_node(s, ADMIN, data=NodeCreate.model_validate(
            {"party": "BR", "name": {"en": "Brazil CHM"}, "url": "https://chm.example.br/"}))  # fmt: skip
    cases = (("record", "records", "id"), ("decision", "decisions", "code"), ("node", "nodes", "id"))
    for kind, path, key in cases:
        rows = parse((await client.get(f"/api/v1/{path}.ndjson")).content)
        assert rows, kind
        fields = list(registry.get(kind).public.model_fields)
        for row in rows:
            assert list(row) == fields, kind
            single = await client.get(f"/api/v1/{path}/{row[key]}")
            assert single.status_code == 200
            assert orjson.dumps(row) == orjson.dumps(single.json()), (kind, row[key])  # order-sensitive
    dumped = parse((await client.get("/api/v1/records.ndjson")).content)
    assert {r["id"] for r in dumped} == await public_ids(client) and len(dumped) == 5
    assert next(r for r in dumped if r["id"] == str(recs[0]["id"]))["revision"] == 2
