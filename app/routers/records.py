"""REST: /api/v1/records — reads, the life cycle (submit, publish, withdraw) and bulk upsert."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from app.auth.dependencies import PrincipalDep, ReadConnDep, SessionDep
from app.models.derive import one_of
from app.models.record import (
    RecordCreate,
    RecordList,
    RecordPublic,
    RecordRevisionList,
    RecordRevisionPublic,
    RecordStatus,
    RecordUpdate,
)
from app.routers import http
from app.routers.params import DEFAULT, Cursor, GbfTargetQ, IfMatch, Limit, PartyQ, SubjectQ, UpdatedSince
from app.services import record_writes
from app.services import records as records_service
from app.services.etags import render
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
    status: Annotated[str | None, Query(description=one_of(RecordStatus))] = None,
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
    return http.listing(request, RecordList, items, next_cursor, trusted=True)


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


# --- writes -------------------------------------------------------------------------------------------


class BulkRequest(BaseModel):
    """Up to 1,000 records, upserted by (party, external_id)."""

    items: list[dict[str, Any]] = Field(description="RecordCreate objects, each with an external_id")


class BulkResult(BaseModel):
    external_id: str | None
    id: uuid.UUID | None
    status: Literal["created", "updated", "unchanged", "error"]
    error: dict[str, Any] | None = None


class BulkResponse(BaseModel):
    results: list[BulkResult]


@router.post("", response_model=RecordPublic, status_code=201, summary="Create a draft record")
async def create_record(request: Request, body: RecordCreate, session: SessionDep, principal: PrincipalDep) -> Response:
    """A new draft for the token's Party (scope `records:write`)."""
    record = await record_writes.create(session, principal, body)
    response = http.single(request, RecordPublic, record, status_code=201)
    response.headers["Location"] = f"/api/v1/records/{record['id']}"
    return response


@router.post("/bulk", response_model=BulkResponse, summary="Upsert up to 1,000 records")
async def bulk_upsert(
    body: BulkRequest,
    session: SessionDep,
    principal: PrincipalDep,
    publish: Annotated[bool, Query(description="Publish every created or changed record (records:publish)")] = False,
) -> Response:
    """Upsert by `external_id`; one result per item in input order; a bad item never loses the others."""
    results = await record_writes.bulk_upsert(session, principal, body.items, publish=publish)
    return Response(render(BulkResponse, {"results": results}), media_type=http.JSON)


@router.put("/{record_id}", response_model=RecordPublic, summary="Replace a record's content")
async def replace_record(
    request: Request, record_id: uuid.UUID, body: RecordCreate, session: SessionDep, principal: PrincipalDep,
    if_match: IfMatch = None,
) -> Response:  # fmt: skip
    """Full replacement; on a published record this edits its working draft."""
    record = await record_writes.update(session, principal, record_id, body, partial=False, if_match=if_match)
    return http.single(request, RecordPublic, record)


@router.patch("/{record_id}", response_model=RecordPublic, summary="Change some fields of a record")
async def patch_record(
    request: Request, record_id: uuid.UUID, body: RecordUpdate, session: SessionDep, principal: PrincipalDep,
    if_match: IfMatch = None,
) -> Response:  # fmt: skip
    """Merge the given fields; on a published record this edits its working draft."""
    record = await record_writes.update(session, principal, record_id, body, partial=True, if_match=if_match)
    return http.single(request, RecordPublic, record)


@router.get("/{record_id}/draft", response_model=RecordPublic, summary="Get the working draft")
async def get_draft(request: Request, record_id: uuid.UUID, conn: ReadConnDep, principal: PrincipalDep) -> Response:
    """The owner's working copy (draft over a published record, or the unpublished record)."""
    return http.single(request, RecordPublic, await records_service.get_working(conn, principal, record_id))


@router.post("/{record_id}/submit", response_model=RecordPublic, summary="Submit for publication")
async def submit_record(
    request: Request, record_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> Response:
    """draft → pending (scope `records:write`)."""
    return http.single(request, RecordPublic, await record_writes.submit(session, principal, record_id))


@router.post("/{record_id}/publish", response_model=RecordPublic, summary="Publish")
async def publish_record(
    request: Request, record_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Publish the record or its working draft as a new revision (scope `records:publish`)."""
    return http.single(request, RecordPublic, await record_writes.publish(session, principal, record_id))


@router.post("/{record_id}/withdraw", response_model=RecordPublic, summary="Withdraw")
async def withdraw_record(
    request: Request, record_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Take a published record out of public view; a tombstone remains (scope `records:publish`)."""
    return http.single(request, RecordPublic, await record_writes.withdraw(session, principal, record_id))
