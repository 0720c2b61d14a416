"""REST: /api/v1/records (reads)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.auth.dependencies import PrincipalDep, ReadConnDep
from app.models.record import RecordList, RecordPublic, RecordRevisionList, RecordRevisionPublic
from app.routers import http
from app.routers.params import DEFAULT, Cursor, GbfTargetQ, Limit, PartyQ, SubjectQ, UpdatedSince
from app.services import records as records_service
from app.services.paging import parse_datetime

router = APIRouter(prefix="/api/v1/records", tags=["records"])


@router.get("", response_model=RecordList, summary="List records")
async def list_records(
    request: Request,
    conn: ReadConnDep,
    principal: PrincipalDep,
    limit: Limit = DEFAULT,
    cursor: Cursor = None,
    party: PartyQ = None,
    type: Annotated[str | None, Query(description="Record type (vocabulary record-types)")] = None,
    status: Annotated[str | None, Query(description="draft, pending, published, withdrawn")] = None,
    subject: SubjectQ = None,
    gbf_target: GbfTargetQ = None,
    updated_since: UpdatedSince = None,
    sort: Annotated[str | None, Query(description=f"One of {', '.join(records_service.SORTS)}")] = None,
) -> Response:
    """Records visible to the caller (anonymous: published only), keyset paged, newest change first."""
    filters = records_service.RecordFilter(
        party=party, type=type, status=status, subject=subject, gbf_target=gbf_target,
        updated_since=parse_datetime(updated_since, "updated_since"),
    )  # fmt: skip
    items, next_cursor = await records_service.list_records(
        conn, principal, filters=filters, sort=sort, cursor=cursor, limit=limit
    )
    return http.listing(request, RecordList, items, next_cursor)


@router.get("/by-uid/{uid}", response_model=RecordPublic, summary="Get a record by its public uid")
async def get_record_by_uid(request: Request, uid: str, conn: ReadConnDep, principal: PrincipalDep) -> Response:
    """`CHM-RES-BR-000123` (current) or `CHM-RES-BR-000123-2` (that published revision)."""
    return http.single(request, RecordPublic, await records_service.get_by_uid(conn, principal, uid))


@router.get("/{record_id}", response_model=RecordPublic, summary="Get a record",
            responses={410: {"description": "Withdrawn: the body is a problem with the tombstone"}})  # fmt: skip
async def get_record(request: Request, record_id: uuid.UUID, conn: ReadConnDep, principal: PrincipalDep) -> Response:
    """One record, with an ETag."""
    return http.single(request, RecordPublic, await records_service.get_record(conn, principal, record_id))


@router.get("/{record_id}/revisions", response_model=RecordRevisionList, summary="List published revisions")
async def list_revisions(
    request: Request, record_id: uuid.UUID, conn: ReadConnDep, principal: PrincipalDep,
    limit: Limit = DEFAULT, cursor: Cursor = None,
) -> Response:  # fmt: skip
    """Every published revision, newest first."""
    items, next_cursor = await records_service.list_revisions(conn, principal, record_id, cursor=cursor, limit=limit)
    return http.listing(request, RecordRevisionList, items, next_cursor)


@router.get("/{record_id}/revisions/{revision}", response_model=RecordRevisionPublic, summary="Get one revision")
async def get_revision(
    request: Request, record_id: uuid.UUID, revision: int, conn: ReadConnDep, principal: PrincipalDep
) -> Response:
    """One published revision, as it was published."""
    return http.single(request, RecordRevisionPublic,
                       await records_service.get_revision(conn, principal, record_id, revision))  # fmt: skip
