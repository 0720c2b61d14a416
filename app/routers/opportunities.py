"""REST: /api/v1/opportunities (support on offer, not yet tied to a request)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.auth.dependencies import PrincipalDep, ReadConnDep, SessionDep
from app.models.derive import one_of
from app.models.matching import MatchList
from app.models.opportunity import (
    OpportunityCreate,
    OpportunityList,
    OpportunityPublic,
    OpportunityStatus,
    OpportunityUpdate,
)
from app.routers import http
from app.routers.params import DEFAULT, Cursor, GbfTargetQ, IfMatch, Limit, SubjectQ, UpdatedSince
from app.services import matchmaking as matchmaking_service
from app.services import opportunities as opportunities_service

router = APIRouter(prefix="/api/v1/opportunities", tags=["cooperation"])


@router.get("", response_model=OpportunityList, summary="List opportunities")
async def list_opportunities(
    request: Request,
    conn: ReadConnDep,
    principal: PrincipalDep,
    limit: Limit = DEFAULT,
    cursor: Cursor = None,
    party: Annotated[str | None, Query(min_length=2, max_length=2, description="Provider Party code")] = None,
    status: Annotated[str | None, Query(description=one_of(OpportunityStatus))] = None,
    subject: SubjectQ = None,
    gbf_target: GbfTargetQ = None,
    updated_since: UpdatedSince = None,
    sort: Annotated[str | None, Query(description=f"One of {', '.join(opportunities_service.SORTS)}")] = None,
) -> Response:
    """Opportunities, keyset paged, newest change first; a broader term in a filter includes its narrower ones."""
    filters = opportunities_service.OpportunityFilter.parse(
        party=party, status=status, subject=subject, gbf_target=gbf_target, updated_since=updated_since
    )
    items, next_cursor = await opportunities_service.list_opportunities(
        conn, principal, filters=filters, sort=sort, cursor=cursor, limit=limit
    )
    return http.listing(request, OpportunityList, items, next_cursor)


@router.get("/{opportunity_id}", response_model=OpportunityPublic, summary="Get an opportunity")
async def get_opportunity(request: Request, opportunity_id: uuid.UUID, conn: ReadConnDep, principal: PrincipalDep
                          ) -> Response:  # fmt: skip
    """One opportunity, with an ETag."""
    found = await opportunities_service.get_opportunity(conn, principal, opportunity_id)
    return http.single(request, OpportunityPublic, found)


@router.get("/{opportunity_id}/matches", response_model=MatchList, summary="Rank the requests an opportunity serves")
async def list_matches(
    request: Request, opportunity_id: uuid.UUID, conn: ReadConnDep, principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=matchmaking_service.LIMIT_MAX)] = matchmaking_service.DEFAULT_LIMIT,
) -> Response:  # fmt: skip
    """Open, unexpired cooperation requests of eligible Parties, best first, each with a `score` in [0, 1] and
    the `reasons` it fits."""
    items = await matchmaking_service.matches_for_opportunity(conn, principal, opportunity_id, limit=limit)
    return http.single(request, MatchList, matchmaking_service.answer(items))


@router.post("", response_model=OpportunityPublic, status_code=201, summary="Publish an opportunity")
async def create_opportunity(
    request: Request, body: OpportunityCreate, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Needs `cooperation:write`; the provider is the token's Party (the Secretariat names a Party or an
    organization)."""
    created = await opportunities_service.create_opportunity(session, principal, data=body)
    response = http.single(request, OpportunityPublic, created, status_code=201)
    response.headers["Location"] = f"{router.prefix}/{created['id']}"
    return response


@router.put("/{opportunity_id}", response_model=OpportunityPublic, summary="Replace an opportunity")
async def replace_opportunity(
    request: Request, opportunity_id: uuid.UUID, body: OpportunityCreate, session: SessionDep,
    principal: PrincipalDep, if_match: IfMatch = None,
) -> Response:  # fmt: skip
    """The publishing Party replaces every field; send `If-Match` with the ETag you read."""
    updated = await opportunities_service.update_opportunity(session, principal, opportunity_id, data=body,
                                                             if_match=if_match)  # fmt: skip
    return http.single(request, OpportunityPublic, updated)


@router.patch("/{opportunity_id}", response_model=OpportunityPublic, summary="Update an opportunity")
async def update_opportunity(
    request: Request, opportunity_id: uuid.UUID, body: OpportunityUpdate, session: SessionDep,
    principal: PrincipalDep, if_match: IfMatch = None,
) -> Response:  # fmt: skip
    """The publishing Party changes the fields sent (e.g. `{"status": "closed"}`)."""
    updated = await opportunities_service.update_opportunity(session, principal, opportunity_id, data=body,
                                                             if_match=if_match)  # fmt: skip
    return http.single(request, OpportunityPublic, updated)


@router.delete("/{opportunity_id}", status_code=204, summary="Delete an opportunity")
async def delete_opportunity(opportunity_id: uuid.UUID, session: SessionDep, principal: PrincipalDep,
                             if_match: IfMatch = None) -> Response:  # fmt: skip
    """The publishing Party deletes its opportunity."""
    await opportunities_service.delete_opportunity(session, principal, opportunity_id, if_match=if_match)
    return Response(status_code=204)
