"""The ceiling: plain Starlette + asyncpg + orjson serving the same page as `GET /api/v1/records`.

Same tables, same columns, same order (updated_at desc, id desc), same JSON shape (`uid`, `draft_status`,
`next_cursor`, `Link` header) and the same cursor format as chm-api, so pages and cursors are
interchangeable; only the stack differs. Anonymous reads only: published records.

    BENCH_DATABASE_URL=postgresql://... uvicorn --app-dir bench baseline:app --loop uvloop --http httptools
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SORT = "-updated_at"
ABBR = {
    "resource": "RES",
    "news": "NEWS",
    "event": "EVT",
    "case-study": "CS",
    "project": "PRJ",
    "national-report": "NR",
    "nbsap": "NBSAP",
    "national-target": "NT",
    "organization": "ORG",
    "expert": "EXP",
}
COLUMNS = (
    "id, serial, party, type, status, revision, title, summary, body, languages, links, keywords, subjects, "
    "gbf_targets, aichi_targets, countries, publication_date, external_id, created_at, updated_at, published_at, "
    "withdrawn_at"
)
FIRST_PAGE = f"SELECT {COLUMNS} FROM records WHERE status = 'published' ORDER BY updated_at DESC, id DESC LIMIT $1"
NEXT_PAGE = (
    f"SELECT {COLUMNS} FROM records WHERE status = 'published' AND (updated_at, id) < ($2, $3) "
    "ORDER BY updated_at DESC, id DESC LIMIT $1"
)
JSON_OPTS = orjson.OPT_UTC_Z  # pydantic writes UTC as "Z"; keep the bytes comparable

pool: asyncpg.Pool | None = None


async def _init(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads
    )


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    global pool
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ["DATABASE_URL"]
    size = int(os.environ.get("CHM_DB_POOL_SIZE", "20"))  # the same as chm-api's default
    pool = await asyncpg.create_pool(
        url,
        min_size=size,
        max_size=size,
        init=_init,
        server_settings={"application_name": "chm-bench-baseline", "jit": "off"},
    )
    try:
        yield
    finally:
        await pool.close()


def _problem(status: int, detail: str) -> Response:
    body = orjson.dumps({"type": "about:blank", "title": "Bad Request", "status": status, "detail": detail})
    return Response(body, status_code=status, media_type="application/problem+json")


def _encode_cursor(updated_at: datetime, rid: uuid.UUID) -> str:
    raw = orjson.dumps([SORT, updated_at.isoformat(), str(rid)])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    if not isinstance(data, list) or len(data) != 3 or data[0] != SORT:
        raise ValueError("not a cursor for this sort")
    return datetime.fromisoformat(data[1]), uuid.UUID(data[2])


def _item(r: asyncpg.Record) -> dict[str, Any]:
    revision = r["revision"]
    return {
        "id": str(r["id"]),  # asyncpg's own UUID type is not one orjson knows
        "uid": f"CHM-{ABBR[r['type']]}-{r['party']}-{r['serial']:06d}-{revision}" if revision else None,
        "party": r["party"],
        "type": r["type"],
        "status": r["status"],
        "revision": revision,
        "title": r["title"],
        "summary": r["summary"],
        "body": r["body"],
        "languages": r["languages"],
        "links": r["links"],
        "keywords": r["keywords"],
        "subjects": r["subjects"],
        "gbf_targets": r["gbf_targets"],
        "aichi_targets": r["aichi_targets"],
        "countries": r["countries"],
        "publication_date": r["publication_date"],
        "external_id": r["external_id"],
        "created_at": r["created_at"],
        "updated_at": r["updated_at"],
        "published_at": r["published_at"],
        "withdrawn_at": r["withdrawn_at"],
        "draft_status": None,
        "draft_updated_at": None,
    }


async def list_records(request: Request) -> Response:
    params = request.query_params
    try:
        limit = int(params.get("limit", "50"))
    except ValueError:
        return _problem(400, "limit must be an integer")
    if not 1 <= limit <= 200:
        return _problem(400, "limit must be between 1 and 200")
    cursor = params.get("cursor")
    assert pool is not None
    async with pool.acquire() as conn:
        if cursor:
            try:
                updated_at, rid = _decode_cursor(cursor)
            except (ValueError, TypeError):
                return _problem(400, "invalid cursor")
            rows = await conn.fetch(NEXT_PAGE, limit + 1, updated_at, rid)
        else:
            rows = await conn.fetch(FIRST_PAGE, limit + 1)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = _encode_cursor(rows[-1]["updated_at"], rows[-1]["id"])
    body = orjson.dumps({"items": [_item(r) for r in rows], "next_cursor": next_cursor}, option=JSON_OPTS)
    headers = {}
    if next_cursor:
        headers["Link"] = f'<{request.url.include_query_params(cursor=next_cursor)}>; rel="next"'
    return Response(body, media_type="application/json", headers=headers)


async def healthz(_: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(routes=[Route("/api/v1/records", list_records), Route("/healthz", healthz)], lifespan=lifespan)
