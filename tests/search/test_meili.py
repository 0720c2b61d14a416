"""The Meilisearch adapter at the HTTP level, against a fake shaped like the documented API; plus live tests
(`meili_live`) that run only when MEILI_URL points at a real server."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text

from app import db
from app.search import set_backend, worker
from app.search.backend import EngineError, EngineUnavailable, SearchQuery
from app.search.meili import SETTINGS, MeiliBackend, flatten
from tests.search.meili_fake import FakeMeili
from tests.search.util import publish_new, published_keys, withdraw

INDEX = "chm_documents"


@pytest.fixture
def fake() -> FakeMeili:
    return FakeMeili()


@pytest.fixture
async def meili(engine: object, fake: FakeMeili) -> AsyncIterator[MeiliBackend]:
    backend = MeiliBackend("http://meili.test", "masterKey", index=INDEX, transport=fake.transport(),
                           poll_interval=0)  # fmt: skip
    set_backend(backend)
    yield backend
    set_backend(None)
    await backend.close()


def _doc(key: str = "record-1", **over: object) -> dict:
    return {"key": key, "kind": "record", "id": key.removeprefix("record-"), "uid": "CHM-RES-BR-000001-1",
            "party": "BR", "type": "resource", "revision": 1, "title": {"en": "Biodiversity", "fr": "Biodiversité"},
            "summary": {"en": "About life."}, "text": {}, "keywords": [], "subjects": [], "gbf_targets": [],
            "languages": ["en", "fr"], "date": "2025-01-02", "updated_at": "2025-01-02T00:00:00+00:00",
            **over}  # fmt: skip


async def test_index_creation_and_settings(meili: MeiliBackend, fake: FakeMeili) -> None:
    await meili.ensure_ready()
    assert fake.paths() == [
        f"GET /indexes/{INDEX}", "POST /indexes", "GET /tasks/0", "GET /tasks/0",
        f"PATCH /indexes/{INDEX}/settings", "GET /tasks/1", "GET /tasks/1",
    ]  # fmt: skip
    assert fake.requests[1][2] == {"uid": INDEX, "primaryKey": "key"}  # the primary key is never guessed
    settings = fake.indexes[INDEX].settings
    assert settings == SETTINGS
    assert {loc for rule in settings["localizedAttributes"] for loc in rule["locales"]} == {
        "eng", "fra", "spa", "rus", "ara", "zho"}  # fmt: skip
    assert {"kind", "party", "type", "subjects", "gbf_targets"} <= set(settings["filterableAttributes"])
    assert settings["searchableAttributes"][0] == "title_ar" and "keywords" in settings["searchableAttributes"]
    await meili.ensure_ready()  # idempotent and cached: no more requests
    assert len(fake.requests) == 7


async def test_upsert_and_delete_wait_for_tasks(meili: MeiliBackend, fake: FakeMeili) -> None:
    await meili.apply([_doc()], ["record-gone"])
    adds = [r for r in fake.requests if r[1].startswith(f"/indexes/{INDEX}/documents")]
    assert adds[0][:2] == ("POST", f"/indexes/{INDEX}/documents?primaryKey=key")
    assert adds[0][2] == [flatten(_doc())]
    assert adds[0][2][0]["title_fr"] == "Biodiversité" and "title" not in adds[0][2][0]
    assert adds[1] == ("POST", f"/indexes/{INDEX}/documents/delete-batch", ["record-gone"])
    assert all(t["status"] == "succeeded" for t in fake.tasks)  # every task was polled to completion
    assert await meili.get_document("record-1") == _doc()
    assert await meili.get_document("record-nope") is None
    assert await meili.keys() == {"record-1"}
    assert (await meili.stats())["documents"] == 1


async def test_failed_task_is_surfaced(meili: MeiliBackend, fake: FakeMeili) -> None:
    fake.fail_documents_with = "record-bad"
    with pytest.raises(EngineError, match="invalid_document_id: Document identifier `record-bad` is invalid"):
        await meili.upsert([_doc("record-bad")])


async def test_unreachable_engine_is_unavailable(meili: MeiliBackend, fake: FakeMeili) -> None:
    fake.down = True
    with pytest.raises(EngineUnavailable):
        await meili.upsert([_doc()])
    broken = MeiliBackend("http://meili.test", transport=httpx.MockTransport(_refuse))
    with pytest.raises(EngineUnavailable, match="unreachable"):
        await broken.ensure_ready()


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


async def test_search_request_and_hit_shape(meili: MeiliBackend, fake: FakeMeili) -> None:
    await meili.upsert([_doc(), _doc("record-2", party="FR", title={"en": "Oceans"})])
    result = await meili.search(SearchQuery(q="biodiversity", party="BR", subject="CBD-SUBJECT-X", lang="fr",
                                            facets=("type", "party"), limit=5, offset=0))  # fmt: skip
    _, path, body = fake.requests[-1]
    assert path == f"/indexes/{INDEX}/search"
    assert body["q"] == "biodiversity" and body["limit"] == 5 and body["offset"] == 0
    assert body["filter"] == ['party = "BR"', 'subjects = "CBD-SUBJECT-X"']
    assert body["facets"] == ["type", "party"] and body["locales"] == ["fra"]
    assert result.hits == [] and result.facets == {"type": {}, "party": {}}
    result = await meili.search(SearchQuery(q="biodiversity", lang="fr", facets=("party",)))
    assert result.estimated_total == 1 and result.facets == {"party": {"BR": 1}}
    hit = result.hits[0]
    assert hit["title"] == "Biodiversité" and hit["lang"] == "fr" and hit["uid"] == "CHM-RES-BR-000001-1"
    assert hit["highlights"]["title"] == "<em>Biodiversité</em>"
    result = await meili.search(SearchQuery(q="", kind="record"))  # browse: newest first
    assert fake.requests[-1][2]["sort"] == ["date:desc"] and len(result.hits) == 2


async def test_search_before_any_index_exists(meili: MeiliBackend) -> None:
    result = await meili.search(SearchQuery(q="anything", facets=("type",)))
    assert result.hits == [] and result.facets == {"type": {}}


async def test_build_and_swap(meili: MeiliBackend, fake: FakeMeili) -> None:
    await meili.upsert([_doc("record-stale")])
    fake.requests.clear()

    async def batches() -> AsyncIterator[list[dict]]:
        yield [_doc("record-1")]
        yield [_doc("record-2")]

    assert await meili.build_and_swap(batches()) == 2
    paths = fake.paths()
    build = next(p for m, p, b in fake.requests if m == "POST" and p == "/indexes")
    build_uid = next(b["uid"] for m, p, b in fake.requests if m == "POST" and p == "/indexes")
    assert build_uid.startswith(f"{INDEX}_build_") and build
    assert f"PATCH /indexes/{build_uid}/settings" in paths
    assert paths.count(f"POST /indexes/{build_uid}/documents?primaryKey=key") == 2
    swap = next(b for m, p, b in fake.requests if p == "/swap-indexes")
    assert swap == [{"indexes": [INDEX, build_uid]}]
    assert paths[-3] == f"DELETE /indexes/{build_uid}"
    assert await meili.keys() == {"record-1", "record-2"} and build_uid not in fake.indexes


async def test_worker_and_api_on_meilisearch(client: httpx.AsyncClient, meili: MeiliBackend) -> None:
    rid = await publish_new(title={"en": "Biodiversity atlas"}, party="BR", type="news")
    gone = await publish_new(title={"en": "Biodiversity leaflet"})
    await withdraw(gone)
    await worker.drain(meili)
    assert await meili.keys() == await published_keys() == {f"record-{rid}"}
    body = (await client.get("/api/v1/search", params={"q": "biodiversty", "facets": "type"})).json()
    assert [h["id"] for h in body["hits"]] == [str(rid)] and body["facets"] == {"type": {"news": 1}}
    status = (await client.get("/api/v1/search/status")).json()
    assert status["backend"] == "meilisearch" and status["backlog"] == 0 and status["documents"] == 1


async def test_worker_parks_a_document_the_engine_refuses(meili: MeiliBackend, fake: FakeMeili) -> None:
    ok = await publish_new(title={"en": "Fine record"})
    bad = await publish_new(title={"en": "Refused record"})
    fake.fail_documents_with = f"record-{bad}"
    await worker.drain(meili, max_attempts=3)
    assert await meili.keys() == {f"record-{ok}"}  # the good one went through on its own
    async with db.read_connection() as conn:
        row = (await conn.execute(text("SELECT attempts, parked, last_error FROM search_outbox WHERE entity_id = :e"),
                                  {"e": str(bad)})).one()  # fmt: skip
    assert row.attempts == 3 and row.parked and "invalid_document_id" in row.last_error


async def test_worker_outage_keeps_rows(meili: MeiliBackend, fake: FakeMeili) -> None:
    rid = await publish_new(title={"en": "Waiting"})
    fake.down = True
    with pytest.raises(EngineUnavailable):
        await worker.drain(meili)
    fake.down = False
    await worker.drain(meili)
    assert await meili.keys() == {f"record-{rid}"}


live = pytest.mark.skipif(not os.environ.get("MEILI_URL"), reason="MEILI_URL is not set")


@pytest.mark.meili_live
@live
async def test_live_meilisearch_round_trip() -> None:
    backend = MeiliBackend(os.environ["MEILI_URL"], os.environ.get("MEILI_KEY"), index=f"chm_test_{uuid.uuid4().hex}")
    try:
        await backend.upsert([_doc("record-1"), _doc("record-2", title={"en": "Oceans"}, party="FR")])
        result = await backend.search(SearchQuery(q="biodiversty", facets=("party",)))
        assert [h["id"] for h in result.hits] == ["1"] and result.facets == {"party": {"BR": 1}}

        async def batches() -> AsyncIterator[list[dict]]:
            yield [_doc("record-3")]

        assert await backend.build_and_swap(batches()) == 1
        assert await backend.keys() == {"record-3"}
    finally:
        await backend._call("DELETE", f"/indexes/{backend.index}", missing_ok=True)
        await backend.close()
