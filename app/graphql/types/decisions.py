"""GraphQL types of COP / CP-MOP / NP-MOP decisions and their paragraphs."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

import strawberry
from strawberry.scalars import JSON

from app.graphql.context import Info
from app.graphql.types import enums
from app.graphql.types.common import Row, as_date, i18n, lstring


def _start(root: Row) -> date | None:
    return as_date(root.get("start"))


def _end(root: Row) -> date | None:
    return as_date(root.get("end"))


@strawberry.type(description="The meeting that adopted a decision")
class Meeting:
    code: str
    place: str | None
    start: date | None = strawberry.field(resolver=_start)
    end: date | None = strawberry.field(resolver=_end)


@strawberry.type(description="A paragraph of a decision")
class Paragraph:
    number: str | None
    section: str | None
    type: str = strawberry.field(description="operative or preambular")
    text: JSON = i18n("text")
    text_text: str = lstring("text", required=True)
    actors: list[str]
    status: str | None


async def _paragraphs(root: Row, info: Info) -> list[Paragraph]:
    if root.get("paragraphs") is not None:  # single reads and writes include them already
        return root["paragraphs"]
    return await info.context.loaders.decision_paragraphs.load(root["id"])  # type: ignore[return-value]


@strawberry.type(description="A decision of the COP, CP-MOP or NP-MOP")
class Decision:
    id: uuid.UUID
    code: str
    symbol: str
    body: str = strawberry.field(description="COP, CP-MOP or NP-MOP")
    session: int
    number: int
    title: JSON = i18n("title")
    title_text: str = lstring("title", required=True)
    meeting: Meeting | None
    adopted_on: date | None
    status: str = strawberry.field(graphql_type=enums.DecisionStatus)
    subjects: list[str]
    gbf_targets: list[str]
    aichi_targets: list[str]
    url: str | None
    paragraphs: list[Paragraph] = strawberry.field(resolver=_paragraphs, description="In order")
    created_at: datetime
    updated_at: datetime


@strawberry.enum(description="Decision list order (the REST `sort` values)")
class DecisionSort(enum.Enum):
    CODE = "code"
    ADOPTED_ON_DESC = "-adopted_on"
    UPDATED_AT_DESC = "-updated_at"


@strawberry.input(description="The REST list filters of /api/v1/decisions")
class DecisionFilter:
    body: str | None = None
    session: int | None = None
    status: str | None = strawberry.field(default=None, graphql_type=enums.DecisionStatus | None)
    subject: str | None = None
    gbf_target: str | None = None
    updated_since: str | None = strawberry.field(default=None, description="ISO 8601 date or date-time")


@strawberry.input
class MeetingInput:
    code: str
    place: str | None = strawberry.UNSET
    start: str | None = strawberry.UNSET
    end: str | None = strawberry.UNSET


@strawberry.input
class ParagraphInput:
    text: JSON
    number: str | None = strawberry.UNSET
    section: str | None = strawberry.UNSET
    type: str | None = strawberry.UNSET
    actors: list[str] | None = strawberry.UNSET
    status: str | None = strawberry.UNSET


@strawberry.input(description="A decision, validated exactly like the REST body (DecisionCreate)")
class DecisionInput:
    code: str
    symbol: str
    body: str
    session: int
    number: int
    title: JSON
    meeting: MeetingInput | None = strawberry.UNSET
    adopted_on: str | None = strawberry.UNSET
    status: str | None = strawberry.field(default=strawberry.UNSET, graphql_type=enums.DecisionStatus | None)
    subjects: list[str] | None = strawberry.UNSET
    gbf_targets: list[str] | None = strawberry.UNSET
    aichi_targets: list[str] | None = strawberry.UNSET
    url: str | None = strawberry.UNSET
    paragraphs: list[ParagraphInput] | None = strawberry.UNSET


@strawberry.input(description="The fields to change (DecisionUpdate); `paragraphs`, when sent, replace all")
class DecisionPatch:
    symbol: str | None = strawberry.UNSET
    title: JSON | None = strawberry.UNSET
    meeting: MeetingInput | None = strawberry.UNSET
    adopted_on: str | None = strawberry.UNSET
    status: str | None = strawberry.field(default=strawberry.UNSET, graphql_type=enums.DecisionStatus | None)
    subjects: list[str] | None = strawberry.UNSET
    gbf_targets: list[str] | None = strawberry.UNSET
    aichi_targets: list[str] | None = strawberry.UNSET
    url: str | None = strawberry.UNSET
    paragraphs: list[ParagraphInput] | None = strawberry.UNSET
