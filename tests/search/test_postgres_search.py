"""Search over the embedded PostgreSQL backend, through GET /api/v1/search and the outbox worker."""

from __future__ import annotations

import httpx
import pytest

from app.search import worker
from app.search.postgres import PostgresBackend
from tests.search.util import (
    create_draft,
    edit_draft,
    pending_outbox,
    publish_new,
    published_keys,
    withdraw,
)


async def _search(client: httpx.AsyncClient, **params: object) -> dict:
    resp = await client.get("/api/v1/search", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_typo_finds_biodiversity(client: httpx.AsyncClient, backend: PostgresBackend) -> None:
    rid = await publish_new(title={"en": "Biodiversity strategy of Brazil"})
    await publish_new(title={"en": "Marine protected areas"})
    assert await worker.drain(backend) == 2  # one outbox row per publish (drafts have none)
    body = await _search(client, q="biodiversty")
    assert [h["id"] for h in body["hits"]] == [str(rid)]
    assert "<em>Biodiversity</em>" in body["hits"][0]["highlights"]["title"]


async def test_typos_are_corrected_word_by_word(client: httpx.AsyncClient, backend: PostgresBackend) -> None:
    """Each query word is corrected against the indexed titles' words; the corrected query is a full-text search, so
    summaries and keywords match too and the corrected words are highlighted."""
    peat = await publish_new(title={"en": "Peatlands of Indonesia"})
    wet = await publish_new(title={"en": "Wetlands inventory"}, summary={"en": "Mapping peatlands from the air."})
    await publish_new(title={"en": "Marine protected areas"})
    await worker.drain(backend)
    body = await _search(client, q="peatlnds")  # one letter missing
    assert {h["id"] for h in body["hits"]} == {str(peat), str(wet)} and body["estimated_total"] == 2
    assert body["hits"][0]["id"] == str(peat)  # the title match first
    assert body["hits"][0]["highlights"]["title"] == "<em>Peatlands</em> of Indonesia"
    assert [h["id"] for h in (await _search(client, q="wetlnads"))["hits"]] == [str(wet)]  # two letters swapped
    body = await _search(client, q="peatlnds indonseia")  # every word corrected, the query's meaning kept (AND)
    assert [h["id"] for h in body["hits"]] == [str(peat)]
    assert (await _search(client, q="Péatlnds"))["hits"][0]["id"] == str(peat)  # case, accents
    assert [h["id"] for h in (await _search(client, q="peatlnds", type="news"))["hits"]] == []  # filters hold


async def test_typo_budget_is_meilisearchs(client: httpx.AsyncClient, backend: PostgresBackend) -> None:
    """One typo from 5 characters, two from 9, none below: a short word is more likely another word than a typo."""
    rid = await publish_new(title={"en": "Reef restoration and mangrove conservation"})
    await worker.drain(backend)
    queries = ("reff", "mangrvoe", "mnagrvoe", "restoraton", "rextoratiom", "rexhoratiom", "cnservaton")
    found = {q: [h["id"] for h in (await _search(client, q=q))["hits"]] == [str(rid)] for q in queries}
    assert found == {"reff": False, "mangrvoe": True, "mnagrvoe": False, "restoraton": True, "rextoratiom": True,
                     "rexhoratiom": False, "cnservaton": True}  # fmt: skip


async def test_a_known_word_is_not_corrected(client: httpx.AsyncClient, backend: PostgresBackend) -> None:
    savannah = await publish_new(title={"en": "Savannah fires"})
    await publish_new(title={"en": "Savanna fires"})
    await worker.drain(backend)
    assert [h["id"] for h in (await _search(client, q="savannah"))["hits"]] == [str(savannah)]  # not "savanna"
    assert len((await _search(client, q="savanah"))["hits"]) == 1  # one typo from savannah, two from savanna


async def test_equally_close_corrections_are_all_searched(client: httpx.AsyncClient,
                                                          backend: PostgresBackend) -> None:  # fmt: skip
    ids = {str(await publish_new(title={"en": t})) for t in ("Forest fires", "Frost damage", "Sea level")}
    await worker.drain(backend)
    body = await _search(client, q="forst")  # one typo from "forest" and from "frost"
    assert {h["id"] for h in body["hits"]} < ids and body["estimated_total"] == 2


async def test_the_vocabulary_is_public_titles_and_reindex_prunes_it(client: httpx.AsyncClient,
                                                                     backend: PostgresBackend) -> None:  # fmt: skip
    from sqlalchemy import text

    from app import db

    async def vocabulary() -> set[str]:
        async with db.read_connection() as conn:
            return set((await conn.execute(text("SELECT word FROM search_words"))).scalars())

    await create_draft(title={"en": "Confidential quokkas"})
    rid = await publish_new(title={"en": "Numbats of Australia"})
    gone = await publish_new(title={"en": "Bilbies in decline"})
    await edit_draft(rid, title={"en": "Secret wombats"})
    await worker.drain(backend)
    assert await vocabulary() == {"numbats", "australia", "bilbies", "decline"}
    assert (await _search(client, q="quokas"))["hits"] == [] and (await _search(client, q="wombtas"))["hits"] == []
    await withdraw(gone)
    await worker.drain(backend)
    assert (await _search(client, q="bilbeis"))["hits"] == []
    assert await worker.reindex(backend) == 1
    assert await vocabulary() == {"numbats", "australia"}
    assert [h["id"] for h in (await _search(client, q="nubmats"))["hits"]] == [str(rid)]


async def test_full_text_ranks_and_highlights(client: httpx.AsyncClient, backend: PostgresBackend) -> None:
    best = await publish_new(title={"en": "Forest restoration in the Amazon"}, summary={"en": "Restoring forests."})
    other = await publish_new(title={"en": "Wetlands"}, summary={"en": "Forest edges near wetlands are studied."})
    await publish_new(title={"en": "Coral reefs"})
    await worker.drain(backend)
    body = await _search(client, q="forest")
    assert [h["id"] for h in body["hits"]] == [str(best), str(other)]  # a title match outranks a summary match
    assert body["estimated_total"] == 2
    hit = body["hits"][0]
    assert hit["kind"] == "record" and hit["party"] == "BR" and hit["type"] == "resource"
    assert hit["uid"].startswith("CHM-RES-BR-") and hit["uid"].endswith("-1")
    assert "<em>Forest</em>" in hit["highlights"]["title"]
    assert "<em>" in body["hits"][1]["highlights"]["text"]
    assert body["processing_ms"] >= 0


async def test_french_query_finds_french_title(client: httpx.AsyncClient, backend: PostgresBackend) -> None:
    rid = await publish_new(title={"en": "Forest restoration", "fr": "Restauration des forêts tropicales"})
    await publish_new(title={"en": "Ocean acidification"})
    await worker.drain(backend)
    for q in ("forêts tropicales", "forets", "restauration"):  # stemmed, accents optional
        body = await _search(client, q=q, lang="fr")
        assert [h["id"] for h in body["hits"]] == [str(rid)], q
        assert body["hits"][0]["title"] == "Restauration des forêts tropicales"
        assert body["hits"][0]["lang"] == "fr"
    body = await _search(client, q="forêts")  # no lang: English title shown (fallback), still found
    assert body["hits"][0]["title"] == "Forest restoration"


async def test_filters_and_facets_combine(client: httpx.AsyncClient, backend: PostgresBackend) -> None:
    a = await publish_new(
        party="BR",
        type="news",
        title={"en": "Wetland news"},
        subjects=["CBD-SUBJECT-INLAND-WATERS"],
        gbf_targets=["GBF-TARGET-03"],
    )
    await publish_new(party="BR", type="resource", title={"en": "Wetland guide"}, gbf_targets=["GBF-TARGET-03"])
    await publish_new(party="FR", type="news", title={"en": "Wetland day"}, gbf_targets=["GBF-TARGET-02"])
    await publish_new(party="FR", type="news", title={"en": "Mountain day"})
    await worker.drain(backend)

    body = await _search(client, q="wetland", facets="type,party,gbf_targets,kind")
    assert body["estimated_total"] == 3
    assert body["facets"] == {
        "type": {"news": 2, "resource": 1},
        "party": {"BR": 2, "FR": 1},
        "gbf_targets": {"GBF-TARGET-03": 2, "GBF-TARGET-02": 1},
        "kind": {"record": 3},
    }
    body = await _search(client, q="wetland", party="BR", type="news", facets="type")
    assert [h["id"] for h in body["hits"]] == [str(a)] and body["facets"] == {"type": {"news": 1}}
    body = await _search(client, q="wetland", gbf_target="GBF-TARGET-03", party="br")
    assert len(body["hits"]) == 2
    body = await _search(client, subject="CBD-SUBJECT-INLAND-WATERS")  # no q: browse with filters
    assert [h["id"] for h in body["hits"]] == [str(a)]
    body = await _search(client, type="news", facets="party")  # browse + facets
    assert body["estimated_total"] == 3 and body["facets"] == {"party": {"FR": 2, "BR": 1}}
    body = await _search(client, q="wetland", limit=1, offset=1)
    assert len(body["hits"]) == 1 and body["estimated_total"] == 3


async def test_withdrawn_record_disappears(client: httpx.AsyncClient, backend: PostgresBackend) -> None:
    rid = await publish_new(title={"en": "Pollinator decline"})
    await worker.drain(backend)
    assert len((await _search(client, q="pollinator"))["hits"]) == 1
    await withdraw(rid)
    await worker.drain(backend)
    assert (await _search(client, q="pollinator"))["hits"] == []
    assert await backend.keys() == await published_keys() == set()


async def test_drafts_never_indexed(client: httpx.AsyncClient, backend: PostgresBackend) -> None:
    await create_draft(title={"en": "Secret mangrove draft"})
    rid = await publish_new(title={"en": "Public seagrass record"})
    await edit_draft(rid, title={"en": "Unpublished mangrove edit"})  # a working draft over a published record
    await worker.drain(backend)
    assert (await _search(client, q="mangrove"))["hits"] == []
    hits = (await _search(client, q="seagrass"))["hits"]
    assert [h["title"] for h in hits] == ["Public seagrass record"]
    assert await backend.keys() == await published_keys() == {f"record-{rid}"}


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"kind": "recrod"}, "kind"),
        ({"type": "newz"}, "type"),
        ({"party": "XX"}, "party"),
        ({"subject": "CBD-SUBJECT-NOPE"}, "subject"),
        ({"gbf_target": "GBF-TARGET-99"}, "gbf_target"),
        ({"lang": "de"}, "lang"),
        ({"facets": "type,colour"}, "facets"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"offset": 1001}, "offset"),
    ],
)
async def test_bad_parameters_are_400_naming_them(client: httpx.AsyncClient, backend: PostgresBackend,
                                                  params: dict, loc: str) -> None:  # fmt: skip
    resp = await client.get("/api/v1/search", params={"q": "x", **params})
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["errors"][0]["loc"] == ["query", loc]
    if loc == "offset":
        assert "change feed" in resp.json()["detail"]


async def test_status_shows_backlog(client: httpx.AsyncClient, backend: PostgresBackend) -> None:
    await publish_new(title={"en": "One"})
    await publish_new(title={"en": "Two"})
    status = (await client.get("/api/v1/search/status")).json()
    assert status["backend"] == "postgres" and status["backlog"] == 2 and status["parked"] == 0
    assert status["oldest_pending_seconds"] >= 0
    await worker.drain(backend)
    status = (await client.get("/api/v1/search/status")).json()
    assert status["backlog"] == 0 and status["oldest_pending_seconds"] is None and status["documents"] == 2
    assert await pending_outbox() == 0


async def test_reindex_swaps_in_a_fresh_table(client: httpx.AsyncClient, backend: PostgresBackend) -> None:
    keep = await publish_new(title={"en": "Kelp forests"})
    await worker.drain(backend)
    await backend.upsert([{**(await backend.get_document(f"record-{keep}")), "key": "record-stale", "id": "stale"}])
    assert len((await _search(client, q="kelp"))["hits"]) == 2  # a stray document the database does not know
    assert await worker.reindex(backend) == 1
    assert (await _search(client, q="kelp"))["hits"][0]["id"] == str(keep)
    assert len((await _search(client, q="kelp"))["hits"]) == 1
    assert await backend.keys() == await published_keys()
    await worker.drain(backend)  # the rows re-queued by reindex
    assert await backend.keys() == await published_keys()


async def _indexes() -> dict[str, str]:
    from sqlalchemy import text

    from app import db

    async with db.read_connection() as conn:
        rows = await conn.execute(
            text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'search_documents'")
        )
        return dict(rows.all())


async def test_reindex_builds_the_same_indexes_after_filling(backend: PostgresBackend) -> None:
    """The build table gets its secondary indexes once filled: the swapped-in table has exactly the live set."""
    await publish_new(title={"en": "Seagrass meadows"})
    before = await _indexes()
    assert len(before) >= 5 and "search_documents_pkey" in before
    assert await worker.reindex(backend) == 1
    assert await _indexes() == before


async def test_worker_makes_a_publish_searchable_within_a_second(client: httpx.AsyncClient,
                                                                 backend: PostgresBackend) -> None:  # fmt: skip
    import asyncio
    import time

    w = worker.Worker(backend, poll_interval=30)  # a 30 s poll: only LISTEN/NOTIFY can make this fast
    await w.start()
    try:
        deadline = time.monotonic() + 10
        while not w.listening:  # the listener connects on the worker's first turn
            assert time.monotonic() < deadline, "the worker never started listening"
            await asyncio.sleep(0.01)
        started = time.monotonic()
        rid = await publish_new(title={"en": "Biodiversity hotspots"})
        while not (await _search(client, q="biodiversty"))["hits"]:
            assert time.monotonic() - started < 1.0, "not searchable within a second"
            await asyncio.sleep(0.02)
    finally:
        await w.stop()
    assert (await _search(client, q="biodiversty"))["hits"][0]["id"] == str(rid)
    assert (await client.get("/api/v1/search/status")).json()["backlog"] == 0


async def test_opportunities_are_searchable_and_leave_with_deletion(client: httpx.AsyncClient,
                                                                    backend: PostgresBackend) -> None:  # fmt: skip
    from tests.auth import bearer, token_for

    de = bearer(await token_for("DE", "cooperation:write"))
    body = {"title": {"en": "Seagrass monitoring grants"}, "provider_organization": "Blue Fund",
            "gbf_targets": ["GBF-TARGET-02"]}  # fmt: skip
    r = await client.post("/api/v1/opportunities", json=body, headers=de)
    assert r.status_code == 201, r.text
    await worker.drain(backend)
    hits = (await _search(client, q="seagrass", kind="opportunity"))["hits"]
    assert [(h["kind"], h["id"], h["party"]) for h in hits] == [("opportunity", r.json()["id"], "DE")]
    assert (await client.delete(r.headers["location"], headers=de)).status_code == 204
    await worker.drain(backend)
    assert (await _search(client, q="seagrass"))["hits"] == []


async def test_reindex_is_not_cut_by_the_statement_timeout(database_url: str, backend: PostgresBackend) -> None:
    """Every API connection carries CHM_STATEMENT_TIMEOUT_MS (15 s); building the GIN indexes of a million documents
    takes longer. The build runs without it: here under a 100 ms timeout that filling alone exceeds (1 ms would
    cut the connection's own set-up query)."""
    from collections.abc import AsyncIterator

    from app import db

    rid = await publish_new(title={"en": "Kelp"})
    await worker.drain(backend)
    doc = await backend.get_document(f"record-{rid}")
    assert doc is not None
    many = [{**doc, "key": f"record-bulk-{n}", "id": f"bulk-{n}", "summary": {"en": f"Kelp forest {n} " * 40}}
            for n in range(400)]  # fmt: skip

    async def batches() -> AsyncIterator[list[dict]]:
        yield many

    engine = db.make_engine(database_url, pool_size=1, server_settings={"statement_timeout": "100"})
    try:
        assert await PostgresBackend(engine).build_and_swap(batches()) == 400
    finally:
        await engine.dispose()
    assert len(await backend.keys()) == 400


async def test_the_nearest_words_lookup_leaves_the_similarity_threshold_as_it_was(backend: PostgresBackend) -> None:
    from sqlalchemy import text

    from app import db

    await publish_new(title={"en": "Frost damage"})
    await worker.drain(backend)
    async with db.get_engine().begin() as conn:
        await conn.execute(text("SET LOCAL pg_trgm.similarity_threshold = 0.45"))
        near = (await conn.execute(text("SELECT public.chm_near_words('forst', 5, 0.2)"))).scalar_one()
        assert near == ["frost"]  # 0.2 similar: found at 0.2, not at the session's 0.45
        assert (await conn.execute(text("SELECT show_limit()"))).scalar_one() == pytest.approx(0.45)


async def test_reindex_reads_past_the_idle_in_transaction_timeout(database_url: str, backend: PostgresBackend) -> None:
    """The reading transaction waits while batches are written and must not be what an API connection's
    idle-in-transaction timeout kills; and it ends with the last batch, before the new table's indexes are built
    (here a 0.6 s pause after the last batch under a 200 ms timeout)."""
    import asyncio
    from collections.abc import AsyncIterator

    from app import db

    class SlowIndexes(PostgresBackend):
        async def build_and_swap(self, batches: AsyncIterator[list[dict]]) -> int:
            async def then_pause() -> AsyncIterator[list[dict]]:
                async for batch in batches:
                    await asyncio.sleep(0.3)  # writing the batch
                    yield batch
                await asyncio.sleep(0.6)  # building the indexes

            return await super().build_and_swap(then_pause())

    for n in range(3):
        await publish_new(title={"en": f"Kelp {n}"})
    engine = db.make_engine(database_url, pool_size=1,
                            server_settings={"idle_in_transaction_session_timeout": "200"})  # fmt: skip
    try:
        assert await worker.reindex(SlowIndexes(), engine=engine, batch_size=1) == 3
    finally:
        await engine.dispose()
    assert len(await backend.keys()) == 3
