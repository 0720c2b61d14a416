"""COP / CP-MOP / NP-MOP decisions and their paragraphs."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, HttpUrl, field_validator
from pydantic import Field as PField
from sqlalchemy import Column, ForeignKey, Index, Integer
from sqlalchemy.dialects.postgresql import UUID
from sqlmodel import Field, SQLModel

from app.models.common import BoundedDate, Int32, LString, LStringOut, SafeStr, Term, created_col, jsonb, text_array
from app.models.derive import check_in, term_cap, values

DecisionBody = Literal["COP", "CP-MOP", "NP-MOP"]
DecisionStatus = Literal["active", "elapsed", "superseded", "retired"]
ParagraphType = Literal["operative", "preambular"]
DECISION_BODIES = values(DecisionBody)
DECISION_STATUSES = values(DecisionStatus)


class Decision(SQLModel, table=True):
    __tablename__ = "decisions"
    __table_args__ = (
        check_in("status", DecisionStatus, "ck_decisions_status"),
        check_in("body", DecisionBody, "ck_decisions_body"),
        Index("ix_decisions_order", "body", "session", "number", "id"),
        Index("ix_decisions_updated", "updated_at", "id"),
        Index("ix_decisions_adopted", "adopted_on", "id"),
        Index("ix_decisions_subjects", "subjects", postgresql_using="gin"),
        Index("ix_decisions_gbf_targets", "gbf_targets", postgresql_using="gin"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(UUID(as_uuid=True), primary_key=True))
    code: str = Field(max_length=32, unique=True)
    symbol: str = Field(max_length=64)
    body: str = Field(max_length=8)
    session: int
    number: int
    title: dict[str, str] = Field(sa_column=jsonb())
    meeting: dict[str, str | None] | None = Field(default=None, sa_column=jsonb(nullable=True))
    adopted_on: date | None = None
    status: str = Field(default="active", max_length=16)
    subjects: list[str] = Field(default_factory=list, sa_column=text_array())
    gbf_targets: list[str] = Field(default_factory=list, sa_column=text_array())
    aichi_targets: list[str] = Field(default_factory=list, sa_column=text_array())
    url: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(sa_column=created_col())
    updated_at: datetime = Field(sa_column=created_col())


class DecisionParagraph(SQLModel, table=True):
    __tablename__ = "decision_paragraphs"

    decision_id: uuid.UUID = Field(
        sa_column=Column(UUID(as_uuid=True), ForeignKey("decisions.id", ondelete="CASCADE"), primary_key=True)
    )
    position: int = Field(sa_column=Column(Integer, primary_key=True))
    number: str | None = Field(default=None, max_length=32)
    section: str | None = Field(default=None, max_length=200)
    type: str = Field(default="operative", max_length=16)
    text: dict[str, str] = Field(sa_column=jsonb())
    actors: list[str] = Field(default_factory=list, sa_column=text_array())
    status: str | None = Field(default=None, max_length=16)


class Meeting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: SafeStr = PField(max_length=32)
    place: SafeStr | None = PField(default=None, max_length=200)
    start: BoundedDate | None = None
    end: BoundedDate | None = None


class ParagraphIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: SafeStr | None = PField(default=None, max_length=32)
    section: SafeStr | None = PField(default=None, max_length=200)
    type: ParagraphType = "operative"
    text: LString
    actors: list[Term] = PField(default_factory=list, max_length=50)
    status: DecisionStatus | None = None


class DecisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: SafeStr = PField(pattern=r"^(COP|CP-MOP|NP-MOP)-\d{1,2}-\d{1,3}$", examples=["COP-15-4"])
    symbol: SafeStr = PField(max_length=64, examples=["CBD/COP/DEC/15/4"])
    body: DecisionBody
    session: Int32 = PField(ge=1, le=99)
    number: Int32 = PField(ge=1, le=999)
    title: LString
    meeting: Meeting | None = None
    adopted_on: BoundedDate | None = None
    status: DecisionStatus = "active"
    subjects: list[Term] = PField(default_factory=list, max_length=term_cap("cbd-subjects"))
    gbf_targets: list[Term] = PField(default_factory=list, max_length=term_cap("gbf-targets"))
    aichi_targets: list[Term] = PField(default_factory=list, max_length=term_cap("aichi-targets"))
    url: HttpUrl | None = None
    paragraphs: list[ParagraphIn] = PField(default_factory=list, max_length=2000)


class DecisionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbol: SafeStr | None = PField(default=None, max_length=64)
    title: LString | None = None
    meeting: Meeting | None = None
    adopted_on: BoundedDate | None = None
    status: DecisionStatus | None = None
    subjects: list[Term] | None = PField(default=None, max_length=term_cap("cbd-subjects"))
    gbf_targets: list[Term] | None = PField(default=None, max_length=term_cap("gbf-targets"))
    aichi_targets: list[Term] | None = PField(default=None, max_length=term_cap("aichi-targets"))
    url: HttpUrl | None = None
    paragraphs: list[ParagraphIn] | None = PField(default=None, max_length=2000)

    @field_validator("symbol", "title", "status", "subjects", "gbf_targets", "aichi_targets", "paragraphs",
                     mode="before")  # fmt: skip
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value


class ParagraphPublic(BaseModel):
    number: str | None = None
    section: str | None = None
    type: ParagraphType
    text: LStringOut
    actors: list[str]
    status: str | None = None


class DecisionPublic(BaseModel):
    id: uuid.UUID
    code: str
    symbol: str
    body: DecisionBody
    session: int
    number: int
    title: LStringOut
    meeting: Meeting | None = None
    adopted_on: date | None = None
    status: DecisionStatus
    subjects: list[str]
    gbf_targets: list[str]
    aichi_targets: list[str]
    url: str | None = None
    paragraphs: list[ParagraphPublic] | None = PField(
        default=None, description="Included on single decisions; lists omit them"
    )
    created_at: datetime
    updated_at: datetime


class DecisionList(BaseModel):
    items: list[DecisionPublic]
    next_cursor: str | None = None
