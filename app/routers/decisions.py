"""REST: /api/v1/decisions (COP, CP-MOP and NP-MOP decisions)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.auth.dependencies import PrincipalDep, ReadConnDep, SessionDep
from app.models.decision import (
    DecisionBody,
    DecisionCreate,
    DecisionList,
    DecisionPublic,
    DecisionStatus,
    DecisionUpdate,
)
from app.models.derive import one_of
from app.routers import http
from app.routers.params import DEFAULT, Cursor, GbfTargetQ, IfMatch, Limit, SubjectQ, UpdatedSince
from app.services import decisions as decisions_service
from app.services.paging import parse_datetime

router = APIRouter(prefix="/api/v1/decisions", tags=["decisions"])


@router.get("", response_model=DecisionList, summary="List decisions")
async def list_decisions(
    request: Request,
    conn: ReadConnDep,
    principal: PrincipalDep,
    limit: Limit = DEFAULT,
    cursor: Cursor = None,
    body: Annotated[str | None, Query(description=one_of(DecisionBody))] = None,
    session: Annotated[int | None, Query(ge=1, le=99, description="Meeting number, e.g. 15")] = None,
    status: Annotated[str | None, Query(description=one_of(DecisionStatus))] = None,
    subject: SubjectQ = None,
    gbf_target: GbfTargetQ = None,
    updated_since: UpdatedSince = None,
    sort: Annotated[str | None, Query(description=f"One of {', '.join(decisions_service.SORTS)}")] = None,
) -> Response:
    """Decisions without their paragraphs, keyset paged, in code order (COP-9-1 < COP-9-30 < COP-15-4)."""
    filters = decisions_service.DecisionFilter(
        body=body, session=session, status=status, subject=subject, gbf_target=gbf_target,
        updated_since=parse_datetime(updated_since, "updated_since"),
    )  # fmt: skip
    items, next_cursor = await decisions_service.list_decisions(
        conn, principal, filters=filters, sort=sort, cursor=cursor, limit=limit
    )
    return http.listing(request, DecisionList, items, next_cursor)


@router.get("/{code}", response_model=DecisionPublic, summary="Get a decision")
async def get_decision(request: Request, code: str, conn: ReadConnDep, principal: PrincipalDep) -> Response:
    """One decision by code (e.g. `COP-15-4`) with its paragraphs in order, with an ETag."""
    return http.single(request, DecisionPublic, await decisions_service.get_decision(conn, principal, code))


@router.post("", response_model=DecisionPublic, status_code=201, summary="Create a decision",
             responses={409: {"description": "A decision with this code exists"}})  # fmt: skip
async def create_decision(
    request: Request, body: DecisionCreate, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Secretariat tokens with `decisions:write` only; paragraphs are stored in the order sent."""
    decision = await decisions_service.create_decision(session, principal, data=body)
    response = http.single(request, DecisionPublic, decision, status_code=201)
    response.headers["Location"] = f"{router.prefix}/{decision['code']}"
    return response


@router.put("/{code}", response_model=DecisionPublic, summary="Replace a decision")
async def replace_decision(
    request: Request, code: str, body: DecisionCreate, session: SessionDep, principal: PrincipalDep,
    if_match: IfMatch = None,
) -> Response:  # fmt: skip
    """Replace every field and all paragraphs; send `If-Match` with the ETag you read."""
    decision = await decisions_service.update_decision(session, principal, code, data=body, if_match=if_match)
    return http.single(request, DecisionPublic, decision)


@router.patch("/{code}", response_model=DecisionPublic, summary="Update a decision")
async def update_decision(
    request: Request, code: str, body: DecisionUpdate, session: SessionDep, principal: PrincipalDep,
    if_match: IfMatch = None,
) -> Response:  # fmt: skip
    """Change the fields sent (`paragraphs`, when sent, replace all); send `If-Match` with the ETag you read."""
    decision = await decisions_service.update_decision(session, principal, code, data=body, if_match=if_match)
    return http.single(request, DecisionPublic, decision)


@router.delete("/{code}", status_code=204, summary="Delete a decision")
async def delete_decision(
    code: str, session: SessionDep, principal: PrincipalDep, if_match: IfMatch = None
) -> Response:
    """Secretariat only."""
    await decisions_service.delete_decision(session, principal, code, if_match=if_match)
    return Response(status_code=204)
