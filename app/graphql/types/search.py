"""GraphQL types of search results (the REST /api/v1/search shape)."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry.scalars import JSON

from app.graphql.types.common import Row, as_date


def _date(root: Row) -> date | None:
    return as_date(root.get("date"))


@strawberry.type(description="One search hit (published content only)")
class SearchHit:
    kind: str = strawberry.field(description="record, node, decision, cooperation-request or opportunity")
    id: str
    uid: str | None = strawberry.field(description="Record uid (CHM-…) or decision code")
    party: str | None
    type: str | None = strawberry.field(description="Record type, or the decision's body")
    revision: int | None
    date: date | None = strawberry.field(resolver=_date)
    title: str | None = strawberry.field(description="In `lang`, else English, else any language")
    lang: str | None = strawberry.field(description="The language of `title` and `highlights`")
    score: float | None
    highlights: JSON = strawberry.field(description="`title` and `text` with <em> marks")


@strawberry.type(description="Ranked hits across kinds, facet counts and an estimated total")
class SearchResult:
    hits: list[SearchHit]
    facets: JSON = strawberry.field(description='Counts per value, e.g. {"type": {"news": 3}}')
    estimated_total: int
    processing_ms: float
