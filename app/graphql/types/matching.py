"""GraphQL types of matchmaking answers (the REST MatchList items)."""

from __future__ import annotations

import uuid
from datetime import date

import strawberry
from strawberry.scalars import JSON

from app.graphql.context import Info
from app.graphql.types.common import Row, i18n, lstring
from app.services import matchmaking as matchmaking_service


@strawberry.type(description="One thing both sides of a match share")
class MatchReason:
    kind: str = strawberry.field(description="gbf_target, subject, assistance_type, country, region, language, text")
    term: str | None
    terms: list[str] | None
    label: str | None
    relation: str | None = strawberry.field(description="broader or narrower: the other side's term is not the same")
    matched: str | None
    matched_label: str | None
    credit: float | None
    country: str | None
    countries: list[str] | None


@strawberry.type(description="Kind-specific facts about a matched candidate")
class MatchDetail:
    request_id: uuid.UUID | None
    provider_organization: str | None
    application_deadline: date | None
    status: str | None
    providers: list[str] | None


def _reasons(root: Row) -> list[MatchReason]:
    return [MatchReason(**{f: r.get(f) for f in MatchReason.__annotations__}) for r in root["reasons"]]


def _detail(root: Row) -> MatchDetail:
    return MatchDetail(**{f: root["detail"].get(f) for f in MatchDetail.__annotations__})


@strawberry.type(description="A ranked candidate: score in [0, 1] and the reasons it fits")
class Match:
    kind: str = strawberry.field(description="opportunity, offer, record or cooperation-request")
    id: uuid.UUID
    type: str | None
    party: str | None = strawberry.field(name="partyCode")
    title: JSON = i18n("title")
    title_text: str = lstring("title", required=True)
    score: float
    reasons: list[MatchReason] = strawberry.field(resolver=_reasons)
    features: JSON
    detail: MatchDetail = strawberry.field(resolver=_detail)


async def request_matches(root: Row, info: Info, first: int = matchmaking_service.DEFAULT_LIMIT,
                          kinds: list[str] | None = None) -> list[Match]:  # fmt: skip
    """Who can help with this request, best first (as GET /cooperation-requests/{id}/matches); a list of requests
    ranks through one loader call (at most matchmaking.BATCH_MAX requests)."""
    key = (root["id"], first, tuple(kinds) if kinds else None)
    return await info.context.loaders.request_matches.load(key)  # type: ignore[return-value]


async def opportunity_matches(root: Row, info: Info, first: int = matchmaking_service.DEFAULT_LIMIT) -> list[Match]:
    """The open requests this opportunity can serve, best first (as GET /opportunities/{id}/matches); a list of
    opportunities ranks through one loader call (at most matchmaking.BATCH_MAX opportunities)."""
    return await info.context.loaders.opportunity_matches.load((root["id"], first))  # type: ignore[return-value]
