"""Response shapes of the search API (REST and, through the same service, GraphQL)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class SearchHit(BaseModel):
    kind: str = Field(description="record, node, decision, cooperation-request or opportunity")
    id: str
    uid: str | None = Field(default=None, description="Record uid (CHM-…) or decision code")
    party: str | None = None
    type: str | None = Field(default=None, description="Record type, or the decision's body (COP, CP-MOP, NP-MOP)")
    revision: int | None = None
    date: dt.date | None = None
    title: str | None = Field(default=None, description="In `lang`, else English, else any language")
    lang: str | None = Field(default=None, description="The language of `title` and `highlights`")
    score: float | None = None
    highlights: dict[str, str] = Field(default_factory=dict, description="`title` and `text` with <em> marks")


class SearchResponse(BaseModel):
    hits: list[SearchHit]
    facets: dict[str, dict[str, int]] = Field(
        default_factory=dict, examples=[{"type": {"news": 3, "resource": 1}}], description="Counts per value"
    )
    estimated_total: int
    processing_ms: float


class SearchStatus(BaseModel):
    backend: str = Field(description="meilisearch or postgres")
    index: str | None = None
    documents: int | None = None
    backlog: int = Field(description="Outbox rows waiting to be synced")
    oldest_pending_seconds: float | None = Field(default=None, description="Age of the oldest waiting row")
    parked: int = Field(description="Rows given up after repeated failures (see last_error)")
    last_error: str | None = None
    engine_error: str | None = Field(default=None, description="Set when the engine could not be asked")
