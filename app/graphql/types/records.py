"""GraphQL types of CHM records: the record, its revisions, filters, sorts and write inputs."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from app.graphql.context import Info
from app.graphql.types import enums
from app.graphql.types.common import Row, i18n, lstring

if TYPE_CHECKING:
    from app.graphql.types.parties import Party

PartyType = Annotated["Party", strawberry.lazy("app.graphql.types.parties")]


@strawberry.type(description="A link from a record to a web resource")
class Link:
    url: str
    name: str | None
    language: str | None


def _party(root: Row, info: Info) -> PartyType:
    return info.context.loaders.party.load(root["party"])  # type: ignore[return-value]  # a future; see loaders


@strawberry.type(description="A CHM record as the caller may see it (owners also see their working-draft status)")
class Record:
    id: uuid.UUID
    uid: str | None = strawberry.field(description="CHM-{TYPE}-{PARTY}-{serial}-{revision}; null before publication")
    party: str = strawberry.field(name="partyCode", description="ISO code of the owning Party")
    party_ref: PartyType = strawberry.field(name="party", resolver=_party, description="The owning Party")
    type: str = strawberry.field(graphql_type=enums.RecordType)
    status: str = strawberry.field(graphql_type=enums.RecordStatus)
    revision: int
    title: JSON = i18n("title")
    title_text: str = lstring("title", required=True)
    summary: JSON | None = i18n("summary")
    summary_text: str | None = lstring("summary")
    body: JSON | None = i18n("body")
    body_text: str | None = lstring("body", description="Markdown")
    languages: list[str]
    links: list[Link]
    keywords: list[str]
    subjects: list[str]
    gbf_targets: list[str]
    aichi_targets: list[str]
    countries: list[str]
    publication_date: date | None
    external_id: str | None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    withdrawn_at: datetime | None
    draft_status: str | None = strawberry.field(
        graphql_type=enums.DraftStatus | None, description="Status of a working draft over this record; owners only"
    )
    draft_updated_at: datetime | None = strawberry.field(description="Last edit of the working draft; owners only")


@strawberry.type(description="One published revision of a record, as it was published")
class RecordRevision:
    record_id: uuid.UUID
    uid: str
    revision: int
    published_at: datetime
    content: JSON


@strawberry.enum(description="Record list order (the REST `sort` values)")
class RecordSort(enum.Enum):
    UPDATED_AT_DESC = "-updated_at"
    UPDATED_AT = "updated_at"
    PUBLISHED_AT_DESC = "-published_at"
    PUBLISHED_AT = "published_at"
    CREATED_AT_DESC = "-created_at"
    CREATED_AT = "created_at"


@strawberry.input(description="The REST list filters of /api/v1/records")
class RecordFilter:
    party: str | None = None
    type: str | None = strawberry.field(default=None, graphql_type=enums.RecordType | None)
    status: str | None = strawberry.field(default=None, graphql_type=enums.RecordStatus | None)
    subject: str | None = None
    gbf_target: str | None = None
    updated_since: str | None = strawberry.field(default=None, description="ISO 8601 date or date-time")


@strawberry.input(description="A link (validated like the REST body)")
class LinkInput:
    url: str
    name: str | None = strawberry.UNSET
    language: str | None = strawberry.UNSET


@strawberry.input(description="A record's content, validated exactly like the REST body (RecordCreate)")
class RecordInput:
    # Required by RecordCreate, optional here, and `type` a String (of RecordType's values): the service reports
    # a missing or wrong field with its location (per item in bulkUpsertRecords, exactly as REST) instead of
    # GraphQL refusing the whole operation.
    type: str | None = strawberry.UNSET
    title: JSON | None = strawberry.UNSET
    party: str | None = strawberry.UNSET
    external_id: str | None = strawberry.UNSET
    summary: JSON | None = strawberry.UNSET
    body: JSON | None = strawberry.UNSET
    languages: list[str] | None = strawberry.UNSET
    links: list[LinkInput] | None = strawberry.UNSET
    keywords: list[str] | None = strawberry.UNSET
    subjects: list[str] | None = strawberry.UNSET
    gbf_targets: list[str] | None = strawberry.UNSET
    aichi_targets: list[str] | None = strawberry.UNSET
    countries: list[str] | None = strawberry.UNSET
    publication_date: str | None = strawberry.field(default=strawberry.UNSET, description="YYYY-MM-DD")


@strawberry.input(description="The fields to change (RecordUpdate); fields left out keep their value")
class RecordPatch:
    type: str | None = strawberry.UNSET
    title: JSON | None = strawberry.UNSET
    external_id: str | None = strawberry.UNSET
    summary: JSON | None = strawberry.UNSET
    body: JSON | None = strawberry.UNSET
    languages: list[str] | None = strawberry.UNSET
    links: list[LinkInput] | None = strawberry.UNSET
    keywords: list[str] | None = strawberry.UNSET
    subjects: list[str] | None = strawberry.UNSET
    gbf_targets: list[str] | None = strawberry.UNSET
    aichi_targets: list[str] | None = strawberry.UNSET
    countries: list[str] | None = strawberry.UNSET
    publication_date: str | None = strawberry.field(default=strawberry.UNSET, description="YYYY-MM-DD")


@strawberry.type(description="The outcome of one bulk item, in input order")
class BulkItemResult:
    external_id: str | None
    id: uuid.UUID | None
    status: str = strawberry.field(description="created, updated, unchanged or error")
    error: JSON | None = strawberry.field(description="{code, detail, errors} when status is error")
