"""GraphQL types of scientific and technical cooperation: requests and the offers made on them."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from app.graphql.context import Info
from app.graphql.limits import DEFAULT_FIRST
from app.graphql.types import enums
from app.graphql.types.common import Connection, Contact, Row, connection, i18n, lstring
from app.graphql.types.matching import Match, request_matches
from app.graphql.types.nodes import ContactInput
from app.services import cooperation as cooperation_service
from app.services import paging

if TYPE_CHECKING:
    from app.graphql.types.parties import Party

PartyType = Annotated["Party", strawberry.lazy("app.graphql.types.parties")]


def _party(root: Row, info: Info) -> PartyType:
    return info.context.loaders.party.load(root["party"])  # type: ignore[return-value]  # a future; see loaders


def _provider(root: Row, info: Info) -> PartyType | None:
    code = root.get("provider_party")
    return info.context.loaders.party.load(code) if code else None  # type: ignore[return-value]  # a future


@strawberry.type(description="An offer of help on a cooperation request")
class Offer:
    id: uuid.UUID
    request_id: uuid.UUID
    provider_party: str | None = strawberry.field(name="providerPartyCode")
    provider_party_ref: PartyType | None = strawberry.field(name="providerParty", resolver=_provider)
    provider_organization: str | None
    description: JSON = i18n("description")
    description_text: str = lstring("description", required=True)
    contact: Contact | None
    status: str = strawberry.field(graphql_type=enums.OfferStatus)
    created_at: datetime
    updated_at: datetime


async def _offers(root: Row, info: Info, first: int = DEFAULT_FIRST, after: str | None = None) -> Connection[Offer]:
    """The request's offers, oldest first: a page of the offers a single read or a write includes already, else
    the first page through a DataLoader (one query for every request of the response); `after`: the REST list."""
    key = cooperation_service.OFFER_SORT
    if after is not None:
        async with info.context.read() as conn:
            page = await cooperation_service.list_offers(
                conn, info.context.principal, root["id"], cursor=after, limit=first
            )
    elif root.get("offers") is not None:
        paging.check_limit(first)
        page = paging.page(root["offers"], key, first, lambda o: (o["created_at"], o["id"]))
    else:
        page = await info.context.loaders.request_offers.load((root["id"], first))
    return connection(page, key, after=after)


@strawberry.type(description="A Party's request for scientific or technical cooperation")
class CooperationRequest:
    id: uuid.UUID
    party: str = strawberry.field(name="partyCode", description="ISO code of the requesting Party")
    party_ref: PartyType = strawberry.field(name="party", resolver=_party, description="The requesting Party")
    title: JSON = i18n("title")
    title_text: str = lstring("title", required=True)
    problem: JSON | None = i18n("problem")
    problem_text: str | None = lstring("problem")
    objectives: JSON | None = i18n("objectives")
    objectives_text: str | None = lstring("objectives")
    assistance_types: list[str]
    subjects: list[str]
    gbf_targets: list[str]
    countries: list[str]
    start_date: date | None
    end_date: date | None
    contact: Contact | None
    status: str = strawberry.field(graphql_type=enums.RequestStatus)
    offers: Connection[Offer] = strawberry.field(resolver=_offers, description="Offers, oldest first")
    matches: list[Match] = strawberry.field(resolver=request_matches, description="Who can help, best first")
    created_at: datetime
    updated_at: datetime


@strawberry.enum(description="Cooperation request list order (the REST `sort` values)")
class RequestSort(enum.Enum):
    UPDATED_AT_DESC = "-updated_at"
    UPDATED_AT = "updated_at"


@strawberry.input(description="The REST list filters of /api/v1/cooperation-requests")
class RequestFilter:
    party: str | None = None
    status: str | None = strawberry.field(default=None, graphql_type=enums.RequestStatus | None)
    subject: str | None = None
    gbf_target: str | None = None
    updated_since: str | None = strawberry.field(default=None, description="ISO 8601 date or date-time")


@strawberry.input(description="A cooperation request, validated exactly like the REST body (RequestCreate)")
class RequestInput:
    title: JSON
    party: str | None = strawberry.UNSET
    problem: JSON | None = strawberry.UNSET
    objectives: JSON | None = strawberry.UNSET
    assistance_types: list[str] | None = strawberry.UNSET
    subjects: list[str] | None = strawberry.UNSET
    gbf_targets: list[str] | None = strawberry.UNSET
    countries: list[str] | None = strawberry.UNSET
    start_date: str | None = strawberry.UNSET
    end_date: str | None = strawberry.UNSET
    contact: ContactInput | None = strawberry.UNSET
    status: str | None = strawberry.field(default=strawberry.UNSET, graphql_type=enums.RequestStatus | None)


@strawberry.input(description="The fields to change (RequestUpdate); fields left out keep their value")
class RequestPatch:
    title: JSON | None = strawberry.UNSET
    problem: JSON | None = strawberry.UNSET
    objectives: JSON | None = strawberry.UNSET
    assistance_types: list[str] | None = strawberry.UNSET
    subjects: list[str] | None = strawberry.UNSET
    gbf_targets: list[str] | None = strawberry.UNSET
    countries: list[str] | None = strawberry.UNSET
    start_date: str | None = strawberry.UNSET
    end_date: str | None = strawberry.UNSET
    contact: ContactInput | None = strawberry.UNSET
    status: str | None = strawberry.field(default=strawberry.UNSET, graphql_type=enums.RequestStatus | None)


@strawberry.input(description="An offer, validated exactly like the REST body (OfferCreate)")
class OfferInput:
    description: JSON
    provider_organization: str | None = strawberry.UNSET
    contact: ContactInput | None = strawberry.UNSET


@strawberry.input(description="The fields of your proposed offer to change (OfferUpdate)")
class OfferPatch:
    description: JSON | None = strawberry.UNSET
    provider_organization: str | None = strawberry.UNSET
    contact: ContactInput | None = strawberry.UNSET
