"""National CHM nodes: a Party's own clearing-house site."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, HttpUrl, field_validator
from pydantic import Field as PField
from sqlalchemy import Column, Index
from sqlalchemy.dialects.postgresql import UUID
from sqlmodel import Field, SQLModel

from app.models.common import Contact, Lang, LString, created_col, jsonb, text_array
from app.models.derive import check_in, values

NodeStatus = Literal["active", "in-development", "inactive"]
NODE_STATUSES = values(NodeStatus)


class NationalNode(SQLModel, table=True):
    __tablename__ = "national_nodes"
    __table_args__ = (
        check_in("status", NodeStatus, "ck_nodes_status"),
        Index("ix_nodes_updated", "updated_at", "id"),
        Index("ix_nodes_party_updated", "party", "updated_at", "id"),
        Index("ix_nodes_status_updated", "status", "updated_at", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(UUID(as_uuid=True), primary_key=True))
    party: str = Field(foreign_key="parties.code", max_length=2)
    name: dict[str, str] = Field(sa_column=jsonb())
    description: dict[str, str] | None = Field(default=None, sa_column=jsonb(nullable=True))
    url: str = Field(max_length=2000)
    languages: list[str] = Field(default_factory=list, sa_column=text_array())
    status: str = Field(default="active", max_length=16)
    platform: str | None = Field(default=None, max_length=64)
    focal_point: dict[str, str] | None = Field(default=None, sa_column=jsonb(nullable=True))
    feed_url: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(sa_column=created_col())
    updated_at: datetime = Field(sa_column=created_col())


class NodeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    party: str | None = PField(default=None, min_length=2, max_length=2)
    name: LString
    description: LString | None = None
    url: HttpUrl
    languages: list[Lang] = PField(default_factory=list, max_length=6)
    status: NodeStatus = "active"
    platform: str | None = PField(default=None, max_length=64)
    focal_point: Contact | None = None
    feed_url: HttpUrl | None = None


class NodeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: LString | None = None
    description: LString | None = None
    url: HttpUrl | None = None
    languages: list[Lang] | None = PField(default=None, max_length=6)
    status: NodeStatus | None = None
    platform: str | None = PField(default=None, max_length=64)
    focal_point: Contact | None = None
    feed_url: HttpUrl | None = None

    @field_validator("name", "url", "languages", "status", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value


class NodePublic(BaseModel):
    id: uuid.UUID
    party: str
    name: dict[str, str]
    description: dict[str, str] | None = None
    url: str
    languages: list[str]
    status: NodeStatus
    platform: str | None = None
    focal_point: Contact | None = None
    feed_url: str | None = None
    created_at: datetime
    updated_at: datetime


class NodeList(BaseModel):
    items: list[NodePublic]
    next_cursor: str | None = None
