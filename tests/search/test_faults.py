"""The outbox survives crashes and outages: index = published set afterwards, latest revision wins. Every test
runs on each backend: PostgreSQL, Meilisearch through the official client (the socket fake; also a real server
when MEILI_URL is set)."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from app import db
from app.search import worker
from app.search.backend import SearchBackend
from app.services import record_writes
from tests.search.fakes import Wrapped
from tests.search.util import SEC, edit_and_publish, pending_outbox, publish_new, published_keys, published_revisions


@pytest.fixture
def backend(any_backend: SearchBackend) -> SearchBackend:
    return any_backend


class Crash(Exception):
    pass


async def _crash(ids: list[int]) -> None:
    raise Crash(f"worker killed after the engine confirmed {len(ids)} rows")


async def _wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_crash_after_engine_before_commit_resends(backend: SearchBackend) -> None:
    engine = Wrapped(backend)
    rid = await publish_new(title={"en": "Crash course in lichens"})
    with pytest.raises(Crash):
        await worker.drain(engine, after_engine=_crash)
    assert engine.upserted == [f"record-{rid}"]  # the engine accepted it ...
    assert await pending_outbox() == 1  # ... but the outbox row was not marked done
    await edit_and_publish(rid, title={"en": "Lichens, revised"})  # the database moves on meanwhile
    assert await worker.drain(engine) == 2  # restart: both rows, coalesced into one upsert of the current state
    assert engine.upserted == [f"record-{rid}", f"record-{rid}"]
    assert await pending_outbox() == 0
    doc = await backend.get_document(f"record-{rid}")
    assert doc is not None and doc["title"] == {"en": "Lichens, revised"} and doc["revision"] == 2
    assert await backend.keys() == await published_keys()


async def test_engine_down_during_1000_publishes(backend: SearchBackend) -> None:
    engine = Wrapped(backend)
    engine.down = True
    w = worker.Worker(engine, batch_size=250, poll_interval=0.05, max_idle=0.2)
    await w.start()
    try:
        for chunk in range(10):  # the writes succeed while the engine is down
            items = [{"external_id": f"bulk-{chunk}-{i}", "party": "BR", "type": "news",
                      "title": {"en": f"Outage note {chunk}-{i}"}} for i in range(100)]  # fmt: skip
            async with db.transaction() as s:
                results = await record_writes.bulk_upsert(s, SEC, items, publish=True)
            assert {r["status"] for r in results} == {"created"}
        assert len(await published_keys()) == 1000
        await _wait_for(lambda: _has_error())
        assert await backend.keys() == set()
        async with db.read_connection() as conn:
            parked = (await conn.execute(text("SELECT count(*) FROM search_outbox WHERE parked"))).scalar_one()
        assert parked == 0  # an outage never parks rows
        engine.down = False  # the engine comes back: the running worker drains the backlog by itself
        await _wait_for(lambda: _drained(), timeout=60)
    finally:
        await w.stop()
    assert await backend.keys() == await published_keys()


async def _has_error() -> bool:
    async with db.read_connection() as conn:
        return bool((await conn.execute(text("SELECT count(*) FROM search_outbox WHERE last_error IS NOT NULL "
                                             "AND done_at IS NULL"))).scalar_one())  # fmt: skip


async def _drained() -> bool:
    return await pending_outbox() == 0


async def test_two_workers_one_record_100_updates(backend: SearchBackend) -> None:
    # One worker is slow between reading the record and the engine confirming; the other is fast. Without
    # per-entity ordering the slow one would overwrite the fast one's newer revision with the one it read earlier.
    slow, fast = Wrapped(backend, delay=0.3), Wrapped(backend)
    rid = await publish_new(title={"en": "Revision 1"})
    workers = [worker.Worker(engine, batch_size=3, poll_interval=0.01, name=f"w{i}")
               for i, engine in enumerate((slow, fast))]  # fmt: skip
    for w in workers:
        await w.start()
    try:
        for n in range(2, 102):
            await edit_and_publish(rid, title={"en": f"Revision {n}"})
        await _wait_for(_drained, timeout=60)
    finally:
        for w in workers:
            await w.stop()
    assert slow.upserted and fast.upserted  # both workers took part
    revisions = await published_revisions()
    assert revisions == {f"record-{rid}": 101}
    doc = await backend.get_document(f"record-{rid}")
    assert doc is not None and doc["revision"] == 101 and doc["title"] == {"en": "Revision 101"}


async def test_poisoned_row_is_parked_not_retried_forever(backend: SearchBackend) -> None:
    async with db.transaction() as s:
        await s.execute(text("INSERT INTO search_outbox (kind, entity_id, parked) VALUES ('record', 'not-a-uuid', "
                             "false), ('widget', '00000000-0000-0000-0000-000000000000', false)"))  # fmt: skip
    rid = await publish_new(title={"en": "Healthy neighbour"})
    assert await worker.drain(backend) == 1
    async with db.read_connection() as conn:
        rows = (await conn.execute(text("SELECT parked, last_error FROM search_outbox WHERE done_at IS NULL"))).all()
    assert len(rows) == 2 and all(r.parked and "malformed" in r.last_error for r in rows)
    assert await backend.keys() == {f"record-{rid}"}


async def test_status_hides_error_texts_from_all_but_the_secretariat(backend: SearchBackend, client) -> None:  # type: ignore[no-untyped-def]
    from tests.auth import bearer, token_for

    async with db.transaction() as s:
        await s.execute(text("INSERT INTO search_outbox (kind, entity_id, parked) VALUES ('widget', 'x', false)"))
    await worker.drain(backend)
    public = (await client.get("/api/v1/search/status")).json()
    assert public["parked"] == 1 and public["last_error"] == "hidden"
    party = (await client.get("/api/v1/search/status", headers=bearer(await token_for("BR")))).json()
    assert party["last_error"] == "hidden"
    sec = (await client.get("/api/v1/search/status", headers=bearer(await token_for(None, "admin")))).json()
    assert "malformed" in sec["last_error"]


async def test_sync_lag_and_counts_reach_metrics(backend: SearchBackend, client) -> None:  # type: ignore[no-untyped-def]
    def sample(body: str, name: str) -> float:
        line = next(x for x in body.splitlines() if x.startswith(name + " "))
        return float(line.split()[1])

    before = (await client.get("/metrics")).text
    await publish_new(title={"en": "Counted"})
    await worker.drain(backend)
    after = (await client.get("/metrics")).text
    assert sample(after, "chm_search_synced_total") == sample(before, "chm_search_synced_total") + 1
    assert sample(after, "chm_search_sync_lag_seconds_count") == sample(before, "chm_search_sync_lag_seconds_count") + 1
