"""GraphQL types of opportunities: support on offer that is not yet tied to a request."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from app.graphql.context import Info
from app.graphql.types import enums
from app.graphql.types.common import Contact, Row, i18n, lstring
from app.graphql.types.matching import Match, opportunity_matches
from app.graphql.types.nodes import ContactInput

if TYPE_CHECKING:
    from app.graphql.types.parties import Party

PartyType = Annotated["Party", strawberry.lazy("app.graphql.types.parties")]


def _provider(root: Row, info: Info) -> PartyType | None:
    code = root.get("provider_party")
    return info.context.loaders.party.load(code) if code else None  # type: ignore[return-value]  # a future


@strawberry.type(description="Support on offer (a Bio-Bridge opportunity), not yet tied to a request")
class Opportunity:
    id: uuid.UUID
    provider_party: str | None = strawberry.field(name="providerPartyCode", description="The publishing Party")
    provider_party_ref: PartyType | None = strawberry.field(name="providerParty", resolver=_provider)
    provider_organization: str | None
    title: JSON = i18n("title")
    title_text: str = lstring("title", required=True)
    description: JSON | None = i18n("description")
    description_text: str | None = lstring("description")
    assistance_types: list[str]
    subjects: list[str]
    gbf_targets: list[str]
    eligible_countries: list[str]
    eligible_regions: list[str] = strawberry.field(description="Codes of the `regions` vocabulary")
    application_deadline: date | None
    url: str | None
    contact: Contact | None
    status: str = strawberry.field(graphql_type=enums.OpportunityStatus)
    matches: list[Match] = strawberry.field(resolver=opportunity_matches, description="Requests it serves, best first")
    created_at: datetime
    updated_at: datetime


@strawberry.enum(description="Opportunity list order (the REST `sort` values)")
class OpportunitySort(enum.Enum):
    UPDATED_AT_DESC = "-updated_at"
    UPDATED_AT = "updated_at"


@strawberry.input(description="The REST list filters of /api/v1/opportunities")
class OpportunityFilter:
    party: str | None = None
    status: str | None = strawberry.field(default=None, graphql_type=enums.OpportunityStatus | None)
    subject: str | None = None
    gbf_target: str | None = None
    updated_since: str | None = strawberry.field(default=None, description="ISO 8601 date or date-time")


@strawberry.input(description="An opportunity, validated exactly like the REST body (OpportunityCreate)")
class OpportunityInput:
    title: JSON
    provider_party: str | None = strawberry.UNSET
    provider_organization: str | None = strawberry.UNSET
    description: JSON | None = strawberry.UNSET
    assistance_types: list[str] | None = strawberry.UNSET
    subjects: list[str] | None = strawberry.UNSET
    gbf_targets: list[str] | None = strawberry.UNSET
    eligible_countries: list[str] | None = strawberry.UNSET
    eligible_regions: list[str] | None = strawberry.UNSET
    application_deadline: str | None = strawberry.UNSET
    url: str | None = strawberry.UNSET
    contact: ContactInput | None = strawberry.UNSET
    status: str | None = strawberry.field(default=strawberry.UNSET, graphql_type=enums.OpportunityStatus | None)


@strawberry.input(description="The fields to change (OpportunityUpdate); fields left out keep their value")
class OpportunityPatch:
    title: JSON | None = strawberry.UNSET
    provider_organization: str | None = strawberry.UNSET
    description: JSON | None = strawberry.UNSET
    assistance_types: list[str] | None = strawberry.UNSET
    subjects: list[str] | None = strawberry.UNSET
    gbf_targets: list[str] | None = strawberry.UNSET
    eligible_countries: list[str] | None = strawberry.UNSET
    eligible_regions: list[str] | None = strawberry.UNSET
    application_deadline: str | None = strawberry.UNSET
    url: str | None = strawberry.UNSET
    contact: ContactInput | None = strawberry.UNSET
    status: str | None = strawberry.field(default=strawberry.UNSET, graphql_type=enums.OpportunityStatus | None)
