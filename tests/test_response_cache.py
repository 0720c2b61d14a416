"""The response cache of anonymous reads (app/cache.py), through the public API on real PostgreSQL.

A response that comes from the cache is recognised by what it cannot know: a row written straight into the
database (a factory: no change-log entry, so no notification) is invisible to a cached page and visible to a
freshly built one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from app import db
from app.settings import get_settings
from tests.auth import bearer, token_for
from tests.factories import create_record

pytestmark = pytest.mark.asyncio

LIST = "/api/v1/records?limit=50"
BODY = {"type": "resource", "title": {"en": "Seagrass meadows atlas"}, "languages": ["en"]}


async def _listening(app: Any) -> Any:
    cache = app.state.response_cache
    assert cache is not None, "CHM_RESPONSE_CACHE is on by default"
    cache.listen_url = db.get_engine().url.render_as_string(hide_password=False)
    await cache.start()  # what the lifespan does
    assert cache.listening
    return cache


@pytest.fixture
async def cached(app: Any) -> AsyncIterator[Any]:
    """The app's cache, listening for changes as in a served process."""
    cache = await _listening(app)
    yield cache
    await cache.stop()


async def _sneak_in(title: str) -> None:
    """A published record written behind the API's back (no change log, no NOTIFY)."""
    async with db.transaction() as session:
        await create_record(session, title={"en": title}, updated_at=datetime.now(UTC))


def _titles(response: httpx.Response) -> list[str]:
    return [i["title"]["en"] for i in response.json()["items"]]


async def test_cached_until_a_publish_and_the_publish_is_visible_at_once(client, cached):
    async with db.transaction() as session:
        await create_record(session, title={"en": "first"})
    assert _titles(await client.get(LIST)) == ["first"]
    await _sneak_in("behind the back")
    assert _titles(await client.get(LIST)) == ["first"], "the second read comes from the cache"
    assert (await client.get(LIST + "&type=resource")).status_code == 200  # another key: built afresh

    br = bearer(await token_for("BR", "records:write", "records:publish"))
    rid = (await client.post("/api/v1/records", json=BODY, headers=br)).json()["id"]
    assert (await client.post(f"/api/v1/records/{rid}/publish", headers=br)).status_code == 200
    # The very next anonymous read in this process sees the publish (no waiting for the NOTIFY).
    titles = _titles(await client.get(LIST))
    assert "Seagrass meadows atlas" in titles and "behind the back" in titles


async def test_query_order_is_normalized_and_head_is_served(client, cached):
    await _sneak_in("one")
    first = await client.get("/api/v1/records?limit=5&sort=-updated_at")
    await _sneak_in("two")
    again = await client.get("/api/v1/records?sort=-updated_at&limit=5")
    assert again.content == first.content and _titles(again) == ["one"]
    head = await client.head("/api/v1/records?limit=5&sort=-updated_at")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == first.headers["etag"]
    for name in ("cache-control", "vary", "link", "content-type"):
        assert again.headers.get(name) == first.headers.get(name)


async def test_if_none_match_on_a_cached_entry_is_a_304_without_database_work(client, cached):
    await _sneak_in("one")
    rid = (await client.get(LIST)).json()["items"][0]["id"]
    single = await client.get(f"/api/v1/records/{rid}")
    page = await client.get(LIST)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(db.get_engine().sync_engine, "before_cursor_execute", count)
    try:
        for url, first in ((LIST, page), (f"/api/v1/records/{rid}", single)):
            r = await client.get(url, headers={"If-None-Match": first.headers["etag"]})
            assert r.status_code == 304 and r.content == b""
            assert r.headers["etag"] == first.headers["etag"]
            assert r.headers["cache-control"] == first.headers["cache-control"]
            assert "content-type" not in r.headers
            r = await client.get(url, headers={"If-None-Match": '"something-else"'})
            assert r.status_code == 200 and r.content == first.content
    finally:
        event.remove(db.get_engine().sync_engine, "before_cursor_execute", count)
    assert statements == []


async def test_token_reads_are_never_cached(client, cached):
    br = bearer(await token_for("BR", "records:write"))
    rid = (await client.post("/api/v1/records", json=BODY, headers=br)).json()["id"]
    assert [i["id"] for i in (await client.get(LIST, headers=br)).json()["items"]] == [rid]  # its own draft
    assert (await client.get(LIST)).json()["items"] == []  # anonymous: not the token's page
    await _sneak_in("behind the back")
    mine = await client.get(LIST, headers=br)
    assert "behind the back" in _titles(mine), "a token read is always built from the database"
    assert mine.headers["cache-control"] == "private, no-store"
    assert (await client.get(LIST)).json()["items"] == [], "the anonymous page was cached"


async def test_memory_is_bounded_least_recently_used_first(client, app):
    await _sneak_in("one")
    cache = await _listening(app)
    try:
        urls = [f"/api/v1/records?limit={n}" for n in range(2, 9)]
        assert (await client.get(urls[0])).status_code == 200
        size = next(iter(cache.entries.values())).size
        cache.max_bytes = cache.max_entry_bytes = 3 * size + size // 2  # room for three such pages
        for url in urls[1:]:
            assert (await client.get(url)).status_code == 200
            assert cache.bytes <= cache.max_bytes
        assert len(cache.entries) == 3
        await _sneak_in("two")
        # the newest URL is still cached, the oldest was evicted and is built afresh
        assert _titles(await client.get(urls[-1])) == ["one"]
        assert sorted(_titles(await client.get(urls[0]))) == ["one", "two"]
    finally:
        await cache.stop()


async def test_a_lost_listener_clears_the_cache_and_reconnects(client, cached):
    await _sneak_in("one")
    assert _titles(await client.get(LIST)) == ["one"]
    await _sneak_in("two")
    assert _titles(await client.get(LIST)) == ["one"]
    generation = cached.generation
    async with db.read_connection() as conn:
        killed = await conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                         "WHERE application_name = 'chm-cache'"))  # fmt: skip
        assert killed.scalars().all() == [True]
    deadline = time.monotonic() + 10
    while cached.generation == generation:  # the closed socket reaches the event loop
        assert time.monotonic() < deadline, "the lost listener went unnoticed"
        await asyncio.sleep(0.01)
    assert sorted(_titles(await client.get(LIST))) == ["one", "two"]  # nothing stale survives the loss
    deadline = time.monotonic() + 10
    while not cached.listening:  # it reconnects by itself
        assert time.monotonic() < deadline, "the listener did not reconnect"
        await asyncio.sleep(0.05)
    await client.get(LIST)
    await _sneak_in("three")
    assert sorted(_titles(await client.get(LIST))) == ["one", "two"], "caching again once listening"


async def test_off_switch(monkeypatch):
    monkeypatch.setenv("CHM_RESPONSE_CACHE", "false")
    get_settings.cache_clear()
    try:
        from app.main import create_app

        assert create_app().state.response_cache is None
    finally:
        monkeypatch.delenv("CHM_RESPONSE_CACHE")
        get_settings.cache_clear()


async def test_another_process_sees_a_publish_within_a_second(client, live_server):
    async with httpx.AsyncClient(base_url=live_server) as other:
        before = {i["id"] for i in (await other.get(LIST)).json()["items"]}
        await _sneak_in("behind the back")
        assert {i["id"] for i in (await other.get(LIST)).json()["items"]} == before, "served from its cache"
        br = bearer(await token_for("BR", "records:write", "records:publish"))
        rid = (await client.post("/api/v1/records", json=BODY, headers=br)).json()["id"]
        assert (await client.post(f"/api/v1/records/{rid}/publish", headers=br)).status_code == 200
        published = time.monotonic()
        while rid not in {i["id"] for i in (await other.get(LIST)).json()["items"]}:
            assert time.monotonic() - published < 1.0, "the other process still serves the old page after 1 s"
        assert "behind the back" in _titles(await other.get(LIST))
