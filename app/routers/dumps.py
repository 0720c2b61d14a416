"""NDJSON dumps: /api/v1/{records,decisions,nodes,cooperation-requests,parties}.ndjson."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.background import BackgroundTask

from app import db
from app.auth.dependencies import PrincipalDep
from app.auth.principal import Principal
from app.exchange import ndjson
from app.routers.params import GbfTargetQ, PartyQ, SubjectQ, UpdatedSince
from app.services import cooperation, decisions, dumps, nodes, records

router = APIRouter(prefix="/api/v1", tags=["harvesting"])
MARK_HEADER = "X-Change-Seq"
_DOC: dict[str, Any] = {
    "response_class": StreamingResponse,
    "responses": {200: {"content": {ndjson.MEDIA_TYPE: {}}, "description": (
        f"One JSON object a line (the resource's public schema), streamed; gzip with `Accept-Encoding: gzip`. "
        f"`{MARK_HEADER}`: the change log's high-water mark — continue with `/api/v1/changes?since=` it.")}},
}  # fmt: skip
StatusQ = Annotated[str | None, Query(description="Status filter, as on the list")]


async def _stream(request: Request, principal: Principal, kind: str | None, filters: Any) -> StreamingResponse:
    engine_conn = await db.get_engine().connect()
    conn: AsyncConnection = await engine_conn.execution_options(isolation_level="REPEATABLE READ",
                                                                postgresql_readonly=True)  # fmt: skip
    closed = False

    async def close() -> None:
        nonlocal closed
        if not closed:
            closed = True
            await conn.close()

    try:
        dump = await dumps.open_dump(conn, principal, kind, filters)
    except BaseException:
        await close()
        raise
    gzip = ndjson.accepts_gzip(request.headers.get("accept-encoding"))

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in ndjson.encode(dump.batches, gzip=gzip):
                yield chunk
        finally:
            await close()

    headers = {MARK_HEADER: str(dump.high_water_mark), "Vary": "Accept-Encoding", "Cache-Control": "no-store"}
    if gzip:
        headers["Content-Encoding"] = "gzip"
    return StreamingResponse(body(), media_type=ndjson.MEDIA_TYPE, headers=headers, background=BackgroundTask(close))


@router.get("/records.ndjson", summary="Dump records as NDJSON", operation_id="dumpRecords", **_DOC)
async def dump_records(
    request: Request, principal: PrincipalDep, party: PartyQ = None,
    type: Annotated[str | None, Query(description="Record type")] = None, status: StatusQ = None,
    subject: SubjectQ = None, gbf_target: GbfTargetQ = None, updated_since: UpdatedSince = None,
) -> Response:  # fmt: skip
    """Every record the caller may see (anonymous: published), with the list's filters, no size cap."""
    f = records.RecordFilter.parse(
        party=party, type=type, status=status, subject=subject, gbf_target=gbf_target, updated_since=updated_since
    )
    return await _stream(request, principal, "record", f)


@router.get("/decisions.ndjson", summary="Dump decisions as NDJSON", operation_id="dumpDecisions", **_DOC)
async def dump_decisions(
    request: Request, principal: PrincipalDep,
    body: Annotated[str | None, Query(description="COP, CP-MOP or NP-MOP")] = None,
    session: Annotated[int | None, Query(ge=1, le=1000, description="Meeting number")] = None,
    status: StatusQ = None, subject: SubjectQ = None, gbf_target: GbfTargetQ = None, updated_since: UpdatedSince = None,
) -> Response:  # fmt: skip
    """Every decision with its paragraphs."""
    f = decisions.DecisionFilter.parse(
        body=body, session=session, status=status, subject=subject, gbf_target=gbf_target, updated_since=updated_since
    )
    return await _stream(request, principal, "decision", f)


@router.get("/nodes.ndjson", summary="Dump national nodes as NDJSON", operation_id="dumpNodes", **_DOC)
async def dump_nodes(
    request: Request, principal: PrincipalDep, party: PartyQ = None, status: StatusQ = None,
    updated_since: UpdatedSince = None,
) -> Response:  # fmt: skip
    """Every national node."""
    f = nodes.NodeFilter.parse(party=party, status=status, updated_since=updated_since)
    return await _stream(request, principal, "node", f)


@router.get("/cooperation-requests.ndjson", summary="Dump cooperation requests as NDJSON",
            operation_id="dumpCooperationRequests", **_DOC)  # fmt: skip
async def dump_requests(
    request: Request, principal: PrincipalDep, party: PartyQ = None, status: StatusQ = None,
    subject: SubjectQ = None, gbf_target: GbfTargetQ = None, updated_since: UpdatedSince = None,
) -> Response:  # fmt: skip
    """Every cooperation request with its offers."""
    f = cooperation.RequestFilter.parse(
        party=party, status=status, subject=subject, gbf_target=gbf_target, updated_since=updated_since
    )
    return await _stream(request, principal, "cooperation-request", f)


@router.get("/parties.ndjson", summary="Dump the Parties as NDJSON", operation_id="dumpParties", **_DOC)
async def dump_parties(request: Request, principal: PrincipalDep) -> Response:
    """The 196 Parties (reference data)."""
    return await _stream(request, principal, None, None)
