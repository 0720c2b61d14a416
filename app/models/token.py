"""API tokens (the `jti` of each JWT has a row here) and the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField
from sqlalchemy import BigInteger, Column, Identity, Index, Integer
from sqlalchemy.dialects.postgresql import UUID
from sqlmodel import Field, SQLModel

from app.auth.principal import SCOPES
from app.models.common import Int32, SafeStr, Term, created_col, jsonb, text_array, ts_col

SECRETARIAT = "SECRETARIAT"


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_principal", "principal", "created_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(UUID(as_uuid=True), primary_key=True))
    name: str = Field(max_length=200)
    principal: str = Field(max_length=16, description="A Party code, or SECRETARIAT")
    scopes: list[str] = Field(default_factory=list, sa_column=text_array())
    created_by: uuid.UUID | None = Field(default=None, sa_column=Column(UUID(as_uuid=True), nullable=True))
    created_at: datetime = Field(sa_column=created_col())
    expires_at: datetime = Field(sa_column=ts_col(nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=ts_col())
    last_used_at: datetime | None = Field(default=None, sa_column=ts_col())


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_entity", "kind", "entity_id", "id"),
        Index("ix_audit_token", "token_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    at: datetime = Field(sa_column=created_col())
    token_id: uuid.UUID | None = Field(default=None, sa_column=Column(UUID(as_uuid=True), nullable=True))
    principal: str = Field(max_length=16)
    action: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    entity_id: str = Field(max_length=64)
    party: str | None = Field(default=None, max_length=2)
    before_revision: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    after_revision: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    detail: dict[str, Any] | None = Field(default=None, sa_column=jsonb(nullable=True))


ScopeName = Annotated[Term, PField(json_schema_extra={"enum": list(SCOPES)})]
"""A scope (validated by the tokens service, which names the unknown ones)."""


class TokenCreate(BaseModel):
    """A request to mint a token. `party` defaults to the caller's own Party; a Secretariat caller who omits it
    mints a Secretariat token."""

    model_config = ConfigDict(extra="forbid")
    name: SafeStr = PField(min_length=1, max_length=200, examples=["Brazil publishing system"])
    party: SafeStr | None = PField(default=None, min_length=2, max_length=2, examples=["BR"])
    scopes: list[ScopeName] = PField(max_length=len(SCOPES), examples=[["records:write", "records:publish"]])
    expires_days: Int32 = PField(description="Days until expiry, 1 to 366 (mandatory)", examples=[90])


class TokenPublic(BaseModel):
    """Token metadata; the token itself is never shown again after minting."""

    id: uuid.UUID
    name: str
    party: str | None = PField(description="The Party the token acts for; null for a Secretariat token")
    kind: Literal["party", "secretariat"]
    scopes: list[ScopeName]
    created_by: uuid.UUID | None = None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class TokenCreated(TokenPublic):
    """A freshly minted token: store `token` now, it is shown only once."""

    token: str


class TokenList(BaseModel):
    items: list[TokenPublic]
    next_cursor: str | None = None


class WhoAmI(BaseModel):
    """The caller as the API sees it."""

    kind: Literal["anonymous", "party", "secretariat"]
    party: str | None = None
    scopes: list[ScopeName] = []
    token_id: uuid.UUID | None = None
    token_name: str | None = None
    expires_at: datetime | None = None
