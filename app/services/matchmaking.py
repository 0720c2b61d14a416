"""Matchmaking (the Bio-Bridge): rank who can help with a cooperation request, and which open requests an
opportunity can serve, with a score in [0, 1] and the reasons that are true of each pair.

Every weight and constant of the ranking is in this module's first block; docs/matchmaking.md explains them.

How a ranking runs (two queries per candidate kind, then plain Python):
1. Retrieve: candidates that are live (open, not expired, published) and eligible, sharing a GBF target or CBD
   subject (with their broader and narrower terms) or at least one word of the query's text (PostgreSQL full
   text over the stored `match_tsv` of every language, GIN-indexed). At most `CANDIDATES_PER_KIND` per kind,
   those with the most shared terms first, then the newest.
2. Score each retrieved candidate feature by feature (each feature in [0, 1]); the score is the weighted mean
   times the kind's factor. A reason is emitted exactly when a feature scored above zero, naming what both
   sides share, so every reason is true of the pair.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth.principal import Principal
from app.errors import BadRequest, NotFound
from app.models.common import LANGS
from app.models.matching import CooperationMatch
from app.models.record import MATCHED_TYPES_SQL
from app.services import cooperation, events, opportunities, reference

# --- the tunable part ----------------------------------------------------------------------------------------

WEIGHTS: dict[str, float] = {
    "gbf_target": 0.25,  # shared Kunming-Montreal targets (goals count through the hierarchy)
    "subject": 0.20,  # shared CBD subjects
    "assistance_type": 0.15,  # the help asked for is the help offered
    "region": 0.10,  # eligibility / the same country, sub-region or grouping (SIDS, LDC, LLDC)
    "language": 0.05,  # at least one language in common
    "text": 0.20,  # words in common (full text, every language, rare words weigh more)
    "recency": 0.05,  # newer candidates first, all else equal
}
# A term matched through the hierarchy (a target against its goal, a subject against a broader subject) counts
# this much per level between them: "a narrower term counts less towards its broader one".
HIERARCHY_CREDIT = 0.5
# How much a geographic match is worth, by the most specific area both sides share.
GEO_CREDIT: dict[str, float] = {
    "country": 1.0,
    "intermediate-region": 0.8,
    "sub-region": 0.7,
    "grouping": 0.7,
    "region": 0.5,
}
OPEN_TO_ALL_CREDIT = 0.3  # an opportunity open to every country: eligible, but not specifically for you
# Candidate kinds: what a cooperation officer acts on first (an open opportunity) to what only hints at help
# (a past request that was matched).
KIND_FACTOR: dict[str, float] = {"opportunity": 1.0, "offer": 0.9, "record": 0.85, "cooperation-request": 0.8}
RECENCY_HALF_LIFE_DAYS = 365.0
TEXT_SATURATION = 0.35  # an idf-weighted cosine at or above this counts as full text similarity
MIN_SCORE = 0.05  # below this a candidate is noise, not a match
CANDIDATES_PER_KIND = 40  # retrieval cap per kind for shared terms (ranking is exact within it)
TEXT_CANDIDATES_PER_KIND = 20  # and for shared distinctive words
RETRIEVAL_MAX_SHARE = 0.02  # a word on more rows than this share of a table does not retrieve (it still scores)
STATS_TTL_SECONDS = 300.0
MAX_TEXT_TERMS = 6  # words named in a text reason
MAX_QUERY_LEXEMES = 32  # the query's longest uncommon words used for retrieval
MATCH_EVENT_THRESHOLD = 0.5  # a new opportunity scoring at least this for an open request is announced
# Parts of the full text that say nothing about fit in this domain (English, French and Spanish stems).
DOMAIN_STOPWORDS = frozenset({
    "biodivers", "biodiversit", "biodiversidad", "nation", "national", "nacional", "support", "soutien", "apoyo",
    "request", "demand", "solicitud", "help", "aid", "ayud", "need", "besoin", "necesid", "countri", "pay", "pai",
    "project", "proyecto", "projet", "programm", "program", "programa", "develop", "developp", "desarroll",
})  # fmt: skip

LIMIT_MAX = 50
DEFAULT_LIMIT = 10
BATCH_MAX = 25  # requests ranked in one call (a GraphQL list asking each for its matches)
KINDS: tuple[str, ...] = ("opportunity", "offer", "record", "cooperation-request")
OPEN_REQUEST_STATUSES = ("open", "in-discussion")

# --- profiles ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Profile:
    """What matchmaking compares of one side of a pair."""

    kind: str
    id: uuid.UUID
    party: str | None
    title: dict[str, str]
    gbf_targets: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    assistance_types: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()  # where it is: the Party, then its coverage
    eligible_countries: tuple[str, ...] = ()  # opportunities: who may apply (both empty: everyone)
    eligible_regions: tuple[str, ...] = ()
    languages: frozenset[str] = frozenset()
    lexemes: frozenset[str] = frozenset()
    updated_at: datetime | None = None
    type: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def restricts_eligibility(self) -> bool:
        return bool(self.eligible_countries or self.eligible_regions)


def _langs(*values: dict[str, str] | None) -> frozenset[str]:
    return frozenset(k for v in values if v for k in v if k in LANGS)


_COLS = "updated_at, tsvector_to_array(coalesce(match_tsv, ''::tsvector)) AS lexemes"
_SQL = {
    "opportunity": f"""
        SELECT id, provider_party AS party, title, description, gbf_targets, subjects, assistance_types,
               eligible_countries, eligible_regions, provider_organization, application_deadline, {_COLS}
        FROM opportunities o WHERE {{where}}""",
    "cooperation-request": f"""
        SELECT id, party, title, problem, objectives, gbf_targets, subjects, assistance_types, countries, status,
               ARRAY(SELECT coalesce(a.provider_party, a.provider_organization) FROM cooperation_offers a
                     WHERE a.request_id = r.id AND a.status = 'accepted' ORDER BY a.created_at) AS providers,
               {_COLS}
        FROM cooperation_requests r WHERE {{where}}""",
    "offer": """
        SELECT o.id, o.provider_party AS party, r.title, o.description, r.gbf_targets, r.subjects,
               r.assistance_types, r.party AS request_party, r.countries, o.provider_organization, o.status,
               o.request_id, o.updated_at,
               tsvector_to_array(coalesce(o.match_tsv, ''::tsvector) || coalesce(r.match_tsv, ''::tsvector))
                 AS lexemes
        FROM cooperation_offers o JOIN cooperation_requests r ON r.id = o.request_id WHERE {where}""",
    "record": f"""
        SELECT id, party, type, title, summary, languages, gbf_targets, subjects, countries, {_COLS}
        FROM records c WHERE {{where}}""",
}
# One row shape for every kind (what each kind's statement above selects, the rest NULL), so the candidates of
# all kinds come in one statement.
_SHAPE: dict[str, str] = {
    "id": "uuid", "party": "text", "type": "text", "title": "jsonb", "description": "jsonb", "problem": "jsonb",
    "objectives": "jsonb", "summary": "jsonb", "languages": "text[]", "gbf_targets": "text[]", "subjects": "text[]",
    "assistance_types": "text[]", "countries": "text[]", "eligible_countries": "text[]",
    "eligible_regions": "text[]", "provider_organization": "text", "application_deadline": "date", "status": "text",
    "providers": "text[]", "request_party": "text", "request_id": "uuid", "updated_at": "timestamptz",
    "lexemes": "text[]",
}  # fmt: skip
_SELECTS: dict[str, frozenset[str]] = {
    "opportunity": frozenset({"id", "party", "title", "description", "gbf_targets", "subjects", "assistance_types",
                              "eligible_countries", "eligible_regions", "provider_organization",
                              "application_deadline", "updated_at", "lexemes"}),
    "cooperation-request": frozenset({"id", "party", "title", "problem", "objectives", "gbf_targets", "subjects",
                                      "assistance_types", "countries", "status", "providers", "updated_at",
                                      "lexemes"}),
    "offer": frozenset({"id", "party", "title", "description", "gbf_targets", "subjects", "assistance_types",
                        "request_party", "countries", "provider_organization", "status", "request_id", "updated_at",
                        "lexemes"}),
    "record": frozenset({"id", "party", "type", "title", "summary", "languages", "gbf_targets", "subjects",
                         "countries", "updated_at", "lexemes"}),
}  # fmt: skip
_ALIAS = {"opportunity": "o", "cooperation-request": "r", "offer": "r", "record": "c"}  # where the terms are
_ID = {"opportunity": "o.id", "cooperation-request": "r.id", "offer": "o.id", "record": "c.id"}
_FROM = {
    "opportunity": "opportunities o",
    "cooperation-request": "cooperation_requests r",
    "offer": "cooperation_offers o JOIN cooperation_requests r ON r.id = o.request_id",
    "record": "records c",
}


def _profile(kind: str, row: Any) -> Profile:
    m = row._mapping
    lexemes = frozenset(m["lexemes"] or ())
    if kind == "opportunity":
        return Profile(kind, m["id"], m["party"], m["title"], tuple(m["gbf_targets"]), tuple(m["subjects"]),
                       tuple(m["assistance_types"]), (), tuple(m["eligible_countries"]), tuple(m["eligible_regions"]),
                       _langs(m["title"], m["description"]), lexemes, m["updated_at"],
                       detail={"provider_organization": m["provider_organization"],
                               "application_deadline": m["application_deadline"]})  # fmt: skip
    if kind == "cooperation-request":
        return Profile(kind, m["id"], m["party"], m["title"], tuple(m["gbf_targets"]), tuple(m["subjects"]),
                       tuple(m["assistance_types"]), (m["party"], *m["countries"]),
                       languages=_langs(m["title"], m["problem"], m["objectives"]), lexemes=lexemes,
                       updated_at=m["updated_at"],
                       detail={"status": m["status"], "providers": list(m["providers"]) or None})  # fmt: skip
    if kind == "offer":
        return Profile(kind, m["id"], m["party"], m["title"], tuple(m["gbf_targets"]), tuple(m["subjects"]),
                       tuple(m["assistance_types"]), (m["request_party"], *m["countries"]),
                       languages=_langs(m["title"], m["description"]), lexemes=lexemes, updated_at=m["updated_at"],
                       detail={"request_id": m["request_id"], "provider_organization": m["provider_organization"],
                               "status": m["status"]})  # fmt: skip
    return Profile(kind, m["id"], m["party"], m["title"], tuple(m["gbf_targets"]), tuple(m["subjects"]), (),
                   (m["party"], *m["countries"]), languages=_langs(m["title"], m["summary"]) | set(m["languages"]),
                   lexemes=lexemes, updated_at=m["updated_at"], type=m["type"])  # fmt: skip


# --- vocabulary context --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Vocab:
    """The hierarchies a ranking reads (cached reference data) and the areas of every country."""

    gbf: reference.Hierarchy
    subjects: reference.Hierarchy
    regions: reference.Hierarchy
    areas_of: dict[str, list[str]]  # country -> codes of the areas containing it, most specific first

    def level(self, region: str) -> str:
        return str(self.regions.extra.get(region, {}).get("level", "region"))

    def eligible_set(self, countries: Iterable[str], regions: Iterable[str]) -> set[str]:
        """Every country an eligibility list admits."""
        out = set(countries)
        for r in regions:
            out |= self.regions.members.get(r, frozenset())
        return out


_AREA_ORDER = {"intermediate-region": 0, "sub-region": 1, "grouping": 2, "region": 3}
_vocab_cache: tuple[reference.Hierarchy, Vocab] | None = None


async def _vocab(conn: AsyncConnection) -> Vocab:
    global _vocab_cache
    regions = await reference.hierarchy(conn, "regions")
    if _vocab_cache is not None and _vocab_cache[0] is regions:
        return _vocab_cache[1]
    vocab = Vocab(await reference.hierarchy(conn, "gbf-targets"), await reference.hierarchy(conn, "cbd-subjects"),
                  regions, {})  # fmt: skip
    for code, members in regions.members.items():
        if vocab.level(code) in _AREA_ORDER:
            for c in members:
                vocab.areas_of.setdefault(c, []).append(code)
    for areas in vocab.areas_of.values():
        areas.sort(key=lambda r: (_AREA_ORDER[vocab.level(r)], r))
    _vocab_cache = (regions, vocab)
    return vocab


# --- features ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class TermIndex:
    """A query's terms of one vocabulary, each with its broader terms (nearest first) and its narrower terms
    (breadth first) and the credit a match through them is worth; built once per ranking, read per candidate."""

    tree: reference.Hierarchy
    entries: list[tuple[str, list[tuple[str, float]], list[tuple[str, float]]]]

    @property
    def count(self) -> int:
        return len(self.entries)


def _term_index(tree: reference.Hierarchy, mine: Sequence[str]) -> TermIndex:
    entries = []
    for term in mine:
        up = [(other, HIERARCHY_CREDIT**depth) for depth, other in enumerate(tree.ancestors(term), start=1)]
        down = [(other, HIERARCHY_CREDIT ** _depth(tree, other, term)) for other in tree.descendants(term)[1:]]
        entries.append((term, up, down))
    return TermIndex(tree, entries)


def _term_matches(index: TermIndex, theirs: Sequence[str]) -> list[tuple[str, str, float]]:
    """(my term, their term, credit) for each of my terms, best match only: exact 1, else HIERARCHY_CREDIT per
    level between a term and its broader or narrower one on the other side (the nearest of each; a tie goes to
    the broader)."""
    if not theirs:
        return []
    their_set = set(theirs)
    out = []
    for term, up, down in index.entries:
        if term in their_set:
            out.append((term, term, 1.0))
            continue
        best = next((m for m in up if m[0] in their_set), None)
        below = next((m for m in down if m[0] in their_set), None)
        if below is not None and (best is None or below[1] > best[1]):
            best = below
        if best is not None:
            out.append((term, best[0], best[1]))
    return out


def _depth(tree: reference.Hierarchy, lower: str, upper: str) -> int:
    ancestors = tree.ancestors(lower)
    return ancestors.index(upper) + 1 if upper in ancestors else 1


def _set_score(credit: float, n_mine: int, n_theirs: int) -> float:
    """A cosine over term sets with partial credits: the share of both sides the overlap covers."""
    if not n_mine or not n_theirs:
        return 0.0
    return min(1.0, credit / math.sqrt(n_mine * n_theirs))


def _term_reasons(kind: str, tree: reference.Hierarchy, matches: list[tuple[str, str, float]]) -> list[dict[str, Any]]:
    reasons = []
    for mine, theirs, credit in matches:
        reason: dict[str, Any] = {"kind": kind, "term": mine, "label": tree.label(mine)}
        if theirs != mine:
            relation = "broader" if theirs in tree.ancestors(mine) else "narrower"
            reason.update(relation=relation, matched=theirs, matched_label=tree.label(theirs), credit=credit)
        reasons.append(reason)
    return reasons


def _geo(vocab: Vocab, q: Profile, c: Profile) -> tuple[float, list[dict[str, Any]]] | None:
    """Geographic fit; None when an opportunity's eligibility excludes the other side."""
    offer, other = (q, c) if q.kind == "opportunity" else (c, q) if c.kind == "opportunity" else (None, None)
    if offer is not None and other is not None:
        if not offer.restricts_eligibility:
            return OPEN_TO_ALL_CREDIT, []
        country = other.party
        if country is None:
            return None
        if country in offer.eligible_countries:
            return GEO_CREDIT["country"], [{"kind": "country", "term": country}]
        best: tuple[float, str] | None = None
        for region in offer.eligible_regions:
            if country in vocab.regions.members.get(region, frozenset()):
                credit = GEO_CREDIT.get(vocab.level(region), GEO_CREDIT["region"])
                if best is None or credit > best[0]:
                    best = (credit, region)
        if best is None:
            return None
        return best[0], [{"kind": "region", "term": best[1], "label": vocab.regions.label(best[1]), "country": country}]
    if not c.countries:
        return 0.0, []
    places = dict.fromkeys(q.countries)
    theirs = set(c.countries)
    shared = next((x for x in places if x in theirs), None)
    if shared is not None:
        return GEO_CREDIT["country"], [{"kind": "country", "term": shared}]
    their_areas = {r: x for x in c.countries for r in vocab.areas_of.get(x, ())}
    for mine in places:
        for region in vocab.areas_of.get(mine, ()):
            if region in their_areas:
                credit = GEO_CREDIT.get(vocab.level(region), GEO_CREDIT["region"])
                return credit, [{"kind": "region", "term": region, "label": vocab.regions.label(region),
                                 "countries": [mine, their_areas[region]]}]  # fmt: skip
    return 0.0, []


def _recency(updated_at: datetime | None, now: datetime) -> float:
    if updated_at is None:
        return 0.0
    age_days = max(0.0, (now - updated_at).total_seconds() / 86400)
    return 0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS)


@dataclass(slots=True)
class RankContext:
    """What one ranking compares every candidate with: the query's terms through the hierarchies, and its words
    (lexemes with their idf over the candidate pool, and a readable word for each)."""

    gbf: TermIndex
    subjects: TermIndex
    lexemes: frozenset[str]
    idf: dict[str, float]
    words: dict[str, str]
    norm: float
    default_idf: float  # the idf of a word of the candidate the query does not have (as rare as can be)


def _text(ctx: RankContext, c: Profile) -> tuple[float, frozenset[str]]:
    """The idf-weighted cosine of the two sides' words (saturating at TEXT_SATURATION) and the shared lexemes."""
    if not ctx.lexemes or not c.lexemes or ctx.norm == 0:
        return 0.0, frozenset()
    shared = ctx.lexemes & c.lexemes
    if not shared:
        return 0.0, shared
    # The candidate's words are the shared ones (the query's idf) and the others (default_idf each); the query's
    # words hold no domain stopword, so neither does `shared`.
    num = sum(ctx.idf[lx] ** 2 for lx in shared)
    others = len(c.lexemes) - len(c.lexemes & DOMAIN_STOPWORDS) - len(shared)
    den = ctx.norm * math.sqrt(num + others * ctx.default_idf**2 or 1.0)
    sim = num / den if den else 0.0
    return min(1.0, sim / TEXT_SATURATION), shared


def _text_terms(ctx: RankContext, shared: frozenset[str]) -> list[str]:
    """Up to MAX_TEXT_TERMS shared words, rarest first, as the query wrote them."""
    ranked = sorted(shared, key=lambda lx: (-ctx.idf.get(lx, 0.0), ctx.words.get(lx, lx)))
    return list(dict.fromkeys(ctx.words.get(lx, lx) for lx in ranked))[:MAX_TEXT_TERMS]


@dataclass(slots=True)
class Scored:
    """A candidate's score, features and what its reasons will name (built for the returned matches only)."""

    c: Profile
    score: float
    features: dict[str, float]
    gbf: list[tuple[str, str, float]]
    subjects: list[tuple[str, str, float]]
    assistance_types: list[str]
    shared_lexemes: frozenset[str]
    geo_reasons: list[dict[str, Any]]
    languages: list[str]


def score(vocab: Vocab, ctx: RankContext, q: Profile, c: Profile, now: datetime) -> Scored | None:
    """The score of candidate `c` for query `q`, or None when it is no match at all."""
    geo = _geo(vocab, q, c)
    if geo is None:
        return None
    gbf = _term_matches(ctx.gbf, c.gbf_targets)
    subj = _term_matches(ctx.subjects, c.subjects)
    shared_types = [t for t in q.assistance_types if t in c.assistance_types] if c.assistance_types else []
    text_score, shared_lexemes = _text(ctx, c)
    if not (gbf or subj or shared_types or shared_lexemes):  # nothing in common but place, language or age
        return None
    langs = sorted(q.languages & c.languages, key=LANGS.index)
    features = {
        "gbf_target": _set_score(sum(m[2] for m in gbf), ctx.gbf.count, len(c.gbf_targets)),
        "subject": _set_score(sum(m[2] for m in subj), ctx.subjects.count, len(c.subjects)),
        "assistance_type": _set_score(len(shared_types), len(q.assistance_types), len(c.assistance_types)),
        "text": text_score,
        "region": geo[0],
        "language": 1.0 if langs else 0.0,
        "recency": _recency(c.updated_at, now),
    }
    total = sum(WEIGHTS.values())
    value = KIND_FACTOR[c.kind] * sum(WEIGHTS[k] * v for k, v in features.items()) / total
    if value < MIN_SCORE:
        return None
    return Scored(c, round(min(1.0, max(0.0, value)), 4), features, gbf, subj, shared_types, shared_lexemes, geo[1],
                  langs)  # fmt: skip


def _match(vocab: Vocab, ctx: RankContext, s: Scored) -> dict[str, Any]:
    """A scored candidate as the API shows it: score, reasons (each naming what both sides share), features."""
    reasons = _term_reasons("gbf_target", vocab.gbf, s.gbf) + _term_reasons("subject", vocab.subjects, s.subjects)
    reasons += [{"kind": "assistance_type", "term": t} for t in s.assistance_types]
    if s.shared_lexemes:
        reasons.append({"kind": "text", "terms": _text_terms(ctx, s.shared_lexemes)})
    reasons += s.geo_reasons
    if s.languages:
        reasons.append({"kind": "language", "terms": s.languages})
    c = s.c
    return {"kind": c.kind, "id": c.id, "type": c.type, "party": c.party, "title": c.title, "score": s.score,
            "reasons": reasons, "features": {k: round(v, 4) for k, v in s.features.items()},
            "detail": c.detail}  # fmt: skip


# --- retrieval -----------------------------------------------------------------------------------------------


def _expand(tree: reference.Hierarchy, terms: Iterable[str]) -> list[str]:
    out: list[str] = []
    for t in terms:
        out += [t, *tree.ancestors(t), *tree.descendants(t)[1:]]
    return list(dict.fromkeys(out))


def _tsquery(lexemes: Iterable[str]) -> str:
    parts = ["'" + lx.replace("\\", "\\\\").replace("'", "''") + "'" for lx in lexemes]
    return " | ".join(parts)


def _live_where(kind: str, q: Profile, vocab: Vocab, params: dict[str, Any]) -> str:
    """Which candidates may appear at all: live, eligible, not the query itself, not the query's own Party's
    offers of help."""
    if kind == "opportunity":
        params["party_areas"] = vocab.areas_of.get(q.party or "", [])
        return (
            "o.status = 'open' AND (o.application_deadline IS NULL OR o.application_deadline >= :today)"
            " AND o.provider_party IS DISTINCT FROM :party"
            " AND ((cardinality(o.eligible_countries) = 0 AND cardinality(o.eligible_regions) = 0)"
            "      OR :party = ANY(o.eligible_countries) OR o.eligible_regions && CAST(:party_areas AS text[]))"
        )
    if kind == "offer":
        # Offers on matched requests surface as those requests (with their providers), not a second time.
        return (
            "o.status IN ('proposed', 'accepted') AND r.status IN ('open', 'in-discussion') AND r.id <> :self"
            " AND o.provider_party IS DISTINCT FROM :party"
        )
    if kind == "record":
        # Written as the partial index ix_records_match_terms' predicate, so the planner can use it.
        return f"c.status = 'published' AND c.type IN {MATCHED_TYPES_SQL}"
    # cooperation requests: past matched ones for a request, open ones for an opportunity
    if q.kind == "opportunity":
        cond = (
            "r.status IN ('open', 'in-discussion') AND (r.end_date IS NULL OR r.end_date >= :today)"
            " AND r.party IS DISTINCT FROM :party"
        )
        if q.restricts_eligibility:
            params["eligible"] = sorted(vocab.eligible_set(q.eligible_countries, q.eligible_regions))
            cond += " AND r.party = ANY(CAST(:eligible AS text[]))"
        return cond
    return "r.status = 'matched' AND r.id <> :self"


_TABLE = {"opportunity": "opportunities", "cooperation-request": "cooperation_requests",
          "offer": "cooperation_offers", "record": "records"}  # fmt: skip
_common: tuple[float, dict[str, frozenset[str]]] | None = None


async def _common_lexemes(conn: AsyncConnection) -> dict[str, frozenset[str]]:
    """Per table, the words on more than RETRIEVAL_MAX_SHARE of rows, from the planner's statistics (ANALYZE's
    most common elements of `match_tsv`; re-read every STATS_TTL_SECONDS). Such words still score; they only
    do not retrieve, or a common word would pull in most of a table."""
    global _common
    now = time.monotonic()
    if _common is not None and now - _common[0] < STATS_TTL_SECONDS:
        return _common[1]
    rows = await conn.execute(text(
        "SELECT tablename, CAST(CAST(most_common_elems AS text) AS text[]), most_common_elem_freqs FROM pg_stats "
        "WHERE schemaname = 'public' AND attname = 'match_tsv' AND most_common_elems IS NOT NULL"))  # fmt: skip
    found: dict[str, frozenset[str]] = {}
    for table, elems, freqs in rows:
        found[table] = frozenset(e for e, f in zip(elems, freqs, strict=False) if f > RETRIEVAL_MAX_SHARE)
    _common = (now, found)
    return found


def _candidates(kind: str, q: Profile, vocab: Vocab, lexemes: list[str], common: frozenset[str], today: date,
                n: int) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """Query `n`'s candidates of one kind, as SQL with its own parameters (suffixed `_n`): the ids of two capped
    lists, live candidates sharing a term (most kinds of terms shared first, then newest; GIN `&&` on the term
    arrays) and live candidates sharing the query's distinctive words (by ts_rank; GIN on `match_tsv`), then the
    full rows of those ids only (by primary key), so the wide columns and text vectors are read for a few dozen
    rows, not for every row that shares a term."""
    a = _ALIAS[kind]
    params: dict[str, Any] = {"self": q.id, "party": q.party, "today": today, "n": CANDIDATES_PER_KIND,
                              "nt": TEXT_CANDIDATES_PER_KIND}  # fmt: skip
    params["gq"], params["sq"] = _expand(vocab.gbf, q.gbf_targets), _expand(vocab.subjects, q.subjects)
    params["aq"] = list(q.assistance_types)
    live = _live_where(kind, q, vocab, params)
    updated = "o.updated_at" if kind == "offer" else f"{a}.updated_at"
    shared = f"({a}.gbf_targets && CAST(:gq AS text[]))::int + ({a}.subjects && CAST(:sq AS text[]))::int"
    if kind != "record":
        shared += f" + ({a}.assistance_types && CAST(:aq AS text[]))::int"
    terms = f"{a}.gbf_targets && CAST(:gq AS text[]) OR {a}.subjects && CAST(:sq AS text[])"
    key, source = _ID[kind], _FROM[kind]
    picks = [f"(SELECT {key} FROM {source} WHERE ({live}) AND ({terms}) ORDER BY {shared} DESC, {updated} DESC,"
             f" {key} LIMIT :n)"]  # fmt: skip
    distinctive = [lx for lx in lexemes if lx not in common][:MAX_QUERY_LEXEMES]
    if distinctive:
        params["tsq"] = _tsquery(distinctive)
        tsv = "o.match_tsv" if kind == "offer" else f"{a}.match_tsv"  # an offer: its own words
        rank = f"ts_rank({tsv}, CAST(:tsq AS tsquery), 1)"
        picks.append(f"(SELECT {key} FROM {source} WHERE ({live}) AND {tsv} @@ CAST(:tsq AS tsquery)"
                     f" ORDER BY {rank} DESC, {updated} DESC, {key} LIMIT :nt)")  # fmt: skip
    # ARRAY(...) is computed once (an InitPlan), then the rows come by primary key; a candidate in both lists
    # counts once.
    where = _PARAM.sub(rf":{_SLUG[kind]}_\1_{n}", f"{key} = ANY(ARRAY({' UNION '.join(picks)}))")
    shape = ", ".join(f"CAST({'x.' + c if c in _SELECTS[kind] else 'NULL'} AS {t}) AS {c}" for c, t in _SHAPE.items())
    sql = f"SELECT '{kind}' AS kind, {n} AS query, {shape} FROM ({_SQL[kind].format(where=where)}) AS x"
    return sql, {f"{_SLUG[kind]}_{k}_{n}": v for k, v in params.items()}


_PARAM = re.compile(r"(?<![:\w]):(\w+)")
_SLUG = {"opportunity": "o", "cooperation-request": "r", "offer": "f", "record": "c"}  # parameter prefixes


async def _retrieve(conn: AsyncConnection, kinds: Sequence[str], queries: Sequence[tuple[Profile, list[str]]],
                    vocab: Vocab, today: date) -> list[list[Profile]]:  # fmt: skip
    """Each query's candidates of every kind (query, its retrieval lexemes), in one round trip for all."""
    stats = await _common_lexemes(conn)
    parts, params = [], {}
    for kind in kinds:
        common = stats.get(_TABLE[kind], frozenset())
        for n, (q, lexemes) in enumerate(queries):
            sql, p = _candidates(kind, q, vocab, lexemes, common, today, n)
            parts.append(sql)
            params.update(p)
    pools: list[list[Profile]] = [[] for _ in queries]
    if parts:
        for r in await conn.execute(text(" UNION ALL ".join(parts)), params):
            pools[r.query].append(_profile(r.kind, r))
    return pools


async def _words(conn: AsyncConnection, texts: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """For each query's text: lexeme -> the first word of it that stems to that lexeme (what a text reason
    shows); one statement for any number of queries."""
    words: list[tuple[int, str, str]] = []
    for n, q_texts in enumerate(texts):
        for lang, value in q_texts.items():
            for w in dict.fromkeys(re.findall(r"\w{3,}", value.lower())):
                words.append((n, lang, w))
    out: list[dict[str, str]] = [{} for _ in texts]
    if not words:
        return out
    cfg = {"en": "english", "fr": "french", "es": "spanish", "ru": "russian", "ar": "arabic", "zh": "simple"}
    sql = text("""
        SELECT w.q, w.word, lx
        FROM unnest(CAST(:qs AS int[]), CAST(:langs AS text[]), CAST(:words AS text[])) WITH ORDINALITY
               AS w(q, lang, word, i),
             LATERAL unnest(tsvector_to_array(to_tsvector(CAST(CAST(:cfgs AS jsonb) ->> w.lang AS regconfig),
                                                          public.chm_unaccent(w.word)))) AS lx
        ORDER BY w.i
    """)
    import orjson

    rows = await conn.execute(sql, {"qs": [n for n, _, _ in words], "langs": [lang for _, lang, _ in words],
                                    "words": [w for _, _, w in words], "cfgs": orjson.dumps(cfg).decode()})  # fmt: skip
    for n, word, lx in rows:
        out[n].setdefault(lx, word)
    return out


def _texts(*values: dict[str, str] | None) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    for v in values:
        for lang, t in (v or {}).items():
            out.setdefault(lang, []).append(t)
    return {lang: " ".join(ts) for lang, ts in out.items()}


def _context(vocab: Vocab, q: Profile, pool: list[Profile], words: dict[str, str]) -> RankContext:
    lexemes = frozenset(q.lexemes - DOMAIN_STOPWORDS)
    n = len(pool)
    df: dict[str, int] = {}
    for c in pool:
        for lx in c.lexemes & lexemes:
            df[lx] = df.get(lx, 0) + 1
    idf = {lx: math.log((n + 1) / (df.get(lx, 0) + 0.5)) + 1.0 for lx in lexemes}
    norm = math.sqrt(sum(v * v for v in idf.values()))
    return RankContext(_term_index(vocab.gbf, q.gbf_targets), _term_index(vocab.subjects, q.subjects), lexemes, idf,
                       words, norm, math.log((n + 1) / 0.5) + 1.0)  # fmt: skip


def _check_limit(limit: int, kinds: Sequence[str] | None) -> None:
    if not 1 <= limit <= LIMIT_MAX:
        raise BadRequest(f"limit must be 1–{LIMIT_MAX}", errors=[{"loc": ["query", "limit"], "type": "value_error",
                         "msg": f"must be between 1 and {LIMIT_MAX}"}])  # fmt: skip
    for k in kinds or ():
        if k not in KINDS:
            raise BadRequest(f"unknown kind '{k}'", errors=[{"loc": ["query", "kind"], "type": "value_error",
                             "msg": f"must be one of {', '.join(KINDS)}"}])  # fmt: skip


async def _rank(conn: AsyncConnection, queries: Sequence[tuple[Profile, dict[str, str]]], kinds: Sequence[str],
                limit: int, now: datetime | None = None) -> list[list[dict[str, Any]]]:  # fmt: skip
    """Rank candidates of `kinds` for each (query, its texts): one statement for the candidates and one for the
    words, whatever the number of queries and kinds, then scoring in Python."""
    now = now or datetime.now(UTC)
    vocab = await _vocab(conn)
    # Longer words first: they tend to be the specific ones ("mangrove" before "area").
    retrieval = [(q, sorted(q.lexemes - DOMAIN_STOPWORDS, key=lambda lx: (-len(lx), lx))[:MAX_QUERY_LEXEMES])
                 for q, _ in queries]  # fmt: skip
    pools = await _retrieve(conn, kinds, retrieval, vocab, now.date())
    with_pool = [n for n, pool in enumerate(pools) if pool]
    words = dict(zip(with_pool, await _words(conn, [queries[n][1] for n in with_pool]), strict=True))
    out = []
    for n, ((q, _), pool) in enumerate(zip(queries, pools, strict=True)):
        ctx = _context(vocab, q, pool, words.get(n, {}))
        scored = [s for c in pool if (s := score(vocab, ctx, q, c, now)) is not None]
        scored.sort(key=lambda s: (-s.score, str(s.c.id)))
        out.append([_match(vocab, ctx, s) for s in scored[:limit]])
    return out


# --- entry points --------------------------------------------------------------------------------------------

REQUEST_KINDS = KINDS  # candidates for a request
OPPORTUNITY_KINDS = ("cooperation-request",)  # candidates for an opportunity: open requests


async def _request_profiles(conn: AsyncConnection, principal: Principal, request_ids: Sequence[uuid.UUID]
                           ) -> dict[uuid.UUID, tuple[Profile, dict]]:  # fmt: skip
    """The profiles and texts of the requests the caller may see, by id."""
    visible = await cooperation.visible_ids(conn, principal, request_ids)  # visibility lives there
    if not visible:
        return {}
    sql = text(_SQL["cooperation-request"].format(where="r.id = ANY(CAST(:ids AS uuid[]))"))
    out = {}
    for row in await conn.execute(sql, {"ids": list(visible)}):
        m = row._mapping
        out[m["id"]] = _profile("cooperation-request", row), _texts(m["title"], m["problem"], m["objectives"])
    return out


async def _opportunity_profile(conn: AsyncConnection, principal: Principal, opportunity_id: uuid.UUID
                               ) -> tuple[Profile, dict]:  # fmt: skip
    opp = await opportunities.get_opportunity(conn, principal, opportunity_id)
    row = (await conn.execute(text(_SQL["opportunity"].format(where="o.id = :id")), {"id": opportunity_id})).one()
    return _profile("opportunity", row), _texts(opp["title"], opp["description"])


def _check_batch(asked: int, what: str) -> None:
    if asked > BATCH_MAX:
        raise BadRequest(f"matches are ranked for at most {BATCH_MAX} {what} per query ({asked} asked); "
                         f"ask for fewer {what} (first: {BATCH_MAX})",
                         errors=[{"loc": ["matches"], "type": "value_error",
                                  "msg": f"at most {BATCH_MAX} {what} per query"}])  # fmt: skip


async def matches_for_request(
    conn: AsyncConnection, principal: Principal, request_id: uuid.UUID, *, limit: int = DEFAULT_LIMIT,
    kinds: Sequence[str] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Who can help with a request: opportunities, offers on similar requests, experts, organizations and projects,
    and similar past requests that were matched; best first."""
    _check_limit(limit, kinds)
    found = await _request_profiles(conn, principal, [request_id])
    if request_id not in found:
        raise NotFound(f"no cooperation request {request_id}")
    (ranked,) = await _rank(conn, [found[request_id]], [k for k in REQUEST_KINDS if not kinds or k in kinds], limit)
    return ranked


async def matches_for_requests(
    conn: AsyncConnection, principal: Principal, request_ids: Sequence[uuid.UUID], *, limit: int = DEFAULT_LIMIT,
    kinds: Sequence[str] | None = None,
) -> list[list[dict[str, Any]]]:  # fmt: skip
    """`matches_for_request` for up to BATCH_MAX requests at once (a GraphQL list), in as many statements as for
    one; a request the caller cannot see has none."""
    _check_limit(limit, kinds)
    _check_batch(len(request_ids), "requests")
    found = await _request_profiles(conn, principal, request_ids)
    ids = [i for i in dict.fromkeys(request_ids) if i in found]
    wanted = [k for k in REQUEST_KINDS if not kinds or k in kinds]
    ranked = dict(zip(ids, await _rank(conn, [found[i] for i in ids], wanted, limit) if ids else [], strict=True))
    return [ranked.get(i, []) for i in request_ids]


async def matches_for_opportunity(
    conn: AsyncConnection, principal: Principal, opportunity_id: uuid.UUID, *, limit: int = DEFAULT_LIMIT
) -> list[dict[str, Any]]:
    """The open, unexpired, eligible requests an opportunity can serve; best first."""
    _check_limit(limit, None)
    q, texts = await _opportunity_profile(conn, principal, opportunity_id)
    (ranked,) = await _rank(conn, [(q, texts)], OPPORTUNITY_KINDS, limit)
    return ranked


async def matches_for_opportunities(
    conn: AsyncConnection, principal: Principal, opportunity_ids: Sequence[uuid.UUID], *, limit: int = DEFAULT_LIMIT
) -> list[list[dict[str, Any]]]:
    """`matches_for_opportunity` for up to BATCH_MAX opportunities at once (a GraphQL list), ranked in one call."""
    _check_limit(limit, None)
    _check_batch(len(opportunity_ids), "opportunities")
    ids = list(dict.fromkeys(opportunity_ids))
    profiles = [await _opportunity_profile(conn, principal, i) for i in ids]
    ranked = dict(zip(ids, await _rank(conn, profiles, OPPORTUNITY_KINDS, limit) if ids else [], strict=True))
    return [ranked[i] for i in opportunity_ids]


def settings() -> dict[str, Any]:
    """The ranking's weights and constants, as the API and the benchmark print them."""
    return {"weights": WEIGHTS, "hierarchy_credit": HIERARCHY_CREDIT, "geo_credit": GEO_CREDIT,
            "open_to_all_credit": OPEN_TO_ALL_CREDIT, "kind_factor": KIND_FACTOR,
            "recency_half_life_days": RECENCY_HALF_LIFE_DAYS, "text_saturation": TEXT_SATURATION,
            "min_score": MIN_SCORE, "candidates_per_kind": CANDIDATES_PER_KIND,
            "text_candidates_per_kind": TEXT_CANDIDATES_PER_KIND,
            "retrieval_max_share": RETRIEVAL_MAX_SHARE}  # fmt: skip


def answer(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A ranking as the MatchList shape: the matches and the weights and constants that produced them."""
    return {"items": items, "weights": WEIGHTS, "settings": {k: v for k, v in settings().items() if k != "weights"}}


CM = CooperationMatch.__table__  # type: ignore[attr-defined]
MATCH_KIND = "cooperation-match"


async def announce(session: Any, principal: Principal, opportunity_id: uuid.UUID) -> list[dict[str, Any]]:
    """Record, once per pair, the open requests a just-written open opportunity scores at least
    `MATCH_EVENT_THRESHOLD` for, each with a change-log entry (webhook event `cooperation.match`); in the
    writer's transaction. Ranked as the public sees it (anonymous)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    from app.auth.principal import ANONYMOUS

    conn = await session.connection()
    found = await matches_for_opportunity(conn, ANONYMOUS, opportunity_id, limit=LIMIT_MAX)
    strong = [m for m in found if m["score"] >= MATCH_EVENT_THRESHOLD]
    if not strong:
        return []
    rows = [{"id": uuid.uuid4(), "request_id": m["id"], "opportunity_id": opportunity_id, "score": m["score"],
             "reasons": m["reasons"]} for m in strong]  # fmt: skip
    stmt = pg_insert(CM).values(rows).on_conflict_do_nothing(index_elements=["request_id", "opportunity_id"])
    inserted = {r.request_id: r.id for r in await session.execute(stmt.returning(CM.c.id, CM.c.request_id))}
    announced = [m for m in strong if m["id"] in inserted]
    await events.emit(session, principal, [
        events.Event(action="cooperation.match", kind=MATCH_KIND, entity_id=str(inserted[m["id"]]), party=m["party"],
                     op="create", detail={"request_id": str(m["id"]), "opportunity_id": str(opportunity_id),
                                          "score": m["score"]})
        for m in announced
    ])  # fmt: skip
    return announced
