"""Atom feeds read by feedparser: valid (no bozo), filtered, paged by rel="next", withdrawals as RFC 6721."""

from __future__ import annotations

from typing import Any

import feedparser
import pytest
from lxml import etree

from tests.exchange.harvesting import content, create, edit, withdraw

pytestmark = pytest.mark.asyncio
AT = "{http://purl.org/atompub/tombstones/1.0}"


async def read_all(client: Any, url: str) -> tuple[list[Any], list[etree._Element]]:
    """Follow rel="next" to the end: (feedparser entries, tombstones)."""
    entries: list[Any] = []
    tombstones: list[etree._Element] = []
    next_url: str | None = url
    while next_url:
        resp = await client.get(next_url)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/atom+xml")
        parsed = feedparser.parse(resp.content)
        assert not parsed.bozo, parsed.get("bozo_exception")
        entries.extend(parsed.entries)
        tombstones.extend(etree.fromstring(resp.content).iter(f"{AT}deleted-entry"))
        next_url = next((link.href for link in parsed.feed.links if link.rel == "next"), None)
    return entries, tombstones


async def test_feed_pages_through_every_published_record_once(client: Any) -> None:
    published = [await create(**content(i)) for i in range(57)]
    await create(publish=False, **content(100, title={"en": "SECRET draft"}))
    news = await create(**content(101, type="news", title={"en": "News", "fr": "Nouvelles"}))
    await edit(published[0]["id"], title={"en": "SECRET working draft"})
    gone = published[1]
    await withdraw(gone["id"])

    entries, tombstones = await read_all(client, "/api/v1/records.atom")
    ids = [e.id for e in entries]
    assert len(ids) == len(set(ids)) == 57  # 56 still published + the news item
    assert set(ids) == {f"urn:uuid:{r['id']}" for r in [*published[2:], published[0], news]}
    assert [t.get("ref") for t in tombstones] == [f"urn:uuid:{gone['id']}"]
    assert all("SECRET" not in e.title for e in entries)
    assert entries[0].id == f"urn:uuid:{news['id']}"  # newest public change first
    updated = [e.updated_parsed for e in entries]
    assert updated == sorted(updated, reverse=True)

    first = entries[ids.index(f"urn:uuid:{published[3]['id']}")]
    assert first.published and first.updated and first.summary == "Summary 3"
    assert {t.term for t in first.tags} == {"resource", "GBF-TARGET-02"}
    hrefs = {(link.rel, link.type): link.href for link in first.links}
    assert hrefs[("alternate", "application/json")].endswith(f"/api/v1/records/{published[3]['id']}")


async def test_feed_filters_and_language(client: Any) -> None:
    await create(**content(1, type="news", title={"en": "Wetlands news", "fr": "Nouvelles des zones humides"}))
    await create(**content(2, type="resource"))
    await create(**content(4, type="news", gbf_targets=[]))

    fr, _ = await read_all(client, "/api/v1/records.atom?type=news&lang=fr")
    assert sorted(e.title for e in fr) == ["Guide des zones humides 4", "Nouvelles des zones humides"]
    ru, _ = await read_all(client, "/api/v1/records.atom?type=news&lang=ru")  # falls back to English
    assert sorted(e.title for e in ru) == ["Wetland guide 4", "Wetlands news"]
    targeted, _ = await read_all(client, "/api/v1/records.atom?gbf_target=GBF-TARGET-02&party=BR")
    assert [e.title for e in targeted] == ["Wetlands news"]
    assert (await read_all(client, "/api/v1/records.atom?party=FR"))[0] == []
    for bad in ("party=ZZ", "type=poem", "lang=xx", "gbf_target=GBF-TARGET-99", "cursor=zzz"):
        resp = await client.get(f"/api/v1/records.atom?{bad}")
        assert resp.status_code == 400 and resp.headers["content-type"] == "application/problem+json", bad
