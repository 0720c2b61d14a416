"""The embedded search backend: one PostgreSQL table with a weighted, per-language tsvector (GIN), trigram titles
for typo tolerance, `unaccent`, `ts_headline` highlights and facet counts.

Ranking is bounded: a query takes at most `candidates` rows of the match, ranks only those with `ts_rank` over a
small inline vector (`rank_tsv`: title, keywords, the opening of the summary; the full `tsv` only decides what
matches), and counts facets over them, so a very common term costs no more than a rare one. How the candidates
are found depends on how many rows match, as the planner estimates it (one `EXPLAIN`, ~1 ms):

- few: the GIN index (a bitmap of every match, cheap while the match is small), the first `candidates` rows. The
  GIN index is over (tsv, date, subjects, gbf_targets) (btree_gin for the date): a subject or GBF target filter
  is in the same index scan, which skips through the term's postings by the filter's instead of ANDing two bitmaps;
- very many (`_path` "walk"): the newest rows first, keeping the ones that match, until `candidates` are found. A
  bitmap of a million matches costs ~0.2 µs a row to build (~25 ms at 100,000 documents for "biodiversity" and
  growing with the table); walking the newest rows costs a constant ~10 µs per candidate whatever the table size.
  With Party/type/kind filters the walk goes through the filters' date index ((party, type, date) and the others)
  and visits only their rows, while a bitmap still reads the term's whole posting list: the choice weighs the rows
  the walk would visit against the unfiltered matches (two more EXPLAINs, only when filtered);
- many but not most ("window", unfiltered or subject/GBF-filtered walks only): a walk for a word in a tenth of the
  documents visits ten rows per candidate, most of them reading their out-of-line `tsv` (~12 µs each: ~115 ms at
  1,000,000 for "conservation"). The same candidates come from one GIN scan of `tsv @@ q AND date >= since`, with
  `since` the date of the newest documents expected to hold WINDOW_MARGIN × `candidates` matches (an estimate on
  the distinct query, one more EXPLAIN; the date from the date index, cached): every match in the window, newest
  first, capped. The window must hold at least `candidates` matches for that to be the walk's answer exactly; when
  it does not, it is widened by what it found, then dropped (every match, newest first). Chosen by cost
  (WINDOW_US...): a very common word is cheaper to walk.

When full text finds (almost) nothing, the query's words are corrected against the vocabulary of indexed titles
(`search_words`, one row per distinct word, trigram-indexed: a lookup of a few milliseconds whatever the number of
documents), with Meilisearch's default budget: one typo in a word of 5 to 8 characters, two from 9 (edit distance, a
transposition counting one). A word the vocabulary holds is never corrected. If any word was, the search runs again
as `<query> or <corrected query>` (one corrected query per alternative when a word has equally close
corrections, at most three): an ordinary full-text search, so totals, facets and highlights are exact
(`biodiversty` → "<em>Biodiversity</em> ...").
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import AsyncIterator, Mapping
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app import db
from app.search.backend import Document, EngineError, SearchBackend, SearchQuery, SearchResult
from app.services import reference

TABLE_NAME = "search_documents"
BUILD_NAME = "search_documents_new"
CONFIGS = {"en": "english", "fr": "french", "es": "spanish", "ru": "russian", "ar": "arabic", "zh": "simple"}
ARRAY_FACETS = ("subjects", "gbf_targets")
WORDS_NAME = "search_words"  # the vocabulary of indexed titles (typo correction)
WORD_MIN = 4  # shorter title words are not in the vocabulary
WEAK_MATCH = 3  # fewer full-text matches than this: correct the query's typos and search again
ONE_TYPO, TWO_TYPOS = 5, 9  # a query word this long may have one, two typos corrected (Meilisearch's defaults)
TYPO_SUGGESTIONS = 50  # the vocabulary words nearest a query word (trigrams, chm_near_words) that are tried
SHORT_WORD = 6  # ... found down to a trigram similarity of 0.2 up to this length, 0.3 beyond (_SUGGESTIONS_SQL)
TYPO_WORDS = 5  # the query words (of ONE_TYPO characters or more) a search corrects at most: ~10-50 ms a word
TYPO_ALTERNATIVES = 3  # corrections of one word kept when several are equally close ("savanah": savanna, savannah)
# How candidates are found (PostgresBackend._path), by a cost model in µs measured at 1,000,000 documents:
BITMAP_US = 0.2  # a GIN bitmap, per match of the term (its whole posting list)
WALK_US = 12.0  # the newest-first walk, per row visited (candidates × scope / matches of them) that does not match
WALK_HIT_US = 5.0  # ... per row visited that matches (mostly in the inline `rank_tsv`: no out-of-line `tsv` read)
DENSE_RATIO = WALK_US / BITMAP_US  # walk rather than bitmap when DENSE_RATIO × rows visited < matches
WINDOW_US = 0.7  # the GIN scan of the term and the newest documents' dates, per document in the date window
WINDOW_ROW_US = 3.5  # ... per match in the window (subject and GBF target filters are in the index), from the heap
# ... and per match of the term as the first estimate counts them (every configuration's lexeme, a posting list
# each): the scan skips to the window's documents, but a dense posting list is decoded nearly whole on the way
WINDOW_POSTING_US = 0.016
WINDOW_MARGIN = 1.5  # the window is sized to hold this many times the candidates, by the planner's estimate
WINDOW_MAX_SHARE = 0.5  # a window over more of the table than this is no window
WINDOW_ATTEMPTS = 3  # the window, one widened by the matches it held, then every match (always exact)
TABLE_ROWS_TTL = 60.0  # seconds the table's row estimate (pg_class.reltuples) is reused


def _table(name: str) -> Table:
    return Table(
        name, MetaData(),
        Column("key", Text, primary_key=True), Column("kind", Text), Column("entity_id", Text), Column("uid", Text),
        Column("party", Text), Column("type", Text), Column("revision", Integer), Column("title", JSONB),
        Column("summary", JSONB), Column("body", JSONB), Column("keywords", ARRAY(Text)),
        Column("subjects", ARRAY(Text)), Column("gbf_targets", ARRAY(Text)), Column("languages", ARRAY(Text)),
        Column("date", Date), Column("updated_at", DateTime(timezone=True)),
        Column("indexed_at", DateTime(timezone=True)),
    )  # fmt: skip


DOCS = _table(TABLE_NAME)
WRITE_COLUMNS = [c.name for c in DOCS.columns if c.name != "indexed_at"]

_CFG_CASE = "CASE {col} " + " ".join(f"WHEN '{k}' THEN '{v}'::regconfig" for k, v in CONFIGS.items()) + " END"
# websearch_to_tsquery under every language configuration, OR-ed: documents carry lexemes of each language's
# own stemmer, and the query's language is unknown (`lang` picks the display language, it does not filter).
# WHERE compares with `(SELECT query FROM q)`: an InitPlan computed once per execution that the GIN index can use.
# (A join with the CTE cannot use the index; the expression inline is re-evaluated per row under a generic plan.)
_TSQUERY_PARTS = [
    f"websearch_to_tsquery('{cfg}'::regconfig, public.chm_unaccent(:q))" for cfg in dict.fromkeys(CONFIGS.values())
]
# For the planner's row estimate: plain expressions, folded to a constant with the bound :q.
_TSQUERY = " || ".join(_TSQUERY_PARTS)
# For the search itself: the same query with duplicate parts dropped ("biodiversity" is 'biodivers' under three
# stemmers and 'biodiversity' under three others): every duplicate is one more posting list to merge.
_TSQUERY_DISTINCT = (
    "(SELECT coalesce(string_agg(DISTINCT '(' || t::text || ')', ' | '), '')::tsquery "
    f"FROM unnest(ARRAY[{', '.join(_TSQUERY_PARTS)}]) AS t WHERE numnode(t) > 0)"
)


def _row(doc: Document) -> dict[str, Any]:
    row = {c: doc.get(c) for c in WRITE_COLUMNS if c not in ("entity_id", "body")}
    row["entity_id"] = doc["id"]
    row["body"] = doc.get("text") or {}
    for c in ("title", "summary", "body"):
        row[c] = row[c] or {}
    for c in ("keywords", "subjects", "gbf_targets", "languages"):
        row[c] = list(row[c] or [])
    row["date"] = date.fromisoformat(doc["date"]) if doc.get("date") else None
    row["updated_at"] = datetime.fromisoformat(doc["updated_at"]) if doc.get("updated_at") else None
    return row


def _document(row: Mapping[Any, Any]) -> Document:
    return {"key": row["key"], "kind": row["kind"], "id": row["entity_id"], "uid": row["uid"], "party": row["party"],
            "type": row["type"], "revision": row["revision"], "title": row["title"], "summary": row["summary"],
            "text": row["body"], "keywords": row["keywords"], "subjects": row["subjects"],
            "gbf_targets": row["gbf_targets"], "languages": row["languages"],
            "date": row["date"].isoformat() if row["date"] else None,
            "updated_at": row["updated_at"].isoformat() if row["updated_at"] else None}  # fmt: skip


def _filters(query: SearchQuery, params: dict[str, Any]) -> str:
    conds = []
    for name in ("kind", "party", "type"):
        value = getattr(query, name)
        if value is not None:
            params[f"f_{name}"] = value
            conds.append(f"d.{name} = :f_{name}")
    for name, column in (("subject", "subjects"), ("gbf_target", "gbf_targets")):
        value = getattr(query, name)
        if value is not None:  # a broader term matches its narrower ones too
            params[f"f_{name}"] = reference.with_narrower(name, value)
            conds.append(f"d.{column} && CAST(:f_{name} AS text[])")
    return " AND ".join(conds) or "true"


def _facet_sql(facets: tuple[str, ...]) -> str:
    cols = []
    for f in facets:
        if f in ARRAY_FACETS:
            src = f"SELECT v, count(*) AS n FROM cand, unnest(cand.{f}) AS v GROUP BY v"
        else:
            src = f"SELECT {f} AS v, count(*) AS n FROM cand WHERE {f} IS NOT NULL GROUP BY {f}"
        cols.append(f"(SELECT coalesce(jsonb_object_agg(v, n), '{{}}'::jsonb) FROM "
                    f"({src} ORDER BY n DESC, v LIMIT 100) f) AS facet_{f}")  # fmt: skip
    return "".join(", " + c for c in cols)


_DISPLAY_LANG = (
    "CASE WHEN d.title ? :lang THEN :lang WHEN d.title ? 'en' THEN 'en' "
    "ELSE (SELECT min(k) FROM jsonb_object_keys(d.title) AS k) END"
)
_HIT_FIELDS = (
    "'kind', d.kind, 'id', d.entity_id, 'uid', d.uid, 'party', d.party, 'type', d.type, 'revision', d.revision, "
    "'date', d.date, 'title', d.title->>hl.l, 'lang', hl.l, 'score', p.rank"
)
_HEADLINE = 'StartSel=<em>, StopSel=</em>, MaxFragments=2, MaxWords=30, MinWords=10, FragmentDelimiter=" … "'


_NEGATED = re.compile(r"(^|\s)-\S")  # websearch_to_tsquery's "-word"


def _fts_sql(query: SearchQuery, params: dict[str, Any], *, dense: bool = False, window: bool = False) -> str:
    where = _filters(query, params)
    cfg = _CFG_CASE.format(col="hl.l")
    window_cte, window_col = "", ""
    if window:
        since = "d.date >= :since" if params.get("since") is not None else "true"
        # Every match dated on or after :since, from one scan of the (tsv, date) GIN index: the date range is the
        # rare key, so the scan skips through the term's long posting lists instead of reading them whole. Those
        # matches newest first are the walk's candidates exactly, provided there are at least :cap of them
        # (`window`, checked by the caller).
        window_cte = f"""
        win AS MATERIALIZED (
            SELECT d.key, d.kind, d.party, d.type, d.subjects, d.gbf_targets, d.date, d.rank_tsv
            FROM {TABLE_NAME} d WHERE d.tsv @@ (SELECT query FROM q) AND {since} AND {where}
        ),"""
        window_col = "(SELECT count(*) FROM win) AS window, "
        source = """
            SELECT w.key, w.kind, w.party, w.type, w.subjects, w.gbf_targets, w.date,
                   ts_rank(w.rank_tsv, (SELECT query FROM q), 1) AS rank
            FROM win w ORDER BY w.date DESC NULLS LAST, w.key LIMIT :cap"""
    elif dense:
        # Newest rows first (date index, or a filter's date index), keeping matches. `rank_tsv` is tried first: it
        # is in the heap row and most matches of a very common term are in titles and summaries, so few rows fetch
        # the big out-of-line `tsv`. ts_match_vq is `@@` as a function: it keeps the GIN index out of this plan.
        # With a negated word the shortcut would be wrong (`savanna -river`: the river may be in the body only).
        match = "(d.rank_tsv @@ (SELECT query FROM q) OR ts_match_vq(d.tsv, (SELECT query FROM q)))"
        if _NEGATED.search(str(params["q"])):
            match = "ts_match_vq(d.tsv, (SELECT query FROM q))"
        order = "ORDER BY d.date DESC NULLS LAST, d.key"
    else:
        match, order = "d.tsv @@ (SELECT query FROM q)", ""
    if not window:
        source = f"""
            SELECT d.key, d.kind, d.party, d.type, d.subjects, d.gbf_targets, d.date,
                   ts_rank(d.rank_tsv, (SELECT query FROM q), 1) AS rank
            FROM {TABLE_NAME} d WHERE {match} AND {where} {order} LIMIT :cap"""
    return f"""
        WITH q AS (SELECT {_TSQUERY_DISTINCT} AS query),{window_cte}
        cand AS MATERIALIZED ({source}
        ),
        page AS (SELECT key, rank, date FROM cand ORDER BY rank DESC, date DESC NULLS LAST, key
                 LIMIT :limit OFFSET :offset)
        SELECT {window_col}(SELECT count(*) FROM cand) AS total,
               (SELECT coalesce(jsonb_agg(jsonb_build_object({_HIT_FIELDS},
                    'highlights', jsonb_strip_nulls(jsonb_build_object(
                        'title', ts_headline({cfg}, d.title->>hl.l, q.query,
                                             'HighlightAll=true, StartSel=<em>, StopSel=</em>'),
                        'text', ts_headline({cfg},
                                            NULLIF(left(coalesce(d.summary->>hl.l, d.body->>hl.l, ''), 2000), ''),
                                            q.query, '{_HEADLINE}'))))
                    ORDER BY p.rank DESC, p.date DESC NULLS LAST, p.key), '[]'::jsonb)
                FROM page p JOIN {TABLE_NAME} d ON d.key = p.key CROSS JOIN q
                CROSS JOIN LATERAL (SELECT {_DISPLAY_LANG} AS l) hl) AS hits
               {_facet_sql(query.facets)}
    """


def _browse_sql(query: SearchQuery, params: dict[str, Any]) -> str:
    where = _filters(query, params)
    return f"""
        WITH cand AS MATERIALIZED (
            SELECT d.key, d.kind, d.party, d.type, d.subjects, d.gbf_targets, d.date, NULL::real AS rank
            FROM {TABLE_NAME} d WHERE {where} ORDER BY d.date DESC NULLS LAST, d.key LIMIT :cap
        ),
        page AS (SELECT key, rank, date FROM cand ORDER BY date DESC NULLS LAST, key LIMIT :limit OFFSET :offset)
        SELECT (SELECT count(*) FROM cand) AS total,
               (SELECT coalesce(jsonb_agg(jsonb_build_object({_HIT_FIELDS}, 'highlights', '{{}}'::jsonb)
                    ORDER BY p.date DESC NULLS LAST, p.key), '[]'::jsonb)
                FROM page p JOIN {TABLE_NAME} d ON d.key = p.key
                CROSS JOIN LATERAL (SELECT {_DISPLAY_LANG} AS l) hl) AS hits
               {_facet_sql(query.facets)}
    """


def _vocabulary_sql(table: str, *, where: str = "true") -> str:
    """Add the title words of `table`'s rows matching `where` to the vocabulary. Sorted: two writers adding the same
    new words take their row locks in one order."""
    return (f"INSERT INTO {WORDS_NAME} (word) SELECT DISTINCT w FROM {table} d, "
            f"regexp_split_to_table(d.title_trgm, '[^[:alnum:]]+') AS w WHERE {where} AND length(w) >= {WORD_MIN} "
            "ORDER BY w ON CONFLICT DO NOTHING")  # fmt: skip


# Per query word: its normalized form, whether the vocabulary holds it, and if not its nearest words. A short word's
# trigrams are few and one typo breaks up to four of them ("forst" and "frost" share 0.2), so words of up to
# SHORT_WORD characters are looked up down to a similarity of 0.2, longer ones (where one typo leaves at least a
# third) down to pg_trgm's default 0.3, about half as many candidates to check.
_SUGGESTIONS_SQL = f"""
    SELECT s.n, k.known,
           CASE WHEN k.known THEN '{{}}'::text[] ELSE public.chm_near_words(
               s.n, {TYPO_SUGGESTIONS}, CASE WHEN length(s.n) <= {SHORT_WORD} THEN 0.2 ELSE 0.3 END) END AS near
    FROM (SELECT public.chm_unaccent(lower(u.w)) AS n, u.i
          FROM unnest(CAST(:words AS text[])) WITH ORDINALITY AS u(w, i)) s
    CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM {WORDS_NAME} v WHERE v.word = s.n) AS known) k
    ORDER BY s.i
"""
_CHUNK = re.compile(r"\S+")
_WORD = re.compile(r"\w+")


def typos(a: str, b: str, limit: int) -> int:
    """The edit distance between `a` and `b` (insertions, deletions, substitutions and transpositions of two
    adjacent characters, each one typo), or `limit + 1` once it is certain to exceed `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        if min(row) > limit:
            return limit + 1
        prev2, prev = prev, row
    return min(prev[-1], limit + 1)


def corrections(word: str, near: list[str]) -> list[str]:
    """The vocabulary words `word` may misspell: those with the fewest typos within its budget (ONE_TYPO, TWO_TYPOS),
    at most TYPO_ALTERNATIVES of them, nearest by trigrams first (`near` is in that order); none when `word` is one
    of them or none is within the budget."""
    budget = 2 if len(word) >= TWO_TYPOS else 1 if len(word) >= ONE_TYPO else 0
    best: list[str] = []
    fewest = budget + 1
    for candidate in near:
        n = typos(word, candidate, budget)
        if n < fewest:
            best, fewest = [candidate], n
        elif n == fewest and n <= budget:
            best.append(candidate)
    return [] if fewest == 0 else best[:TYPO_ALTERNATIVES]


class PostgresBackend(SearchBackend):
    """Search in the application's own PostgreSQL (the default when MEILI_URL is unset)."""

    name = "postgres"

    def __init__(self, engine: AsyncEngine | None = None, *, candidates: int = 1100) -> None:
        self._engine = engine
        self.candidates = candidates
        self._rows: tuple[float, float] | None = None  # (valid until, pg_class.reltuples)
        self._dates: dict[int, tuple[float, date | None]] = {}  # n → (valid until, date of the n-th newest)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine or db.get_engine()

    async def ensure_ready(self) -> None:
        async with self.engine.connect() as conn:
            exists = (await conn.execute(text("SELECT to_regclass(:t)"), {"t": TABLE_NAME})).scalar()
        if exists is None:
            raise EngineError(f"table {TABLE_NAME} is missing: run `chm migrate`")

    async def upsert(self, documents: list[Document]) -> None:
        await self._upsert(DOCS, documents)

    async def _upsert(self, table: Table, documents: list[Document], conn: AsyncConnection | None = None) -> None:
        rows = list({d["key"]: _row(d) for d in documents}.values())  # one row per key: ON CONFLICT needs it
        if not rows:
            return
        stmt = pg_insert(table).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"], set_={**{c: stmt.excluded[c] for c in WRITE_COLUMNS if c != "key"},
                                          "indexed_at": func.now()})  # fmt: skip
        if conn is not None:  # filling a new table (build_and_swap): its vocabulary is built once it is full
            await conn.execute(stmt)
            return
        async with self.engine.begin() as c:
            await c.execute(stmt)
            words = _vocabulary_sql(table.name, where="d.key = ANY(CAST(:keys AS text[]))")
            await c.execute(text(words), {"keys": [r["key"] for r in rows]})

    async def delete(self, keys: list[str]) -> None:
        if keys:
            async with self.engine.begin() as conn:
                await conn.execute(DOCS.delete().where(DOCS.c.key.in_(keys)))

    async def search(self, query: SearchQuery, *, conn: AsyncConnection | None = None) -> SearchResult:
        if conn is None:
            async with db.read_connection() as own:
                return await self._search(own, query)
        return await self._search(conn, query)

    async def _run(self, conn: AsyncConnection, sql: str,
                   params: dict[str, Any]) -> tuple[int, list[Any], dict, int]:  # fmt: skip
        """total, hits, facets and (window path) how many matches the date window held."""
        stmt = text(sql)
        if params.get("since") is not None:
            stmt = stmt.bindparams(bindparam("since", type_=Date))
        row = (await conn.execute(stmt, params)).one()._mapping
        facets = {k.removeprefix("facet_"): dict(v) for k, v in row.items() if k.startswith("facet_")}
        return int(row["total"]), list(row["hits"]), facets, int(row.get("window") or 0)

    async def _search(self, conn: AsyncConnection, query: SearchQuery) -> SearchResult:
        q = query.q.strip()
        cap = max(self.candidates, query.offset + query.limit)
        base: dict[str, Any] = {"cap": cap, "limit": query.limit,
                "offset": query.offset, "lang": query.lang or "en"}  # fmt: skip
        if not q:
            params = dict(base)
            total, hits, facets, _ = await self._run(conn, _browse_sql(query, params), params)
            return SearchResult(hits=hits, facets=facets, estimated_total=total)
        result = await self._full_text(conn, query, q, base)
        if result.estimated_total < WEAK_MATCH:
            corrected = await self._corrected(conn, q)
            if corrected:  # the original words OR-ed with the corrected ones: what matched still does
                return await self._full_text(conn, query, " or ".join([q, *corrected]), base)
        return result

    async def _full_text(self, conn: AsyncConnection, query: SearchQuery, q: str,
                         base: dict[str, Any]) -> SearchResult:  # fmt: skip
        cap, params = base["cap"], {**base, "q": q}
        path, newest = await self._path(conn, query, q, cap)
        if path == "window":
            since = await self._since(conn, newest)
            for _attempt in range(WINDOW_ATTEMPTS):
                wparams = {**params, "since": since}
                total, hits, facets, window = await self._run(conn, _fts_sql(query, wparams, window=True), wparams)
                if window >= cap or since is None:
                    break
                # Fewer matches in the window than estimated: widen it by what it found, then to every match.
                newest = newest * WINDOW_MARGIN * cap / max(window, 1)
                since = await self._since(conn, newest) if _attempt + 2 < WINDOW_ATTEMPTS else None
        else:
            total, hits, facets, _ = await self._run(conn, _fts_sql(query, params, dense=path == "walk"), params)
        return SearchResult(hits=hits, facets=facets, estimated_total=total)

    async def _corrected(self, conn: AsyncConnection, q: str) -> list[str]:
        """`q` with its misspelt words replaced by the vocabulary's (`corrections`): one query per alternative when a
        word has several, none when no word is misspelt. Negated words (`-word`) stay as they are."""
        spans = [(m.start() + w.start(), m.start() + w.end())
                 for m in _CHUNK.finditer(q) if not m.group().startswith("-")
                 for w in _WORD.finditer(m.group()) if len(w.group()) >= ONE_TYPO][:TYPO_WORDS]  # fmt: skip
        if not spans:
            return []
        rows = (await conn.execute(text(_SUGGESTIONS_SQL), {"words": [q[a:b] for a, b in spans]})).all()
        fixes = [(a, b, alts) for (a, b), (word, known, near) in zip(spans, rows, strict=True)
                 if not known and (alts := corrections(word, list(near)))]  # fmt: skip
        variants = []
        for k in range(max((len(alts) for _, _, alts in fixes), default=0)):
            out, last = [], 0
            for a, b, alts in fixes:
                out += [q[last:a], alts[min(k, len(alts) - 1)]]
                last = b
            variants.append("".join([*out, q[last:]]))
        return variants

    async def _path(self, conn: AsyncConnection, query: SearchQuery, q: str, cap: int) -> tuple[str, float]:
        """How to find the candidates, "bitmap", "walk" or "window", and how many of the newest documents the window
        should span.

        The GIN bitmap reads the term's whole posting list (~BITMAP_US a match), the walk visits the newest rows of
        the filters' scope (a date index) until `cap` match (~WALK_US a row): the walk when DENSE_RATIO × rows it
        visits < the term's matches (planner estimates). A walk is then replaced by the window when that is cheaper
        (WINDOW_US a document in the window, WINDOW_ROW_US a term match in it): same candidates, exactly."""
        params: dict[str, Any] = {"q": q}
        where = _filters(query, params)
        matches = await self._estimate(conn, f"d.tsv @@ ({_TSQUERY}) AND {where}", params)
        rows = await self._table_rows(conn)
        scope = rows
        term = matches
        walked = SearchQuery(kind=query.kind, party=query.party, type=query.type)  # what a date index serves
        wwhere = _filters(walked, {})
        if where != "true":
            term = await self._estimate(conn, f"d.tsv @@ ({_TSQUERY})", {"q": q})
            if wwhere != "true":
                wparams: dict[str, Any] = {}
                scope = await self._estimate(conn, _filters(walked, wparams), wparams)
        visited = scope * min(1.0, cap / max(matches, 1.0))
        if DENSE_RATIO * visited >= term:
            return "bitmap", 0.0
        if wwhere != "true":  # the walk goes through that filter's date index: only its rows are visited
            return "walk", 0.0
        # The estimates above go through the query under all six configurations, duplicates included: a word
        # counts two or three times over. The window is sized on the distinct query the search runs.
        tsq = (await conn.execute(text(f"SELECT {_TSQUERY_DISTINCT}::text"), {"q": q})).scalar_one()
        found = max(await self._estimate(conn, f"d.tsv @@ CAST(:tsq AS tsquery) AND {where}", {**params, "tsq": tsq}),
                    1.0)  # fmt: skip
        hit = min(1.0, found / max(rows, 1.0))  # the share of the walked rows that match
        walk = rows * min(1.0, cap / found) * (WALK_HIT_US * hit + WALK_US * (1 - hit))
        newest = WINDOW_MARGIN * cap * rows / found
        window = newest * (WINDOW_US + WINDOW_ROW_US * hit) + WINDOW_POSTING_US * term
        if newest < WINDOW_MAX_SHARE * rows and window < walk:
            return "window", newest
        return "walk", 0.0

    async def _since(self, conn: AsyncConnection, newest: float) -> date | None:
        """The date of the n-th newest document, n = `newest` rounded up to one of eight steps an octave (at least
        1,024), cached for TABLE_ROWS_TTL (an index-only scan of the date index); None when fewer have a date."""
        step = 1 << max(7, math.floor(math.log2(max(newest, 1))) - 3)  # eight steps an octave, at least 1,024
        n = max(1024, math.ceil(newest / step) * step)
        now = time.monotonic()
        hit = self._dates.get(n)
        if hit is None or hit[0] < now:
            sql = (f"SELECT d.date FROM {TABLE_NAME} d WHERE d.date IS NOT NULL "
                   "ORDER BY d.date DESC NULLS LAST, d.key OFFSET :n LIMIT 1")  # fmt: skip
            hit = (now + TABLE_ROWS_TTL, (await conn.execute(text(sql), {"n": n - 1})).scalar())
            self._dates[n] = hit
        return hit[1]

    async def _estimate(self, conn: AsyncConnection, where: str, params: dict[str, Any]) -> float:
        """The planner's row estimate for `where` (one EXPLAIN, ~1 ms)."""
        sql = f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {TABLE_NAME} d WHERE {where}"
        plan = (await conn.execute(text(sql), params)).scalar_one()
        return float((orjson.loads(plan) if isinstance(plan, str | bytes) else plan)[0]["Plan"]["Plan Rows"])

    async def _table_rows(self, conn: AsyncConnection) -> float:
        now = time.monotonic()
        if self._rows is None or self._rows[0] < now:
            sql = "SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"
            rows = (await conn.execute(text(sql), {"t": TABLE_NAME})).scalar()
            self._rows = (now + TABLE_ROWS_TTL, float(rows or 0))
        return self._rows[1]

    async def stats(self) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(DOCS))).scalar_one()
        return {"index": TABLE_NAME, "documents": count}

    async def get_document(self, key: str) -> Document | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(DOCS).where(DOCS.c.key == key))).first()
        return _document(row._mapping) if row else None

    async def keys(self) -> set[str]:
        async with self.engine.connect() as conn:
            return set((await conn.execute(select(DOCS.c.key))).scalars())

    async def build_and_swap(self, batches: AsyncIterator[list[Document]]) -> int:
        """Fill search_documents_new, then drop the live table and rename the new one, all in one transaction:
        searches keep reading the old table until the commit, then see the new one."""
        build = _table(BUILD_NAME)
        count = 0
        async with self.engine.begin() as conn:
            # A maintenance transaction: filling and indexing a million documents takes minutes, far beyond the
            # per-statement timeout every API connection carries (CHM_STATEMENT_TIMEOUT_MS).
            await conn.execute(text("SET LOCAL statement_timeout = 0"))
            await conn.execute(text(f"DROP TABLE IF EXISTS {BUILD_NAME}"))
            # The secondary indexes are built once the rows are in (a sorted bulk build, several times faster than
            # maintaining three GIN indexes row by row); the primary key stays, ON CONFLICT needs it.
            await conn.execute(text(f"CREATE TABLE {BUILD_NAME} (LIKE {TABLE_NAME} INCLUDING ALL EXCLUDING INDEXES)"))
            await conn.execute(text(f"ALTER TABLE {BUILD_NAME} ADD CONSTRAINT {BUILD_NAME}_pkey PRIMARY KEY (key)"))
            indexes = (await conn.execute(text(
                "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                "WHERE x.indrelid = to_regclass(:t) AND NOT x.indisprimary"), {"t": TABLE_NAME})).all()  # fmt: skip
            async for batch in batches:
                await self._upsert(build, batch, conn)
                count += len(batch)
            await conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            for name, definition in indexes:
                new_name = BUILD_NAME + name.removeprefix(TABLE_NAME) if name.startswith(TABLE_NAME) else name + "_new"
                head, _on, tail = definition.partition(" ON ")
                table_ref, _, rest = tail.partition(" USING ")
                table_ref = table_ref.removesuffix(TABLE_NAME) + BUILD_NAME  # schema-qualified or not
                await conn.execute(text(f'CREATE INDEX "{new_name}" ON {table_ref} USING {rest}'
                                        if not head.startswith("CREATE UNIQUE") else
                                        f'CREATE UNIQUE INDEX "{new_name}" ON {table_ref} USING {rest}'))  # fmt: skip
            # The vocabulary of the new table only: words no document uses any more go.
            await conn.execute(text(f"TRUNCATE {WORDS_NAME}"))
            await conn.execute(text(_vocabulary_sql(BUILD_NAME)))
            await conn.execute(text(f"LOCK TABLE {TABLE_NAME} IN ACCESS EXCLUSIVE MODE"))
            await conn.execute(text(f"DROP TABLE {TABLE_NAME}"))
            await conn.execute(text(f"ALTER TABLE {BUILD_NAME} RENAME TO {TABLE_NAME}"))
            names = (await conn.execute(text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                                             "AND tablename = :t"), {"t": TABLE_NAME})).scalars().all()  # fmt: skip
            for name in names:
                if name.startswith(BUILD_NAME + "_"):
                    new = TABLE_NAME + name.removeprefix(BUILD_NAME)
                    await conn.execute(text(f'ALTER INDEX "{name}" RENAME TO "{new}"'))
        return count
