"""CHM records: the head row (public content), working drafts, and every published revision."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as PField
from sqlalchemy import BigInteger, Column, Computed, ForeignKey, Index, Integer, Sequence, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import TSVECTOR, UUID
from sqlmodel import Field, SQLModel

from app.models.common import (
    GIN_IN_PLACE,
    BoundedDate,
    Keyword,
    Lang,
    Link,
    LString,
    LStringOut,
    SafeStr,
    Term,
    created_col,
    jsonb,
    text_array,
    ts_col,
)
from app.models.derive import check_in, term_cap, values

RecordType = Literal[
    "resource", "news", "event", "case-study", "project",
    "national-report", "nbsap", "national-target", "organization", "expert",
]  # fmt: skip
RecordStatus = Literal["draft", "pending", "published", "withdrawn"]
DraftStatus = Literal["draft", "pending"]
RECORD_TYPES = values(RecordType)
RECORD_STATUSES = values(RecordStatus)

RECORD_TYPE_ABBR: dict[str, str] = {
    "resource": "RES",
    "news": "NEWS",
    "event": "EVT",
    "case-study": "CS",
    "project": "PRJ",
    "national-report": "NR",
    "nbsap": "NBSAP",
    "national-target": "NT",
    "organization": "ORG",
    "expert": "EXP",
}
if tuple(RECORD_TYPE_ABBR) != RECORD_TYPES:
    raise RuntimeError("RECORD_TYPE_ABBR must list every RecordType, in order")
ABBR_RECORD_TYPE = {v: k for k, v in RECORD_TYPE_ABBR.items()}
# Record types matchmaking proposes as candidates (people, organizations and projects that can help).
MATCHED_TYPES: tuple[str, ...] = ("expert", "organization", "project")
MATCHED_TYPES_SQL = "(" + ",".join(f"'{t}'" for t in MATCHED_TYPES) + ")"

record_serial_seq = Sequence("record_serial_seq", metadata=SQLModel.metadata)


def make_uid(rtype: str, party: str, serial: int, revision: int) -> str:
    """The public id, e.g. CHM-RES-BR-000123-2."""
    return f"CHM-{RECORD_TYPE_ABBR[rtype]}-{party}-{serial:06d}-{revision}"


class Record(SQLModel, table=True):
    """The head of a record: identity, life cycle and the content the public (or, before the first
    publication, its owners) sees."""

    __tablename__ = "records"
    __table_args__ = (
        check_in("status", RecordStatus, "ck_records_status"),
        # uids carry the Party, so serials are unique per Party (a mirror keeps the source's serials)
        UniqueConstraint("party", "serial", name="uq_records_party_serial"),
        Index("uq_records_party_external_id", "party", "external_id", unique=True,
              postgresql_where=text("external_id IS NOT NULL")),
        Index("ix_records_status_updated", "status", "updated_at", "id"),
        Index("ix_records_party_status_updated", "party", "status", "updated_at", "id"),
        Index("ix_records_type_status_updated", "type", "status", "updated_at", "id"),
        Index("ix_records_status_published", "status", "published_at", "id"),
        Index("ix_records_status_created", "status", "created_at", "id"),
        Index("ix_records_subjects", "subjects", postgresql_using="gin"),
        Index("ix_records_gbf_targets", "gbf_targets", postgresql_using="gin"),
        Index("ix_records_match_tsv", "match_tsv", postgresql_using="gin", postgresql_with=GIN_IN_PLACE,
              postgresql_where=text("match_tsv IS NOT NULL")),
        # The terms of what matchmaking proposes (app/services/matchmaking.py writes its WHERE like this).
        Index("ix_records_match_terms", "gbf_targets", "subjects", postgresql_using="gin", postgresql_with=GIN_IN_PLACE,
              postgresql_where=text(f"status = 'published' AND type IN {MATCHED_TYPES_SQL}")),
        Index("ix_records_type_status", "type", "status", postgresql_where=text(f"type IN {MATCHED_TYPES_SQL}")),
    )  # fmt: skip

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(UUID(as_uuid=True), primary_key=True))
    serial: int = Field(
        sa_column=Column(BigInteger, record_serial_seq, server_default=record_serial_seq.next_value(),
                         nullable=False)
    )  # fmt: skip
    party: str = Field(foreign_key="parties.code", max_length=2)
    type: str = Field(max_length=32)
    status: str = Field(default="draft", max_length=16)
    revision: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    external_id: str | None = Field(default=None, max_length=200)
    title: dict[str, str] = Field(sa_column=jsonb())
    summary: dict[str, str] | None = Field(default=None, sa_column=jsonb(nullable=True))
    body: dict[str, str] | None = Field(default=None, sa_column=jsonb(nullable=True))
    languages: list[str] = Field(default_factory=list, sa_column=text_array())
    links: list[dict[str, Any]] = Field(default_factory=list, sa_column=jsonb(server_default="[]"))
    keywords: list[str] = Field(default_factory=list, sa_column=text_array())
    subjects: list[str] = Field(default_factory=list, sa_column=text_array())
    gbf_targets: list[str] = Field(default_factory=list, sa_column=text_array())
    aichi_targets: list[str] = Field(default_factory=list, sa_column=text_array())
    countries: list[str] = Field(default_factory=list, sa_column=text_array())
    publication_date: date | None = None
    created_at: datetime = Field(sa_column=created_col())
    updated_at: datetime = Field(sa_column=created_col())
    published_at: datetime | None = Field(default=None, sa_column=ts_col())
    withdrawn_at: datetime | None = Field(default=None, sa_column=ts_col())
    # What matchmaking compares, only on the record types it proposes (migration 0012); never public.
    match_tsv: Any = Field(
        default=None, sa_column=Column(TSVECTOR, Computed(
            f"CASE WHEN type IN {MATCHED_TYPES_SQL} THEN public.chm_match_tsv(title, summary, NULL) END",
            persisted=True))
    )  # fmt: skip


class RecordDraft(SQLModel, table=True):
    """A working draft over a published (or withdrawn) record; the public keeps seeing the head row."""

    __tablename__ = "record_drafts"
    __table_args__ = (check_in("status", DraftStatus, "ck_record_drafts_status"),)

    record_id: uuid.UUID = Field(
        sa_column=Column(UUID(as_uuid=True), ForeignKey("records.id", ondelete="CASCADE"), primary_key=True)
    )
    status: str = Field(default="draft", max_length=16)
    content: dict[str, Any] = Field(sa_column=jsonb())
    created_at: datetime = Field(sa_column=created_col())
    updated_at: datetime = Field(sa_column=created_col())


class RecordRevision(SQLModel, table=True):
    """An immutable published revision."""

    __tablename__ = "record_revisions"

    record_id: uuid.UUID = Field(
        sa_column=Column(UUID(as_uuid=True), ForeignKey("records.id", ondelete="CASCADE"), primary_key=True)
    )
    revision: int = Field(sa_column=Column(Integer, primary_key=True))
    content: dict[str, Any] = Field(sa_column=jsonb())
    published_at: datetime = Field(sa_column=created_col())
    published_by: str | None = Field(default=None, max_length=64)


class RecordContentIn(BaseModel):
    """Fields a publisher writes. Server-owned fields (id, uid, status, revision, timestamps) are refused."""

    model_config = ConfigDict(extra="forbid")

    type: RecordType
    title: LString
    summary: LString | None = None
    body: LString | None = None
    languages: list[Lang] = PField(default_factory=list, max_length=6)
    links: list[Link] = PField(default_factory=list, max_length=100)
    keywords: list[Keyword] = PField(default_factory=list, max_length=100)
    subjects: list[Term] = PField(default_factory=list, max_length=term_cap("cbd-subjects"))
    gbf_targets: list[Term] = PField(default_factory=list, max_length=term_cap("gbf-targets"))
    aichi_targets: list[Term] = PField(default_factory=list, max_length=term_cap("aichi-targets"))
    countries: list[Term] = PField(default_factory=list, max_length=300)
    publication_date: BoundedDate | None = None


# Content columns shared by the head row, working drafts and (as JSON) revisions.
CONTENT_FIELDS: tuple[str, ...] = tuple(RecordContentIn.model_fields)


class RecordCreate(RecordContentIn):
    """A new record (a draft). `party` defaults to the token's Party."""

    party: SafeStr | None = PField(default=None, min_length=2, max_length=2)
    external_id: SafeStr | None = PField(default=None, min_length=1, max_length=200)


class RecordUpdate(BaseModel):
    """A partial update (PATCH); PUT takes a full RecordCreate."""

    model_config = ConfigDict(extra="forbid")

    type: RecordType | None = None
    title: LString | None = None
    summary: LString | None = None
    body: LString | None = None
    languages: list[Lang] | None = PField(default=None, max_length=6)
    links: list[Link] | None = PField(default=None, max_length=100)
    keywords: list[Keyword] | None = PField(default=None, max_length=100)
    subjects: list[Term] | None = PField(default=None, max_length=term_cap("cbd-subjects"))
    gbf_targets: list[Term] | None = PField(default=None, max_length=term_cap("gbf-targets"))
    aichi_targets: list[Term] | None = PField(default=None, max_length=term_cap("aichi-targets"))
    countries: list[Term] | None = PField(default=None, max_length=300)
    publication_date: BoundedDate | None = None
    external_id: SafeStr | None = PField(default=None, min_length=1, max_length=200)

    @field_validator("type", "title", "languages", "links", "keywords", "subjects", "gbf_targets",
                     "aichi_targets", "countries", mode="before")  # fmt: skip
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value


class LinkPublic(BaseModel):
    url: str
    name: str | None = None
    language: str | None = None


class RecordPublic(BaseModel):
    """A record as readers see it."""

    id: uuid.UUID
    uid: str | None = PField(description="CHM-{TYPE}-{PARTY}-{serial}-{revision}; null before first publication")
    party: str
    type: RecordType
    status: RecordStatus
    revision: int
    title: LStringOut
    summary: LStringOut | None = None
    body: LStringOut | None = None
    languages: list[str]
    links: list[LinkPublic]
    keywords: list[str]
    subjects: list[str]
    gbf_targets: list[str]
    aichi_targets: list[str]
    countries: list[str]
    publication_date: date | None = None
    external_id: str | None = None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None = None
    withdrawn_at: datetime | None = None
    draft_status: DraftStatus | None = PField(
        default=None, description="Status of a working draft over this record; owners only"
    )
    draft_updated_at: datetime | None = PField(default=None, description="Last edit of the working draft; owners only")


class RecordRevisionPublic(BaseModel):
    """One published revision."""

    record_id: uuid.UUID
    uid: str
    revision: int
    published_at: datetime
    content: dict[str, Any]


class RecordList(BaseModel):
    items: list[RecordPublic]
    next_cursor: str | None = None


class RecordRevisionList(BaseModel):
    items: list[RecordRevisionPublic]
    next_cursor: str | None = None
