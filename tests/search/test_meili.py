"""The Meilisearch adapter (official `meilisearch` client) against the fake on a loopback socket, checked at the HTTP
level (paths, bodies, settings, task polling, swap); the same tests run against a real server when MEILI_URL is
set (`meili-live`: the HTTP-level checks, which need the fake's request log, are skipped there)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import pytest
from sqlalchemy import text

from app import db
from app.search import set_backend, worker
from app.search.backend import EngineError, EngineUnavailable, SearchQuery
from app.search.meili import SETTINGS, MeiliBackend, flatten
from tests.search.conftest import LIVE_URL, live_backend, live_only
from tests.search.meili_fake import FakeMeili, serve
from tests.search.util import publish_new, published_keys, withdraw

INDEX = "chm_documents"


async def _until(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _true(value: bool) -> bool:
    return value


async def _keys_are(backend: MeiliBackend, want: set[str]) -> bool:
    return await backend.keys() == want


@pytest.fixture(params=["fake", pytest.param("live", marks=[pytest.mark.meili_live, live_only])])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeMeili | None]:
    """The fake on a socket, or None when the test runs against the real server at MEILI_URL."""
    if request.param == "live":
        yield None
        return
    with serve() as f:
        yield f


@pytest.fixture
async def meili(engine: object, fake: FakeMeili | None) -> AsyncIterator[MeiliBackend]:
    backend = MeiliBackend(fake.url, "masterKey", index=INDEX, poll_interval=0) if fake else live_backend()
    set_backend(backend)
    yield backend
    set_backend(None)
    if fake is None:
        await backend.drop()
    await backend.close()


def _doc(key: str = "record-1", **over: object) -> dict:
    return {"key": key, "kind": "record", "id": key.removeprefix("record-"), "uid": "CHM-RES-BR-000001-1",
            "party": "BR", "type": "resource", "revision": 1, "title": {"en": "Biodiversity", "fr": "Biodiversité"},
            "summary": {"en": "About life."}, "text": {}, "keywords": [], "subjects": [], "gbf_targets": [],
            "languages": ["en", "fr"], "date": "2025-01-02", "updated_at": "2025-01-02T00:00:00+00:00",
            **over}  # fmt: skip


async def _settings(meili: MeiliBackend) -> dict:
    return await asyncio.to_thread(lambda: meili.client().index(meili.index).get_settings())


async def test_index_creation_and_settings(meili: MeiliBackend, fake: FakeMeili | None) -> None:
    await meili.ensure_ready()
    settings = await _settings(meili)
    for name, value in SETTINGS.items():  # what we sent is what the engine holds (a real one adds defaults)
        got = settings[name]
        assert (got | value == got) if isinstance(value, dict) else got == value, name
    assert {loc for rule in settings["localizedAttributes"] for loc in rule["locales"]} == {
        "eng", "fra", "spa", "rus", "ara", "zho"}  # fmt: skip
    if fake is None:
        return
    uid = INDEX
    assert fake.paths()[:7] == [
        f"GET /indexes/{uid}", "POST /indexes", "GET /tasks/0", "GET /tasks/0",
        f"PATCH /indexes/{uid}/settings", "GET /tasks/1", "GET /tasks/1",
    ]  # fmt: skip
    assert fake.requests[1][2] == {"uid": uid, "primaryKey": "key"}  # the primary key is never guessed
    assert fake.requests[4][2] == SETTINGS
    before = len(fake.requests)
    await meili.ensure_ready()  # idempotent and cached: no more requests
    assert len(fake.requests) == before


async def test_tasks_are_polled_through_their_life_cycle(meili: MeiliBackend, fake: FakeMeili | None) -> None:
    if fake is None:
        pytest.skip("the request log is the fake's")
    await meili.upsert([_doc()])
    polls = [(p, b) for m, p, b in fake.requests if p == "/tasks/2"]
    assert len(polls) == 2  # enqueued → processing on the first poll, succeeded on the second
    assert [t["status"] for t in fake.tasks] == ["succeeded"] * 3
    assert fake.tasks[2]["type"] == "documentAdditionOrUpdate" and fake.tasks[2]["startedAt"]


async def test_upsert_and_delete_wait_for_tasks(meili: MeiliBackend, fake: FakeMeili | None) -> None:
    await meili.upsert([_doc("record-gone")])
    await meili.apply([_doc()], ["record-gone"])
    assert await meili.get_document("record-1") == _doc()
    assert await meili.get_document("record-nope") is None
    assert await meili.keys() == {"record-1"}
    assert (await meili.stats())["documents"] == 1
    if fake is None:
        return
    writes = [r for r in fake.requests if r[0] == "POST" and r[1].startswith(f"/indexes/{INDEX}/documents")]
    assert writes[1][:2] == ("POST", f"/indexes/{INDEX}/documents?primaryKey=key")
    assert writes[1][2] == [flatten(_doc())]
    assert writes[1][2][0]["title_fr"] == "Biodiversité" and "title" not in writes[1][2][0]
    assert writes[2] == ("POST", f"/indexes/{INDEX}/documents/delete", {"filter": 'key IN ["record-gone"]'})
    assert all(t["status"] == "succeeded" for t in fake.tasks)  # every task was polled to completion


async def test_failed_task_is_surfaced_with_code_and_message(meili: MeiliBackend) -> None:
    with pytest.raises(EngineError, match=r"failed: invalid_document_id: Document identifier `\"?record bad!\"?`"):
        await meili.upsert([_doc("record bad!")])


async def test_error_body_code_is_surfaced(meili: MeiliBackend, fake: FakeMeili | None) -> None:
    if fake is None and not meili.api_key:
        pytest.skip("the live server has no master key")
    url = fake.url if fake else LIVE_URL
    wrong = MeiliBackend(str(url), "not-the-key", index=meili.index)
    try:
        with pytest.raises(EngineError, match=r"403 on GET index .*: invalid_api_key: The provided API key is invalid"):
            await wrong.ensure_ready()
    finally:
        await wrong.close()


async def test_unreachable_engine_is_unavailable(meili: MeiliBackend, fake: FakeMeili | None) -> None:
    if fake is not None:
        fake.down = True
        with pytest.raises(EngineUnavailable, match="answered 503"):
            await meili.upsert([_doc()])
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    broken = MeiliBackend(f"http://127.0.0.1:{port}", "masterKey")
    try:
        with pytest.raises(EngineUnavailable, match="unreachable"):
            await broken.ensure_ready()
    finally:
        await broken.close()


async def test_search_request_and_hit_shape(meili: MeiliBackend, fake: FakeMeili | None) -> None:
    await meili.upsert([_doc(), _doc("record-2", party="FR", title={"en": "Oceans"})])
    result = await meili.search(SearchQuery(q="biodiversity", party="BR", subject="CBD-SUBJECT-X", lang="fr",
                                            facets=("type", "party"), limit=5, offset=0))  # fmt: skip
    assert result.hits == [] and result.facets == {"type": {}, "party": {}}
    if fake is not None:
        _, path, body = fake.requests[-1]
        assert path == f"/indexes/{INDEX}/search"
        assert body["q"] == "biodiversity" and body["limit"] == 5 and body["offset"] == 0
        assert body["filter"] == ['party = "BR"', 'subjects = "CBD-SUBJECT-X"']
        assert body["facets"] == ["type", "party"] and body["locales"] == ["fra"]
    result = await meili.search(SearchQuery(q="biodiversity", lang="fr", facets=("party",)))
    assert result.estimated_total == 1 and result.facets == {"party": {"BR": 1}}
    hit = result.hits[0]
    assert hit["title"] == "Biodiversité" and hit["lang"] == "fr" and hit["uid"] == "CHM-RES-BR-000001-1"
    assert hit["highlights"]["title"] == "<em>Biodiversité</em>"
    result = await meili.search(SearchQuery(q="", kind="record"))  # browse: newest first
    assert len(result.hits) == 2
    if fake is not None:
        assert fake.requests[-1][2]["sort"] == ["date:desc"]


async def test_typo_tolerance(meili: MeiliBackend) -> None:
    await meili.upsert([_doc(), _doc("record-2", title={"en": "Oceans"}, party="FR")])
    result = await meili.search(SearchQuery(q="biodiversty", facets=("party",)))
    assert [h["id"] for h in result.hits] == ["1"] and result.facets == {"party": {"BR": 1}}


async def test_search_before_any_index_exists(meili: MeiliBackend) -> None:
    result = await meili.search(SearchQuery(q="anything", facets=("type",)))
    assert result.hits == [] and result.facets == {"type": {}}
    assert (await meili.stats())["documents"] == 0 and await meili.keys() == set()


async def test_each_pool_thread_has_its_own_client(meili: MeiliBackend) -> None:
    # The client rewrites Content-Type on its one headers dict at every call, so a client shared by threads could let
    # a GET's reset strip a concurrent POST's header (415 invalid_content_type): each pool thread builds its own.
    barrier = threading.Barrier(4)

    def grab() -> int:
        barrier.wait(10)  # four calls at once: four distinct threads
        return id(meili.client())

    clients = await asyncio.gather(*(asyncio.get_running_loop().run_in_executor(meili._queries, grab)
                                     for _ in range(4)))  # fmt: skip
    assert len(set(clients)) == 4
    searches = await asyncio.gather(*(meili.search(SearchQuery(q="x")) for _ in range(20)), meili.upsert([_doc()]))
    assert len(searches) == 21 and await meili.keys() == {"record-1"}


async def test_build_and_swap(meili: MeiliBackend, fake: FakeMeili | None) -> None:
    await meili.upsert([_doc("record-stale")])
    start = len(fake.requests) if fake else 0

    async def batches() -> AsyncIterator[list[dict]]:
        yield [_doc("record-1")]
        yield [_doc("record-2")]

    assert await meili.build_and_swap(batches()) == 2
    assert await meili.keys() == {"record-1", "record-2"}
    assert (await meili.search(SearchQuery(q="biodiversity"))).estimated_total == 2
    if fake is None:
        return
    requests = fake.requests[start:]
    paths = [f"{m} {p}" for m, p, _ in requests]
    build_uid = next(b["uid"] for m, p, b in requests if m == "POST" and p == "/indexes")
    assert build_uid.startswith(f"{INDEX}_build_")
    assert f"PATCH /indexes/{build_uid}/settings" in paths
    assert paths.count(f"POST /indexes/{build_uid}/documents?primaryKey=key") == 2
    swap_at = paths.index("POST /swap-indexes")
    assert requests[swap_at][2] == [{"indexes": [INDEX, build_uid]}]
    assert paths[swap_at + 3] == f"DELETE /indexes/{build_uid}"  # after the swap task succeeded (two polls)
    assert build_uid not in fake.indexes and fake.tasks[-2]["type"] == "indexSwap"


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


async def test_worker_parks_a_document_the_engine_refuses(meili: MeiliBackend, fake: FakeMeili | None) -> None:
    if fake is None:
        pytest.skip("needs the fake to refuse a valid document")
    ok = await publish_new(title={"en": "Fine record"})
    bad = await publish_new(title={"en": "Refused record"})
    fake.fail_documents_with = f"record-{bad}"
    await worker.drain(meili, max_attempts=3)
    assert await meili.keys() == {f"record-{ok}"}  # the good one went through on its own
    async with db.read_connection() as conn:
        row = (await conn.execute(text("SELECT attempts, parked, last_error FROM search_outbox WHERE entity_id = :e"),
                                  {"e": str(bad)})).one()  # fmt: skip
    assert row.attempts == 3 and row.parked
    # the task's error code and message, as Meilisearch reported them
    assert f"documentAdditionOrUpdate) failed: invalid_document_id: Document identifier `record-{bad}` is invalid" in (
        row.last_error
    )


async def test_worker_outage_keeps_rows(meili: MeiliBackend, fake: FakeMeili | None) -> None:
    if fake is None:
        pytest.skip("needs an outage")
    rid = await publish_new(title={"en": "Waiting"})
    fake.down = True
    with pytest.raises(EngineUnavailable):
        await worker.drain(meili)
    fake.down = False
    await worker.drain(meili)
    assert await meili.keys() == {f"record-{rid}"}


async def test_engine_gone_and_back_on_the_same_port(engine: object) -> None:
    """A real outage: the socket closes (connection refused), writes go on, the running worker drains afterwards."""
    fake = FakeMeili()
    with serve(fake):
        port = int(fake.url.rsplit(":", 1)[1])
        backend = MeiliBackend(fake.url, "masterKey", poll_interval=0)
        await backend.ensure_ready()
    w = worker.Worker(backend, poll_interval=0.05, max_idle=0.1)
    await w.start()
    try:
        ids = [await publish_new(title={"en": f"During the outage {i}"}) for i in range(3)]
        await _until(lambda: _true(w.last_error is not None))  # the worker saw the engine down
        assert w.last_error and "unreachable" in w.last_error
        with serve(fake, port=port):
            want = {f"record-{i}" for i in ids}
            await _until(lambda: _keys_are(backend, want))
    finally:
        await w.stop()
        await backend.close()


async def test_a_task_still_pending_after_the_timeout_is_an_outage(meili: MeiliBackend, fake: FakeMeili | None) -> None:
    if fake is None:
        pytest.skip("needs a task that never finishes")
    await meili.ensure_ready()
    meili.task_timeout = 0  # the fake moves a task on only when polled: none finishes in no time
    with pytest.raises(EngineUnavailable, match=r"timed out \(task 2\)"):
        await meili.upsert([_doc()])
    assert fake.tasks[2]["status"] in ("enqueued", "processing")  # not failed: the documents are not at fault
