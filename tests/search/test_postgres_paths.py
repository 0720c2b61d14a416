"""The PostgreSQL backend finds the candidates of a query one of three ways (app/search/postgres.py, `_path`): a GIN
bitmap, a newest-first walk, or a (tsv, date) GIN scan over a window of the newest documents. The window must give
exactly the walk's answers: the same hits in the same order with the same scores, the same totals and facet
counts, on every page the API allows, with filters, and also when the window turns out too small."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest

from app import db
from app.search import postgres as pg
from app.search.backend import SearchQuery, SearchResult
from app.search.postgres import PostgresBackend

CAP = 40  # candidates ranked per query (the production minimum is 1,100; the paths do not depend on its size)
DAYS = 90  # few distinct dates: many ties, ordered by key


def _documents(n: int, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    words = ["wetland", "forest", "coral", "mangrove", "peat", "river", "savanna"]
    docs = []
    for i in range(n):
        picked = rng.sample(words, 3)
        day = None if i % 23 == 0 else (date(2024, 1, 1) + timedelta(days=rng.randrange(DAYS))).isoformat()
        docs.append({
            "key": f"record-p{i:04d}", "kind": "record", "id": f"p{i:04d}", "uid": f"CHM-P-{i}",
            "party": rng.choice(["BR", "FR", "DE"]), "type": rng.choice(["news", "resource", "project"]),
            "revision": 1, "title": {"en": f"{picked[0].title()} {picked[1]} report {i}"},
            "summary": {"en": f"On {picked[2]} and {rng.choice(words)} work{', with kelp' if i % 50 == 0 else ''}."},
            "text": {"en": f"Body about {rng.choice(words)}."}, "keywords": [picked[2]] if i % 3 else [],
            "subjects": [], "gbf_targets": rng.sample(["GBF-TARGET-01", "GBF-TARGET-02", "GBF-TARGET-03"],
                                                      rng.randrange(0, 3)),
            "languages": ["en"], "date": day, "updated_at": None,
        })  # fmt: skip
    return docs


@pytest.fixture
async def loaded(backend: PostgresBackend) -> PostgresBackend:
    await backend.upsert(_documents(600))
    b = PostgresBackend(candidates=CAP)
    return b


def _force(monkeypatch: pytest.MonkeyPatch, path: str, since: date | None = None) -> None:
    """Make the backend take `path`; a window starts at `since` (a widened one at the first dated document)."""
    starts = [since]

    async def fixed(self: PostgresBackend, conn: object, query: SearchQuery, q: str, cap: int) -> tuple:
        return path, 1.0

    async def start(self: PostgresBackend, conn: object, newest: float) -> date | None:
        return starts.pop() if starts else None

    monkeypatch.setattr(PostgresBackend, "_path", fixed)
    monkeypatch.setattr(PostgresBackend, "_since", start)


def _answer(r: SearchResult) -> tuple:
    return [(h["id"], h["score"], h["date"]) for h in r.hits], r.estimated_total, r.facets


async def _newest_dates(where: str = "true") -> list[date]:
    from sqlalchemy import text

    async with db.read_connection() as conn:
        sql = f"SELECT d.date FROM search_documents d WHERE d.date IS NOT NULL AND {where} ORDER BY d.date DESC"
        return list((await conn.execute(text(sql))).scalars())


QUERIES: list[SearchQuery] = [
    SearchQuery(q="wetland", facets=("type", "party", "gbf_targets")),
    SearchQuery(q="wetland", offset=20, limit=20),  # the last page of the candidates
    SearchQuery(q="wetland", offset=CAP - 5, limit=5),  # the last candidates
    SearchQuery(q="wetland", offset=CAP, limit=10),  # deeper than the cap: it grows to offset + limit
    SearchQuery(q="forest river", facets=("kind",)),
    SearchQuery(q="coral", party="BR", facets=("type",)),
    SearchQuery(q="mangrove", type="news", party="FR"),
    SearchQuery(q="peat", gbf_target="GBF-TARGET-03", facets=("gbf_targets",)),
    SearchQuery(q="savanna -river"),
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: f"{q.q}|{q.party}|{q.type}|{q.gbf_target}|{q.offset}")
async def test_the_window_gives_the_walks_answers(loaded: PostgresBackend, monkeypatch: pytest.MonkeyPatch,
                                                  query: SearchQuery) -> None:  # fmt: skip
    _force(monkeypatch, "walk")
    walked = _answer(await loaded.search(query))
    # more matches than candidates: which ones are ranked matters
    assert walked[0] and walked[1] == max(CAP, query.offset + query.limit)
    dates = await _newest_dates()
    # Windows from just big enough to the whole table; each must find the walk's candidates exactly.
    for since in (dates[len(dates) // 2], dates[-1], None):
        _force(monkeypatch, "window", since)
        assert _answer(await loaded.search(query)) == walked, since


async def test_a_window_too_small_falls_back_to_every_match_newest_first(
    loaded: PostgresBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = SearchQuery(q="wetland", facets=("party",))
    _force(monkeypatch, "walk")
    walked = _answer(await loaded.search(query))
    calls: list[date | None] = []
    real: Callable[..., Any] = pg._fts_sql

    def spy(query: SearchQuery, params: dict[str, Any], **kw: Any) -> str:
        calls.append(params.get("since", "-"))
        return real(query, params, **kw)

    monkeypatch.setattr(pg, "_fts_sql", spy)
    newest = (await _newest_dates())[0]
    _force(monkeypatch, "window", newest)  # one day: far fewer than CAP matches
    assert _answer(await loaded.search(query)) == walked
    assert calls == [newest, None]


async def test_few_matches_are_all_ranked_whatever_the_path(loaded: PostgresBackend,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Below the cap every match is a candidate: exact totals and facet counts on every path."""
    query = SearchQuery(q="kelp", facets=("type", "party"))
    answers = []
    for path, since in (("bitmap", None), ("walk", None), ("window", None)):
        _force(monkeypatch, path, since)
        answers.append(_answer(await loaded.search(query)))
    assert answers[0][1] < CAP and answers[0] == answers[1] == answers[2]
    assert sum(answers[0][2]["type"].values()) == answers[0][1]


async def test_window_start_is_the_date_of_the_nth_newest_document(backend: PostgresBackend) -> None:
    await backend.upsert(_documents(1500, seed=3))
    dates = await _newest_dates()
    async with db.read_connection() as conn:
        assert await backend._since(conn, 700) == dates[1023]  # at least 1,024
        assert await backend._since(conn, 1100) == dates[1151]  # rounded up to eight steps an octave: 1,152
        assert await backend._since(conn, 1500) is None  # more than the dated documents
