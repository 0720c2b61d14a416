"""The ceiling: plain Starlette + asyncpg + orjson serving the same pages as chm-api's anonymous reads.

`GET /api/v1/records` (`limit`, `cursor`, `party`, `type`) and `GET /api/v1/records/{id}`: same tables, same
columns, same order (updated_at desc, id desc), same JSON (`uid`, `draft_status`, `next_cursor`, `Link` header)
and the same signed cursors as chm-api (HMAC over the same `CHM_SECRET_KEY`), so pages and cursors are
interchangeable; only the stack differs. Anonymous reads only: published records. Every request reads the
database (no cache): the ceiling for a Python server that does.

    BENCH_DATABASE_URL=postgresql://... uvicorn --app-dir bench baseline:app --loop uvloop --http httptools
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
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
ONE = f"SELECT {COLUMNS} FROM records WHERE id = $1 AND status = 'published'"
PARTIES = "SELECT code FROM parties"
JSON_OPTS = orjson.OPT_UTC_Z  # pydantic writes UTC as "Z"; keep the bytes comparable
LIST_PARAMS = frozenset({"limit", "cursor", "party", "type"})
# chm-api's cursor signing (app/services/signing.py): base64url(payload) "." base64url(HMAC-SHA256[:16]).
_SECRET = os.environ.get("CHM_SECRET_KEY") or secrets.token_urlsafe(32)  # unset: cursors are not chm-api's
_KEY = hmac.new(_SECRET.encode(), b"chm-api signing v1", hashlib.sha256).digest()
_PURPOSE = b"keyset-cursor\x00"


def _page_sql(party: bool, rtype: bool, after: bool) -> str:
    """The keyset query for one combination of filters (built once each, so asyncpg prepares it once)."""
    where, n = ["status = 'published'"], 1
    for on, col in ((party, "party"), (rtype, "type")):
        if on:
            n += 1
            where.append(f"{col} = ${n}")
    if after:
        where.append(f"(updated_at, id) < (${n + 1}, ${n + 2})")
    return f"SELECT {COLUMNS} FROM records WHERE {' AND '.join(where)} ORDER BY updated_at DESC, id DESC LIMIT $1"


PAGE_SQL = {(p, t, a): _page_sql(p, t, a) for p in (False, True) for t in (False, True) for a in (False, True)}

pool: asyncpg.Pool | None = None
party_codes: frozenset[str] = frozenset()


async def _init(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads
    )


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    global pool, party_codes
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ["DATABASE_URL"]
    size = int(os.environ.get("CHM_DB_POOL_SIZE", "20"))  # the same as chm-api's default
    pool = await asyncpg.create_pool(
        url,
        min_size=size,
        max_size=size,
        init=_init,
        server_settings={"application_name": "chm-bench-baseline", "jit": "off"},
    )
    party_codes = frozenset(r["code"] for r in await pool.fetch(PARTIES))
    try:
        yield
    finally:
        await pool.close()


def _problem(status: int, detail: str) -> Response:
    body = orjson.dumps({"type": "about:blank", "title": "Bad Request", "status": status, "detail": detail})
    return Response(body, status_code=status, media_type="application/problem+json")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _mac(payload: bytes) -> str:
    return _b64(hmac.new(_KEY, _PURPOSE + payload, hashlib.sha256).digest()[:16])


def _encode_cursor(updated_at: datetime, rid: uuid.UUID) -> str:
    payload = orjson.dumps([SORT, updated_at.isoformat(), str(rid)])
    return f"{_b64(payload)}.{_mac(payload)}"


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    body, _, mac = cursor.partition(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    if not hmac.compare_digest(mac.encode(), _mac(payload).encode()):
        raise ValueError("signature mismatch")
    data = orjson.loads(payload)
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
    if unknown := set(params) - LIST_PARAMS:
        return _problem(400, f"unknown parameter(s): {', '.join(sorted(unknown))}")
    try:
        limit = int(params.get("limit", "50"))
    except ValueError:
        return _problem(400, "limit must be an integer")
    if not 1 <= limit <= 200:
        return _problem(400, "limit must be between 1 and 200")
    args: list[Any] = [limit + 1]
    party, rtype, cursor = params.get("party"), params.get("type"), params.get("cursor")
    if party is not None:
        party = party.upper()
        if party not in party_codes:
            return _problem(400, f"unknown party '{party}'")
        args.append(party)
    if rtype is not None:
        if rtype not in ABBR:
            return _problem(400, f"unknown type '{rtype}'")
        args.append(rtype)
    if cursor:
        try:
            args.extend(_decode_cursor(cursor))
        except (ValueError, TypeError):
            return _problem(400, "invalid cursor")
    assert pool is not None
    async with pool.acquire() as conn:
        rows = await conn.fetch(PAGE_SQL[party is not None, rtype is not None, bool(cursor)], *args)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = _encode_cursor(rows[-1]["updated_at"], rows[-1]["id"])
    body = orjson.dumps({"items": [_item(r) for r in rows], "next_cursor": next_cursor}, option=JSON_OPTS)
    headers = {}
    if next_cursor:
        headers["Link"] = f'<{request.url.include_query_params(cursor=next_cursor)}>; rel="next"'
    return Response(body, media_type="application/json", headers=headers)


async def get_record(request: Request) -> Response:
    try:
        rid = uuid.UUID(request.path_params["record_id"])
    except ValueError:
        return _problem(422, "record_id must be a UUID")
    assert pool is not None
    async with pool.acquire() as conn:
        row = await conn.fetchrow(ONE, rid)
    if row is None:
        return _problem(404, f"no record {rid}")
    return Response(orjson.dumps(_item(row), option=JSON_OPTS), media_type="application/json")


async def healthz(_: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/api/v1/records", list_records),
        Route("/api/v1/records/{record_id}", get_record),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)
