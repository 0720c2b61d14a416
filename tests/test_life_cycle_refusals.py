"""Every refused life-cycle transition is a 409 CONFLICT through both doors, and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app import db
from app.models import Change
from tests.auth import bearer, token_for
from tests.graphql import error, gql

pytestmark = pytest.mark.asyncio

BODY = {"type": "news", "title": {"en": "Life cycle"}}
MUTATION = "mutation($id: UUID!) {{ {op}Record(id: $id) {{ id }} }}"


async def _changes() -> int:
    async with db.transaction() as s:
        return int((await s.execute(select(func.count()).select_from(Change))).scalar_one())


async def _refused_both_ways(client, headers, record_id: str, op: str) -> None:
    before = await _changes()
    rest = await client.post(f"/api/v1/records/{record_id}/{op}", headers=headers)
    assert rest.status_code == 409, (op, rest.text)
    assert rest.json()["code"] == "CONFLICT"
    err = error(await gql(client, MUTATION.format(op=op), {"id": record_id}, headers))
    assert err["extensions"]["code"] == "CONFLICT", (op, err)
    assert await _changes() == before


async def test_refused_transitions_are_409_through_rest_and_graphql(client):
    br = bearer(await token_for("BR", "records:write", "records:publish"))
    rid = (await client.post("/api/v1/records", json=BODY, headers=br)).json()["id"]
    await _refused_both_ways(client, br, rid, "withdraw")  # a draft is not published
    assert (await client.post(f"/api/v1/records/{rid}/submit", headers=br)).status_code == 200
    await _refused_both_ways(client, br, rid, "submit")  # already pending
    await _refused_both_ways(client, br, rid, "withdraw")  # pending is not published
    assert (await client.post(f"/api/v1/records/{rid}/publish", headers=br)).status_code == 200
    await _refused_both_ways(client, br, rid, "submit")  # published, no working draft
    await _refused_both_ways(client, br, rid, "publish")  # nothing to publish
    assert (await client.post(f"/api/v1/records/{rid}/withdraw", headers=br)).status_code == 200
    await _refused_both_ways(client, br, rid, "withdraw")  # already withdrawn
