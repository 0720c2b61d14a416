"""Matchmaking answers: ranked candidates with their score and the reasons that are true of each pair."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer
from sqlalchemy import Column, Float, ForeignKey, Index
from sqlalchemy.dialects.postgresql import UUID
from sqlmodel import Field as SField
from sqlmodel import SQLModel

from app.models.common import created_col, jsonb

MatchKind = Literal["opportunity", "offer", "record", "cooperation-request"]
ReasonKind = Literal["gbf_target", "subject", "assistance_type", "country", "region", "language", "text"]


class _Sparse(BaseModel):
    """Serialized without the fields that do not apply (None)."""

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


class MatchReason(_Sparse):
    """One thing both sides share."""

    kind: ReasonKind
    term: str | None = Field(default=None, description="The shared term (the query's side when matched through "
                             "the hierarchy)")  # fmt: skip
    terms: list[str] | None = Field(default=None, description="Shared words (text) or languages (language)")
    label: str | None = Field(default=None, description="The term's English title")
    relation: Literal["broader", "narrower"] | None = Field(
        default=None, description="Set when the other side has a broader or narrower term, not the same one"
    )
    matched: str | None = Field(default=None, description="The other side's term, when it is not the same one")
    matched_label: str | None = None
    credit: float | None = Field(default=None, description="What the hierarchical match counts (1 = same term)")
    country: str | None = Field(default=None, description="region: the requesting country the region contains")
    countries: list[str] | None = Field(default=None, description="region: one country of each side in it")


class MatchDetail(_Sparse):
    """Kind-specific facts about the candidate."""

    request_id: uuid.UUID | None = None
    provider_organization: str | None = None
    application_deadline: date | None = None
    status: str | None = None
    providers: list[str] | None = Field(default=None, description="A matched request: who helped (accepted offers)")


class Match(BaseModel):
    kind: MatchKind
    id: uuid.UUID
    type: str | None = Field(default=None, description="The record type, for records")
    party: str | None = Field(default=None, description="The candidate's Party (provider, publisher or requester)")
    title: dict[str, str]
    score: float = Field(ge=0, le=1)
    reasons: list[MatchReason]
    features: dict[str, float] = Field(description="Each feature's value in [0, 1] before weighting")
    detail: MatchDetail


class MatchList(BaseModel):
    items: list[Match]
    weights: dict[str, float] = Field(description="The feature weights this ranking used")
    settings: dict[str, Any] = Field(description="Every other constant of the ranking")


class CooperationMatch(SQLModel, table=True):
    """A match announced when an opportunity was published (the `cooperation.match` webhook event): once per
    pair, with the score and reasons it had then."""

    __tablename__ = "cooperation_matches"
    __table_args__ = (Index("uq_cooperation_matches_pair", "request_id", "opportunity_id", unique=True),)

    id: uuid.UUID = SField(default_factory=uuid.uuid4, sa_column=Column(UUID(as_uuid=True), primary_key=True))
    request_id: uuid.UUID = SField(
        sa_column=Column(UUID(as_uuid=True), ForeignKey("cooperation_requests.id", ondelete="CASCADE"), nullable=False)
    )
    opportunity_id: uuid.UUID = SField(
        sa_column=Column(UUID(as_uuid=True), ForeignKey("opportunities.id", ondelete="CASCADE"), nullable=False)
    )
    score: float = SField(sa_column=Column(Float, nullable=False))
    reasons: list[dict[str, Any]] = SField(sa_column=jsonb())
    created_at: datetime = SField(sa_column=created_col())


class AnnouncedMatch(BaseModel):
    """An announced match as the change feed and webhooks refer to it."""

    id: uuid.UUID
    request_id: uuid.UUID
    opportunity_id: uuid.UUID
    score: float
    created_at: datetime
