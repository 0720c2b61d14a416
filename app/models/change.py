"""The change log (harvesters' feed) and the search outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Identity, Index, Integer, Text, text
from sqlmodel import Field, SQLModel

from app.models.common import created_col, ts_col


class Change(SQLModel, table=True):
    """One create, update, publish or withdraw; `seq` is strictly increasing in commit order."""

    __tablename__ = "changes"
    __table_args__ = (
        Index("ix_changes_kind_seq", "kind", "seq"),
        Index("ix_changes_party_seq", "party", "seq"),
        # Harvesting (app/services/harvest.py): an entity's newest public change, and from= windows.
        Index("ix_changes_public_entity_seq", "kind", "entity_id", "seq", postgresql_where=text("public")),
        Index("ix_changes_public_at", "at", postgresql_where=text("public")),
    )

    seq: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    kind: str = Field(max_length=32)
    entity_id: str = Field(max_length=64)
    party: str | None = Field(default=None, max_length=2)
    op: str = Field(max_length=16)
    revision: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    public: bool = Field(default=True)
    at: datetime = Field(sa_column=created_col())


class OutboxEntry(SQLModel, table=True):
    """A pending search-index sync, written in the same transaction as the change it reflects."""

    __tablename__ = "search_outbox"
    __table_args__ = (
        Index(
            "ix_outbox_pending",
            "next_attempt_at",
            "id",
            postgresql_where=text("done_at IS NULL AND NOT parked"),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    kind: str = Field(max_length=32)
    entity_id: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=created_col())
    next_attempt_at: datetime = Field(sa_column=created_col())
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    done_at: datetime | None = Field(default=None, sa_column=ts_col())
    parked: bool = Field(default=False)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
