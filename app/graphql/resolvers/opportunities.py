"""Opportunity queries and mutations over services.opportunities."""

from __future__ import annotations

import uuid

from app import db
from app.graphql.context import Info
from app.graphql.errors import validated
from app.graphql.inputs import data_of
from app.graphql.limits import DEFAULT_FIRST
from app.graphql.types.common import Connection, list_connection
from app.graphql.types.opportunities import (
    Opportunity,
    OpportunityFilter,
    OpportunityInput,
    OpportunityPatch,
    OpportunitySort,
)
from app.models.opportunity import OpportunityCreate, OpportunityUpdate
from app.services import opportunities as opportunities_service


async def opportunity(info: Info, id: uuid.UUID) -> Opportunity:
    """One opportunity."""
    async with info.context.read() as conn:
        return await opportunities_service.get_opportunity(conn, info.context.principal, id)  # type: ignore[return-value]


async def opportunities(
    info: Info,
    filter: OpportunityFilter | None = None,
    sort: OpportunitySort | None = None,
    first: int = DEFAULT_FIRST,
    after: str | None = None,
) -> Connection[Opportunity]:
    """Opportunities, newest change first by default."""
    return await list_connection(
        info,
        opportunities_service.list_opportunities,
        opportunities_service.LISTING,
        filter=filter,
        sort=sort,
        first=first,
        after=after,
    )


async def create_opportunity(info: Info, input: OpportunityInput) -> Opportunity:
    """Needs `cooperation:write`; `providerParty` defaults to the token's Party."""
    data = validated(OpportunityCreate, data_of(input))
    async with db.transaction() as session:
        return await opportunities_service.create_opportunity(session, info.context.principal, data=data)  # type: ignore[return-value]


async def update_opportunity(
    info: Info, id: uuid.UUID, input: OpportunityPatch, if_match: str | None = None
) -> Opportunity:
    """The publishing Party changes the fields sent (PATCH)."""
    data = validated(OpportunityUpdate, data_of(input))
    async with db.transaction() as session:
        return await opportunities_service.update_opportunity(
            session, info.context.principal, id, data=data, if_match=if_match
        )  # type: ignore[return-value]


async def replace_opportunity(
    info: Info, id: uuid.UUID, input: OpportunityInput, if_match: str | None = None
) -> Opportunity:
    """The publishing Party replaces every field (PUT)."""
    data = validated(OpportunityCreate, data_of(input))
    async with db.transaction() as session:
        return await opportunities_service.update_opportunity(
            session, info.context.principal, id, data=data, if_match=if_match
        )  # type: ignore[return-value]


async def delete_opportunity(info: Info, id: uuid.UUID, if_match: str | None = None) -> uuid.UUID:
    """The publishing Party deletes its opportunity; answers its id."""
    async with db.transaction() as session:
        await opportunities_service.delete_opportunity(session, info.context.principal, id, if_match=if_match)
    return id
