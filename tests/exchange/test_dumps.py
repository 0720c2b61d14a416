"""NDJSON dumps: the public set, filters, gzip, and a continuation from the high-water mark that misses nothing."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest

from app import db
from app.models.node import NodeCreate
from app.services import nodes
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
