"""Scientific and technical cooperation requests, and the offers made on them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic import Field as PField
from sqlalchemy import Column, Computed, ForeignKey, Index
from sqlalchemy.dialects.postgresql import TSVECTOR, UUID
from sqlmodel import Field, SQLModel

from app.models.common import BoundedDate, Contact, LString, LStringOut, SafeStr, Term, created_col, jsonb, text_array
from app.models.derive import check_in, values

RequestStatus = Literal["open", "in-discussion", "matched", "closed"]
OfferStatus = Literal["proposed", "accepted", "declined"]
OfferAnswer = Literal["accepted", "declined"]  # what the requester decides
REQUEST_STATUSES = values(RequestStatus)
OFFER_STATUSES = values(OfferStatus)


class CooperationRequest(SQLModel, table=True):
    __tablename__ = "cooperation_requests"
    __table_args__ = (
        check_in("status", RequestStatus, "ck_requests_status"),
        Index("ix_requests_updated", "updated_at", "id"),
        Index("ix_requests_party_updated", "party", "updated_at", "id"),
        Index("ix_requests_status_updated", "status", "updated_at", "id"),
        Index("ix_requests_subjects", "subjects", postgresql_using="gin"),
        Index("ix_requests_gbf_targets", "gbf_targets", postgresql_using="gin"),
        Index("ix_requests_match_tsv", "match_tsv", postgresql_using="gin"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(UUID(as_uuid=True), primary_key=True))
    party: str = Field(foreign_key="parties.code", max_length=2)
    title: dict[str, str] = Field(sa_column=jsonb())
    problem: dict[str, str] | None = Field(default=None, sa_column=jsonb(nullable=True))
    objectives: dict[str, str] | None = Field(default=None, sa_column=jsonb(nullable=True))
    assistance_types: list[str] = Field(default_factory=list, sa_column=text_array())
    subjects: list[str] = Field(default_factory=list, sa_column=text_array())
    gbf_targets: list[str] = Field(default_factory=list, sa_column=text_array())
    countries: list[str] = Field(default_factory=list, sa_column=text_array())
    start_date: date | None = None
    end_date: date | None = None
    contact: dict[str, str] | None = Field(default=None, sa_column=jsonb(nullable=True))
    status: str = Field(default="open", max_length=16)
    created_at: datetime = Field(sa_column=created_col())
    updated_at: datetime = Field(sa_column=created_col())
    # What matchmaking compares (migration 0012); never part of a public schema.
    match_tsv: Any = Field(
        default=None, sa_column=Column(TSVECTOR, Computed("public.chm_match_tsv(title, problem, objectives)",
                                                          persisted=True))
    )  # fmt: skip


class CooperationOffer(SQLModel, table=True):
    __tablename__ = "cooperation_offers"
    __table_args__ = (
        check_in("status", OfferStatus, "ck_offers_status"),
        Index("ix_offers_request", "request_id", "created_at", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(UUID(as_uuid=True), primary_key=True))
    request_id: uuid.UUID = Field(
        sa_column=Column(UUID(as_uuid=True), ForeignKey("cooperation_requests.id", ondelete="CASCADE"),
                         nullable=False)
    )  # fmt: skip
    provider_party: str | None = Field(default=None, foreign_key="parties.code", max_length=2)
    provider_organization: str | None = Field(default=None, max_length=500)
    description: dict[str, str] = Field(sa_column=jsonb())
    contact: dict[str, str] | None = Field(default=None, sa_column=jsonb(nullable=True))
    status: str = Field(default="proposed", max_length=16)
    created_at: datetime = Field(sa_column=created_col())
    updated_at: datetime = Field(sa_column=created_col())
    match_tsv: Any = Field(
        default=None, sa_column=Column(TSVECTOR, Computed("public.chm_match_tsv(description, NULL, NULL)",
                                                          persisted=True))
    )  # fmt: skip


class RequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    party: SafeStr | None = PField(default=None, min_length=2, max_length=2)
    title: LString
    problem: LString | None = None
    objectives: LString | None = None
    assistance_types: list[Term] = PField(default_factory=list, max_length=20)
    subjects: list[Term] = PField(default_factory=list, max_length=100)
    gbf_targets: list[Term] = PField(default_factory=list, max_length=23)
    countries: list[Term] = PField(default_factory=list, max_length=300)
    start_date: BoundedDate | None = None
    end_date: BoundedDate | None = None
    contact: Contact | None = None
    status: RequestStatus = "open"

    @model_validator(mode="after")
    def _dates_in_order(self) -> RequestCreate:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class RequestUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: LString | None = None
    problem: LString | None = None
    objectives: LString | None = None
    assistance_types: list[Term] | None = PField(default=None, max_length=20)
    subjects: list[Term] | None = PField(default=None, max_length=100)
    gbf_targets: list[Term] | None = PField(default=None, max_length=23)
    countries: list[Term] | None = PField(default=None, max_length=300)
    start_date: BoundedDate | None = None
    end_date: BoundedDate | None = None
    contact: Contact | None = None
    status: RequestStatus | None = None

    @field_validator("title", "assistance_types", "subjects", "gbf_targets", "countries", "status", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value


class OfferCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider_organization: SafeStr | None = PField(default=None, max_length=500)
    description: LString
    contact: Contact | None = None


class OfferUpdate(BaseModel):
    """What the offering Party may change on its own proposed offer."""

    model_config = ConfigDict(extra="forbid")
    provider_organization: SafeStr | None = PField(default=None, max_length=500)
    description: LString | None = None
    contact: Contact | None = None

    @field_validator("description", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value


class OfferDecision(BaseModel):
    """The requester's answer to an offer."""

    model_config = ConfigDict(extra="forbid")
    status: OfferAnswer


class OfferPublic(BaseModel):
    id: uuid.UUID
    request_id: uuid.UUID
    provider_party: str | None = None
    provider_organization: str | None = None
    description: LStringOut
    contact: Contact | None = None
    status: OfferStatus
    created_at: datetime
    updated_at: datetime


class RequestPublic(BaseModel):
    id: uuid.UUID
    party: str
    title: LStringOut
    problem: LStringOut | None = None
    objectives: LStringOut | None = None
    assistance_types: list[str]
    subjects: list[str]
    gbf_targets: list[str]
    countries: list[str]
    start_date: date | None = None
    end_date: date | None = None
    contact: Contact | None = None
    status: RequestStatus
    offers: list[OfferPublic] | None = PField(default=None, description="Included on single requests")
    created_at: datetime
    updated_at: datetime


class RequestList(BaseModel):
    items: list[RequestPublic]
    next_cursor: str | None = None


class OfferList(BaseModel):
    items: list[OfferPublic]
    next_cursor: str | None = None
