"""The demo data set loads through the services, is idempotent and shows a living system."""

from __future__ import annotations

import pytest

from app import db
from app.services import demo

pytestmark = pytest.mark.asyncio


async def test_demo_seed_is_idempotent_and_real(client):
    async with db.transaction() as s:
        first = await demo.seed(s)
    assert first["records"] == demo.RECORDS and first["decisions"] >= 24 and first["nodes"] >= 10
    assert first["cooperation_requests"] >= 5
    async with db.transaction() as s:
        again = await demo.seed(s)
    assert again == {"records": 0, "decisions": 0, "nodes": 0, "cooperation_requests": 0}

    chm = (await client.get("/api/v1/decisions/COP-9-30")).json()
    assert chm["symbol"] == "UNEP/CBD/COP/DEC/IX/30" and "clearing-house" in chm["title"]["en"].lower()
    gbf = (await client.get("/api/v1/decisions/COP-15-4")).json()
    assert gbf["symbol"] == "CBD/COP/DEC/15/4" and "Kunming-Montreal" in gbf["title"]["en"]
    assert gbf["paragraphs"]
    records = (await client.get("/api/v1/records?limit=200")).json()
    assert len(records["items"]) == 200 and records["next_cursor"]
    assert {r["status"] for r in records["items"]} == {"published"}
    assert len({r["type"] for r in records["items"]}) >= 8
    assert any("fr" in r["title"] for r in records["items"])
