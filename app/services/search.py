"""Search across records, nodes, decisions and cooperation requests (REST and GraphQL share this)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app import registry
from app.auth.principal import Principal
from app.errors import AppError, BadRequest
from app.models.common import LANGS
from app.models.decision import DECISION_BODIES
from app.models.record import RECORD_TYPES
from app.search import get_backend
from app.search.backend import FACETS, EngineError, EngineUnavailable, SearchQuery
from app.services import reference

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
MAX_OFFSET = 1000
MAX_QUERY = 500
TYPES: tuple[str, ...] = (*RECORD_TYPES, *DECISION_BODIES)


class SearchUnavailable(AppError):
    """The search engine cannot answer right now."""

    status = 503
    code = "SEARCH_UNAVAILABLE"
    title = "Search unavailable"


def _bad(param: str, detail: str, msg: str) -> BadRequest:
    return BadRequest(detail, errors=[{"loc": ["query", param], "msg": msg, "type": "value_error"}])


def _check_choice(param: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise _bad(param, f"unknown {param} '{value}'", f"must be one of {', '.join(allowed)}")
    return value


def parse_facets(facets: str | list[str] | None) -> tuple[str, ...]:
    """`type,party` (or a list) → validated facet names, in request order, without repeats."""
    if not facets:
        return ()
    items = facets.split(",") if isinstance(facets, str) else facets
    names = tuple(dict.fromkeys(f.strip() for f in items if f.strip()))
    unknown = [f for f in names if f not in FACETS]
    if unknown:
        raise _bad(
            "facets", f"unknown facet(s) {', '.join(unknown)}", f"facets are a comma list of {', '.join(FACETS)}"
        )
    return names


async def build_query(
    conn: AsyncConnection, *, q: str | None, kind: str | None, party: str | None, type: str | None,
    subject: str | None, gbf_target: str | None, lang: str | None, facets: str | list[str] | None,
    limit: int, offset: int,
) -> SearchQuery:  # fmt: skip
    """Validate every parameter; unknown values are a 400 naming the parameter."""
    q = (q or "").strip()
    if len(q) > MAX_QUERY:
        raise _bad("q", f"q is longer than {MAX_QUERY} characters", f"at most {MAX_QUERY} characters")
    if not 1 <= limit <= MAX_LIMIT:
        raise _bad("limit", f"limit must be between 1 and {MAX_LIMIT}", f"1–{MAX_LIMIT}")
    if offset < 0:
        raise _bad("offset", "offset must not be negative", "≥ 0")
    if offset > MAX_OFFSET:
        raise _bad("offset", f"offset is capped at {MAX_OFFSET}: search ranks the best matches; to walk every "
                   "item use the list endpoints (/api/v1/records?cursor=…) or the change feed (/api/v1/changes)",
                   f"at most {MAX_OFFSET}")  # fmt: skip
    return SearchQuery(
        q=q,
        kind=_check_choice("kind", kind, registry.SEARCH_KINDS),
        party=await reference.check_party_filter(conn, party),
        type=_check_choice("type", type, TYPES),
        subject=await reference.check_term_filter(conn, "subject", subject),
        gbf_target=await reference.check_term_filter(conn, "gbf_target", gbf_target),
        lang=_check_choice("lang", lang, LANGS),
        facets=parse_facets(facets),
        limit=limit,
        offset=offset,
    )


async def search(
    conn: AsyncConnection,
    principal: Principal,
    *,
    q: str | None = None,
    kind: str | None = None,
    party: str | None = None,
    type: str | None = None,
    subject: str | None = None,
    gbf_target: str | None = None,
    lang: str | None = None,
    facets: str | list[str] | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> dict[str, Any]:
    """Ranked hits, facet counts and an estimated total; only published content is ever in the index."""
    started = time.perf_counter()
    query = await build_query(conn, q=q, kind=kind, party=party, type=type, subject=subject, gbf_target=gbf_target,
                              lang=lang, facets=facets, limit=limit, offset=offset)  # fmt: skip
    try:
        result = await get_backend().search(query, conn=conn)
    except EngineUnavailable as exc:
        raise SearchUnavailable("the search engine is unreachable; try again shortly", retry_after=5) from exc
    except EngineError as exc:
        raise SearchUnavailable(f"the search engine failed: {exc}") from exc
    return {
        "hits": result.hits,
        "facets": {f: result.facets.get(f, {}) for f in query.facets},
        "estimated_total": result.estimated_total,
        "processing_ms": round((time.perf_counter() - started) * 1000, 2),
    }


async def status(conn: AsyncConnection, principal: Principal) -> dict[str, Any]:
    """Which engine, how far behind the index is, and (for the Secretariat) what last went wrong."""
    row = (await conn.execute(text(
        "SELECT count(*) FILTER (WHERE NOT parked) AS backlog, count(*) FILTER (WHERE parked) AS parked, "
        "extract(epoch FROM now() - min(created_at) FILTER (WHERE NOT parked)) AS oldest "
        "FROM search_outbox WHERE done_at IS NULL"))).one()  # fmt: skip
    last_error = (await conn.execute(text(
        "SELECT last_error FROM search_outbox WHERE done_at IS NULL AND last_error IS NOT NULL "
        "ORDER BY next_attempt_at DESC, id DESC LIMIT 1"))).scalar()  # fmt: skip
    backend = get_backend()
    out: dict[str, Any] = {"backend": backend.name, "backlog": row.backlog, "parked": row.parked,
                           "oldest_pending_seconds": float(row.oldest) if row.oldest is not None else None,
                           "last_error": last_error}  # fmt: skip
    try:
        out.update(await backend.stats())
    except EngineError as exc:
        out["engine_error"] = str(exc)
    if not principal.is_secretariat:  # engine error texts can name hosts and keys: operators only
        if out["last_error"]:
            out["last_error"] = "hidden"
        if "engine_error" in out:
            out["engine_error"] = "unavailable"
    return out
