"""REST: /api/v1/cooperation-requests and their offers."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.auth.dependencies import PrincipalDep, ReadConnDep, SessionDep
from app.models.cooperation import (
    OfferCreate,
    OfferDecision,
    OfferList,
    OfferPublic,
    OfferUpdate,
    RequestCreate,
    RequestList,
    RequestPublic,
    RequestStatus,
    RequestUpdate,
)
from app.models.derive import one_of
from app.routers import http
from app.routers.params import DEFAULT, Cursor, GbfTargetQ, IfMatch, Limit, PartyQ, SubjectQ, UpdatedSince
from app.services import cooperation as cooperation_service
from app.services.paging import parse_datetime

router = APIRouter(prefix="/api/v1/cooperation-requests", tags=["cooperation"])


@router.get("", response_model=RequestList, summary="List cooperation requests")
async def list_requests(
    request: Request,
    conn: ReadConnDep,
    principal: PrincipalDep,
    limit: Limit = DEFAULT,
    cursor: Cursor = None,
    party: PartyQ = None,
    status: Annotated[str | None, Query(description=one_of(RequestStatus))] = None,
    subject: SubjectQ = None,
    gbf_target: GbfTargetQ = None,
    updated_since: UpdatedSince = None,
    sort: Annotated[str | None, Query(description=f"One of {', '.join(cooperation_service.SORTS)}")] = None,
) -> Response:
    """Cooperation requests without their offers, keyset paged, newest change first."""
    filters = cooperation_service.RequestFilter(
        party=party, status=status, subject=subject, gbf_target=gbf_target,
        updated_since=parse_datetime(updated_since, "updated_since"),
    )  # fmt: skip
    items, next_cursor = await cooperation_service.list_requests(
        conn, principal, filters=filters, sort=sort, cursor=cursor, limit=limit
    )
    return http.listing(request, RequestList, items, next_cursor)


@router.get("/{request_id}", response_model=RequestPublic, summary="Get a cooperation request")
async def get_request(request: Request, request_id: uuid.UUID, conn: ReadConnDep, principal: PrincipalDep) -> Response:
    """One request with its offers, with an ETag."""
    return http.single(request, RequestPublic, await cooperation_service.get_request(conn, principal, request_id))


@router.get("/{request_id}/offers", response_model=OfferList, summary="List the offers on a request")
async def list_offers(
    request: Request, request_id: uuid.UUID, conn: ReadConnDep, principal: PrincipalDep,
    limit: Limit = DEFAULT, cursor: Cursor = None,
) -> Response:  # fmt: skip
    """Offers on one request, oldest first, keyset paged."""
    items, next_cursor = await cooperation_service.list_offers(conn, principal, request_id, cursor=cursor,
                                                               limit=limit)  # fmt: skip
    return http.listing(request, OfferList, items, next_cursor)


@router.get("/{request_id}/offers/{offer_id}", response_model=OfferPublic, summary="Get an offer")
async def get_offer(
    request: Request, request_id: uuid.UUID, offer_id: uuid.UUID, conn: ReadConnDep, principal: PrincipalDep
) -> Response:
    """One offer, with an ETag."""
    return http.single(request, OfferPublic, await cooperation_service.get_offer(conn, principal, request_id, offer_id))


@router.post("", response_model=RequestPublic, status_code=201, summary="Create a cooperation request")
async def create_request(
    request: Request, body: RequestCreate, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Needs `cooperation:write`; `party` defaults to the token's Party (only the Secretariat names another)."""
    created = await cooperation_service.create_request(session, principal, data=body)
    response = http.single(request, RequestPublic, created, status_code=201)
    response.headers["Location"] = f"{router.prefix}/{created['id']}"
    return response


@router.put("/{request_id}", response_model=RequestPublic, summary="Replace a cooperation request")
async def replace_request(
    request: Request, request_id: uuid.UUID, body: RequestCreate, session: SessionDep, principal: PrincipalDep,
    if_match: IfMatch = None,
) -> Response:  # fmt: skip
    """The requesting Party replaces every field; send `If-Match` with the ETag you read."""
    updated = await cooperation_service.update_request(session, principal, request_id, data=body, if_match=if_match)
    return http.single(request, RequestPublic, updated)


@router.patch("/{request_id}", response_model=RequestPublic, summary="Update a cooperation request")
async def update_request(
    request: Request, request_id: uuid.UUID, body: RequestUpdate, session: SessionDep, principal: PrincipalDep,
    if_match: IfMatch = None,
) -> Response:  # fmt: skip
    """The requesting Party changes the fields sent; send `If-Match` with the ETag you read."""
    updated = await cooperation_service.update_request(session, principal, request_id, data=body, if_match=if_match)
    return http.single(request, RequestPublic, updated)


@router.delete("/{request_id}", status_code=204, summary="Delete a cooperation request")
async def delete_request(request_id: uuid.UUID, session: SessionDep, principal: PrincipalDep,
                         if_match: IfMatch = None) -> Response:  # fmt: skip
    """The requesting Party deletes its request and the offers on it."""
    await cooperation_service.delete_request(session, principal, request_id, if_match=if_match)
    return Response(status_code=204)


@router.post("/{request_id}/offers", response_model=OfferPublic, status_code=201, summary="Offer cooperation")
async def create_offer(
    request: Request, request_id: uuid.UUID, body: OfferCreate, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Another Party offers help; the provider is the token's Party. Offering on your own request is a 403."""
    offer = await cooperation_service.create_offer(session, principal, request_id, data=body)
    response = http.single(request, OfferPublic, offer, status_code=201)
    response.headers["Location"] = f"{router.prefix}/{request_id}/offers/{offer['id']}"
    return response


@router.patch("/{request_id}/offers/{offer_id}", response_model=OfferPublic, summary="Edit your offer")
async def update_offer(
    request: Request, request_id: uuid.UUID, offer_id: uuid.UUID, body: OfferUpdate, session: SessionDep,
    principal: PrincipalDep, if_match: IfMatch = None,
) -> Response:  # fmt: skip
    """The offering Party edits its own offer while it is proposed."""
    offer = await cooperation_service.update_offer(session, principal, request_id, offer_id, data=body,
                                                   if_match=if_match)  # fmt: skip
    return http.single(request, OfferPublic, offer)


@router.delete("/{request_id}/offers/{offer_id}", status_code=204, summary="Withdraw your offer")
async def withdraw_offer(
    request_id: uuid.UUID, offer_id: uuid.UUID, session: SessionDep, principal: PrincipalDep,
    if_match: IfMatch = None,
) -> Response:  # fmt: skip
    """The offering Party withdraws its own offer while it is proposed."""
    await cooperation_service.withdraw_offer(session, principal, request_id, offer_id, if_match=if_match)
    return Response(status_code=204)


@router.post("/{request_id}/offers/{offer_id}/decision", response_model=OfferPublic, summary="Accept or decline")
async def decide_offer(
    request: Request, request_id: uuid.UUID, offer_id: uuid.UUID, body: OfferDecision, session: SessionDep,
    principal: PrincipalDep,
) -> Response:  # fmt: skip
    """The requesting Party accepts or declines a proposed offer; accepting matches an open request."""
    offer = await cooperation_service.decide_offer(session, principal, request_id, offer_id, data=body)
    return http.single(request, OfferPublic, offer)
