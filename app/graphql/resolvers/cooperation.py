"""Cooperation request and offer queries and mutations over services.cooperation."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry

from app import db
from app.graphql.context import Info
from app.graphql.errors import validated
from app.graphql.inputs import data_of
from app.graphql.limits import DEFAULT_FIRST
from app.graphql.types import enums
from app.graphql.types.common import Connection, list_connection
from app.graphql.types.cooperation import (
    CooperationRequest,
    Offer,
    OfferInput,
    OfferPatch,
    RequestFilter,
    RequestInput,
    RequestPatch,
    RequestSort,
)
from app.graphql.types.enums import value_of
from app.models.cooperation import OfferCreate, OfferDecision, OfferUpdate, RequestCreate, RequestUpdate
from app.services import cooperation as cooperation_service


async def cooperation_request(info: Info, id: uuid.UUID) -> CooperationRequest:
    """One request with its offers."""
    async with info.context.read() as conn:
        return await cooperation_service.get_request(conn, info.context.principal, id)  # type: ignore[return-value]


async def cooperation_requests(
    info: Info,
    filter: RequestFilter | None = None,
    sort: RequestSort | None = None,
    first: int = DEFAULT_FIRST,
    after: str | None = None,
) -> Connection[CooperationRequest]:
    """Cooperation requests, newest change first by default."""
    return await list_connection(
        info,
        cooperation_service.list_requests,
        cooperation_service.LISTING,
        filter=filter,
        sort=sort,
        first=first,
        after=after,
    )


async def create_cooperation_request(info: Info, input: RequestInput) -> CooperationRequest:
    """Needs `cooperation:write`; `party` defaults to the token's Party."""
    data = validated(RequestCreate, data_of(input))
    async with db.transaction() as session:
        return await cooperation_service.create_request(session, info.context.principal, data=data)  # type: ignore[return-value]


async def update_cooperation_request(
    info: Info, id: uuid.UUID, input: RequestPatch, if_match: str | None = None
) -> CooperationRequest:
    """The requesting Party changes the fields sent (PATCH)."""
    data = validated(RequestUpdate, data_of(input))
    async with db.transaction() as session:
        return await cooperation_service.update_request(
            session, info.context.principal, id, data=data, if_match=if_match
        )  # type: ignore[return-value]


async def replace_cooperation_request(
    info: Info, id: uuid.UUID, input: RequestInput, if_match: str | None = None
) -> CooperationRequest:
    """The requesting Party replaces every field (PUT)."""
    data = validated(RequestCreate, data_of(input))
    async with db.transaction() as session:
        return await cooperation_service.update_request(
            session, info.context.principal, id, data=data, if_match=if_match
        )  # type: ignore[return-value]


async def delete_cooperation_request(info: Info, id: uuid.UUID, if_match: str | None = None) -> uuid.UUID:
    """The requesting Party deletes its request and the offers on it; answers its id."""
    async with db.transaction() as session:
        await cooperation_service.delete_request(session, info.context.principal, id, if_match=if_match)
    return id


async def create_offer(info: Info, request_id: uuid.UUID, input: OfferInput) -> Offer:
    """Another Party offers help; the provider is the token's Party."""
    data = validated(OfferCreate, data_of(input))
    async with db.transaction() as session:
        return await cooperation_service.create_offer(session, info.context.principal, request_id, data=data)  # type: ignore[return-value]


async def update_offer(
    info: Info, request_id: uuid.UUID, id: uuid.UUID, input: OfferPatch, if_match: str | None = None
) -> Offer:
    """The offering Party edits its own offer while it is proposed."""
    data = validated(OfferUpdate, data_of(input))
    async with db.transaction() as session:
        return await cooperation_service.update_offer(
            session, info.context.principal, request_id, id, data=data, if_match=if_match
        )  # type: ignore[return-value]


async def withdraw_offer(info: Info, request_id: uuid.UUID, id: uuid.UUID, if_match: str | None = None) -> uuid.UUID:
    """The offering Party withdraws its own proposed offer; answers its id."""
    async with db.transaction() as session:
        await cooperation_service.withdraw_offer(session, info.context.principal, request_id, id, if_match=if_match)
    return id


async def decide_offer(
    info: Info,
    request_id: uuid.UUID,
    id: uuid.UUID,
    status: Annotated[str, strawberry.argument(graphql_type=enums.OfferAnswer)],
) -> Offer:
    """The requesting Party accepts or declines a proposed offer."""
    data = validated(OfferDecision, {"status": value_of(status)})
    async with db.transaction() as session:
        return await cooperation_service.decide_offer(session, info.context.principal, request_id, id, data=data)  # type: ignore[return-value]
