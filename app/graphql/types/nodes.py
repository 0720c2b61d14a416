"""GraphQL types of national CHM nodes."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from app.graphql.context import Info
from app.graphql.types import enums
from app.graphql.types.common import Contact, Row, i18n, lstring

if TYPE_CHECKING:
    from app.graphql.types.parties import Party

PartyType = Annotated["Party", strawberry.lazy("app.graphql.types.parties")]


def _party(root: Row, info: Info) -> PartyType:
    return info.context.loaders.party.load(root["party"])  # type: ignore[return-value]  # a future; see loaders


@strawberry.type(description="A Party's own clearing-house site")
class NationalNode:
    id: uuid.UUID
    party: str = strawberry.field(name="partyCode", description="ISO code of the owning Party")
    party_ref: PartyType = strawberry.field(name="party", resolver=_party, description="The owning Party")
    name: JSON = i18n("name")
    name_text: str = lstring("name", required=True)
    description: JSON | None = i18n("description")
    description_text: str | None = lstring("description")
    url: str
    languages: list[str]
    status: str = strawberry.field(graphql_type=enums.NodeStatus)
    platform: str | None
    focal_point: Contact | None
    feed_url: str | None
    created_at: datetime
    updated_at: datetime


@strawberry.enum(description="Node list order (the REST `sort` values)")
class NodeSort(enum.Enum):
    UPDATED_AT_DESC = "-updated_at"
    UPDATED_AT = "updated_at"
    PARTY = "party"


@strawberry.input(description="The REST list filters of /api/v1/nodes")
class NodeFilter:
    party: str | None = None
    status: str | None = strawberry.field(default=None, graphql_type=enums.NodeStatus | None)
    updated_since: str | None = strawberry.field(default=None, description="ISO 8601 date or date-time")


@strawberry.input(description="A person or office to contact")
class ContactInput:
    name: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    organization: str | None = strawberry.UNSET


@strawberry.input(description="A national node, validated exactly like the REST body (NodeCreate)")
class NodeInput:
    name: JSON
    url: str
    party: str | None = strawberry.UNSET
    description: JSON | None = strawberry.UNSET
    languages: list[str] | None = strawberry.UNSET
    status: str | None = strawberry.field(default=strawberry.UNSET, graphql_type=enums.NodeStatus | None)
    platform: str | None = strawberry.UNSET
    focal_point: ContactInput | None = strawberry.UNSET
    feed_url: str | None = strawberry.UNSET


@strawberry.input(description="The fields to change (NodeUpdate); fields left out keep their value")
class NodePatch:
    name: JSON | None = strawberry.UNSET
    url: str | None = strawberry.UNSET
    description: JSON | None = strawberry.UNSET
    languages: list[str] | None = strawberry.UNSET
    status: str | None = strawberry.field(default=strawberry.UNSET, graphql_type=enums.NodeStatus | None)
    platform: str | None = strawberry.UNSET
    focal_point: ContactInput | None = strawberry.UNSET
    feed_url: str | None = strawberry.UNSET
