"""Opportunities: support on offer that is not yet tied to a request (the Bio-Bridge "opportunity")."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, HttpUrl, field_validator
from pydantic import Field as PField
from sqlalchemy import CheckConstraint, Column, Computed, Index, Text
from sqlalchemy.dialects.postgresql import TSVECTOR, UUID
from sqlmodel import Field, SQLModel

from app.models.common import (
    GIN_IN_PLACE,
    BoundedDate,
    Contact,
    CountryCode,
    LString,
    SafeStr,
    Term,
    created_col,
    jsonb,
    text_array,
)
from app.models.derive import check_in, term_cap, values

OpportunityStatus = Literal["open", "closed"]
OPPORTUNITY_STATUSES: tuple[str, ...] = values(OpportunityStatus)
# The text matchmaking compares (see app/services/matchmaking.py and migration 0012's chm_match_tsv).
MATCH_TSV_OPPORTUNITY = "public.chm_match_tsv(title, description, NULL)"


class Opportunity(SQLModel, table=True):
    __tablename__ = "opportunities"
    __table_args__ = (
        check_in("status", OpportunityStatus, "ck_opportunities_status"),
        CheckConstraint("provider_party IS NOT NULL OR provider_organization IS NOT NULL",
                        name="ck_opportunities_provider"),
        Index("ix_opportunities_updated", "updated_at", "id"),
        Index("ix_opportunities_party_updated", "provider_party", "updated_at", "id"),
        Index("ix_opportunities_status_updated", "status", "updated_at", "id"),
        Index("ix_opportunities_subjects", "subjects", postgresql_using="gin", postgresql_with=GIN_IN_PLACE),
        Index("ix_opportunities_gbf_targets", "gbf_targets", postgresql_using="gin", postgresql_with=GIN_IN_PLACE),
        Index("ix_opportunities_match_tsv", "match_tsv", postgresql_using="gin", postgresql_with=GIN_IN_PLACE),
    )  # fmt: skip

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(UUID(as_uuid=True), primary_key=True))
    # The publishing Party, which owns the entry; NULL when the Secretariat publishes for an organization.
    provider_party: str | None = Field(default=None, foreign_key="parties.code", max_length=2)
    provider_organization: str | None = Field(default=None, max_length=500)
    title: dict[str, str] = Field(sa_column=jsonb())
    description: dict[str, str] | None = Field(default=None, sa_column=jsonb(nullable=True))
    assistance_types: list[str] = Field(default_factory=list, sa_column=text_array())
    subjects: list[str] = Field(default_factory=list, sa_column=text_array())
    gbf_targets: list[str] = Field(default_factory=list, sa_column=text_array())
    eligible_countries: list[str] = Field(default_factory=list, sa_column=text_array())
    eligible_regions: list[str] = Field(default_factory=list, sa_column=text_array())
    application_deadline: date | None = None
    url: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    contact: dict[str, str] | None = Field(default=None, sa_column=jsonb(nullable=True))
    status: str = Field(default="open", max_length=16)
    created_at: datetime = Field(sa_column=created_col())
    updated_at: datetime = Field(sa_column=created_col())
    match_tsv: Any = Field(default=None, sa_column=Column(TSVECTOR, Computed(MATCH_TSV_OPPORTUNITY, persisted=True)))


class OpportunityCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider_party: SafeStr | None = PField(
        default=None, min_length=2, max_length=2,
        description="The publishing Party (default: the token's); the Secretariat may leave it out and name "
                    "`provider_organization` instead",
    )  # fmt: skip
    provider_organization: SafeStr | None = PField(default=None, min_length=1, max_length=500)
    title: LString
    description: LString | None = None
    assistance_types: list[Term] = PField(default_factory=list, max_length=term_cap("assistance-types"))
    subjects: list[Term] = PField(default_factory=list, max_length=term_cap("cbd-subjects"))
    gbf_targets: list[Term] = PField(default_factory=list, max_length=term_cap("gbf-targets"))
    eligible_countries: list[CountryCode] = PField(
        default_factory=list, max_length=300, description="ISO 3166-1 alpha-2 codes; empty (and no regions): any"
    )
    eligible_regions: list[Term] = PField(
        default_factory=list,
        max_length=term_cap("regions"),
        description="Codes of the `regions` vocabulary (UN M49 areas, SIDS, ...)",
    )
    application_deadline: BoundedDate | None = None
    url: HttpUrl | None = None
    contact: Contact | None = None
    status: OpportunityStatus = "open"


class OpportunityUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider_organization: SafeStr | None = PField(default=None, min_length=1, max_length=500)
    title: LString | None = None
    description: LString | None = None
    assistance_types: list[Term] | None = PField(default=None, max_length=term_cap("assistance-types"))
    subjects: list[Term] | None = PField(default=None, max_length=term_cap("cbd-subjects"))
    gbf_targets: list[Term] | None = PField(default=None, max_length=term_cap("gbf-targets"))
    eligible_countries: list[CountryCode] | None = PField(default=None, max_length=300)
    eligible_regions: list[Term] | None = PField(default=None, max_length=term_cap("regions"))
    application_deadline: BoundedDate | None = None
    url: HttpUrl | None = None
    contact: Contact | None = None
    status: OpportunityStatus | None = None

    @field_validator(
        "title", "assistance_types", "subjects", "gbf_targets", "eligible_countries", "eligible_regions", "status",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value


class OpportunityPublic(BaseModel):
    id: uuid.UUID
    provider_party: str | None = None
    provider_organization: str | None = None
    title: dict[str, str]
    description: dict[str, str] | None = None
    assistance_types: list[str]
    subjects: list[str]
    gbf_targets: list[str]
    eligible_countries: list[str]
    eligible_regions: list[str]
    application_deadline: date | None = None
    url: str | None = None
    contact: Contact | None = None
    status: OpportunityStatus
    created_at: datetime
    updated_at: datetime


class OpportunityList(BaseModel):
    items: list[OpportunityPublic]
    next_cursor: str | None = None
