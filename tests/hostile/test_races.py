"""Unique-key races answer 409 or resolve as the idempotent upsert they are, never 500."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select, text

from app import db
from app.models import Record
from tests.auth import bearer, token_for

BODY = {"type": "resource", "title": {"en": "Same external id"}, "external_id": "race-1"}


async def _count(external_id: str) -> int:
    async with db.read_connection() as conn:
        stmt = select(func.count()).select_from(Record.__table__).where(Record.__table__.c.external_id == external_id)
        return int((await conn.execute(stmt)).scalar_one())


async def test_twenty_concurrent_creates_with_one_external_id(client) -> None:  # type: ignore[no-untyped-def]
    br = bearer(await token_for("BR", "records:write"))
    responses = await asyncio.gather(*(client.post("/api/v1/records", json=BODY, headers=br) for _ in range(20)))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 1 and set(codes) <= {201, 409}, codes
    assert all(r.headers["content-type"].startswith("application/problem+json") for r in responses
               if r.status_code == 409)  # fmt: skip
    assert await _count("race-1") == 1


async def test_concurrent_bulk_upserts_of_the_same_items(client) -> None:  # type: ignore[no-untyped-def]
    br = bearer(await token_for("BR", "records:write"))
    items = [{"type": "resource", "title": {"en": f"Item {i}"}, "external_id": f"bulk-race-{i}"} for i in range(20)]
    responses = await asyncio.gather(*(client.post("/api/v1/records/bulk", json={"items": items}, headers=br)
                                       for _ in range(10)))  # fmt: skip
    assert all(r.status_code == 200 for r in responses), [r.status_code for r in responses]
    for r in responses:
        assert {x["status"] for x in r.json()["results"]} <= {"created", "updated", "unchanged"}, r.json()
    for i in range(20):
        assert await _count(f"bulk-race-{i}") == 1


async def test_concurrent_graphql_creates(client) -> None:  # type: ignore[no-untyped-def]
    br = bearer(await token_for("BR", "records:write"))
    mutation = ('mutation { createRecord(input: {type: "resource", title: {en: "G"}, externalId: "gql-race"}) '
                "{ id } }")  # fmt: skip
    responses = await asyncio.gather(*(client.post("/graphql", json={"query": mutation}, headers=br)
                                       for _ in range(10)))  # fmt: skip
    assert all(r.status_code == 200 for r in responses)
    codes = [(r.json().get("errors") or [{}])[0].get("extensions", {}).get("code") for r in responses]
    assert codes.count(None) == 1 and set(codes) <= {None, "CONFLICT"}, codes
    assert await _count("gql-race") == 1


async def test_a_key_only_the_database_refuses_fails_or_resolves_that_item_alone(client) -> None:  # type: ignore[no-untyped-def]
    """A concurrent transaction holds an uncommitted record with one of the batch's external_ids: the batch's
    insert waits on it, then the database refuses the duplicate; that item is re-planned on its own (now an
    update of the committed record) and the others land."""
    from tests.factories import create_record

    br = bearer(await token_for("BR", "records:write"))
    items = [{"type": "resource", "title": {"en": f"I{i}"}, "external_id": f"held-{i}"} for i in range(3)]
    async with db.transaction() as holder:
        await create_record(holder, party="BR", status="draft", external_id="held-1")
        task = asyncio.ensure_future(client.post("/api/v1/records/bulk", json={"items": items}, headers=br))
        async with db.read_connection() as conn:
            for _ in range(2000):  # wait on the condition: the bulk insert is blocked on our row lock
                waiting = (await conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query ILIKE 'INSERT INTO records%'"))).scalar_one()  # fmt: skip
                if waiting or task.done():
                    break
                await asyncio.sleep(0.005)
    r = await task
    assert r.status_code == 200, r.text
    statuses = [x["status"] for x in r.json()["results"]]
    assert statuses[0] == statuses[2] == "created" and statuses[1] in ("updated", "unchanged"), statuses
    for i in range(3):
        assert await _count(f"held-{i}") == 1
