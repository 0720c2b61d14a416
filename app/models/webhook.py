"""Webhook subscriptions (who gets pushed which public changes, and how far delivery got) and the delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField
from sqlalchemy import BigInteger, Column, Float, ForeignKey, Identity, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import UUID
from sqlmodel import Field, SQLModel

from app.models.common import created_col, text_array, ts_col
from app.models.derive import check_in, values

WebhookStatus = Literal["active", "paused", "disabled"]
WEBHOOK_STATUSES = values(WebhookStatus)
DeliveryOutcome = Literal["pending", "success", "failure"]
DELIVERY_OUTCOMES = values(DeliveryOutcome)
MAX_FILTER_ITEMS = 64


class WebhookSubscription(SQLModel, table=True):
    """A receiver URL with optional filters; `delivered_seq` is the change-log position delivered up to."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        check_in("status", WebhookStatus, "ck_webhook_subscriptions_status"),
        Index("ix_webhook_subscriptions_owner", "owner", "created_at", "id"),
        Index("ix_webhook_subscriptions_due", "next_attempt_at", postgresql_where=text("status = 'active'")),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(UUID(as_uuid=True), primary_key=True))
    owner: str = Field(max_length=16, description="A Party code, or SECRETARIAT")
    url: str = Field(sa_column=Column(Text, nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    event_types: list[str] = Field(default_factory=list, sa_column=text_array())
    parties: list[str] = Field(default_factory=list, sa_column=text_array())
    kinds: list[str] = Field(default_factory=list, sa_column=text_array())
    status: str = Field(default="active", max_length=16)
    disabled_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    secret: str = Field(sa_column=Column(Text, nullable=False))
    previous_secret: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    previous_secret_expires_at: datetime | None = Field(default=None, sa_column=ts_col())
    delivered_seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    next_attempt_at: datetime = Field(sa_column=created_col())
    failing_since: datetime | None = Field(default=None, sa_column=ts_col())
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    last_success_at: datetime | None = Field(default=None, sa_column=ts_col())
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_column=ts_col())
    created_by: uuid.UUID | None = Field(default=None, sa_column=Column(UUID(as_uuid=True), nullable=True))
    created_at: datetime = Field(sa_column=created_col())
    updated_at: datetime = Field(sa_column=created_col())


class WebhookDelivery(SQLModel, table=True):
    """One attempt to deliver one message (a change-log event, a ping or a redelivery); `pending` rows are queued
    pings and redeliveries the worker sends before the next event."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        check_in("outcome", DeliveryOutcome, "ck_webhook_deliveries_outcome"),
        Index("ix_webhook_deliveries_subscription", "subscription_id", "id"),
        Index("ix_webhook_deliveries_pending", "subscription_id", "id", postgresql_where=text("outcome = 'pending'")),
        Index("ix_webhook_deliveries_created", "created_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    subscription_id: uuid.UUID = Field(
        sa_column=Column(UUID(as_uuid=True), ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
                         nullable=False)
    )  # fmt: skip
    event_id: str = Field(max_length=64, description="The webhook-id header: stable per event")
    event_type: str = Field(max_length=64)
    seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    attempt: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default="1"))
    outcome: str = Field(default="pending", max_length=16)
    status_code: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    duration_ms: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    response_excerpt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    redelivery_of: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(sa_column=created_col())
    attempted_at: datetime | None = Field(default=None, sa_column=ts_col())


class WebhookWorkerBeat(SQLModel, table=True):
    """The last sign of life of each delivery worker (the status endpoint shows them)."""

    __tablename__ = "webhook_workers"

    name: str = Field(primary_key=True, max_length=128)
    beat_at: datetime = Field(sa_column=created_col())
    started_at: datetime = Field(sa_column=created_col())
    delivered: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))


# --- API schemas ---------------------------------------------------------------------------------------------

Url = PField(min_length=1, max_length=2000, examples=["https://harvester.example.org/chm/webhook"])
Filter = PField(default=None, max_length=MAX_FILTER_ITEMS)


class WebhookCreate(BaseModel):
    """A subscription: only `url` is required; no filter means every public event."""

    model_config = ConfigDict(extra="forbid")
    url: str = Url
    event_types: list[str] | None = PField(default=None, max_length=MAX_FILTER_ITEMS,
                                           examples=[["record.published", "record.revised", "decision.*"]])  # fmt: skip
    parties: list[str] | None = PField(default=None, max_length=MAX_FILTER_ITEMS, examples=[["BR", "FR"]])
    kinds: list[str] | None = PField(default=None, max_length=MAX_FILTER_ITEMS, examples=[["record"]])
    description: str | None = PField(default=None, max_length=500)
    owner: str | None = PField(default=None, min_length=2, max_length=2,
                               description="Secretariat only: create the subscription for this Party")  # fmt: skip


class WebhookUpdate(BaseModel):
    """Fields to change; `status` pauses (`paused`) or resumes (`active`) delivery."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = PField(default=None, min_length=1, max_length=2000)
    event_types: list[str] | None = PField(default=None, max_length=MAX_FILTER_ITEMS)
    parties: list[str] | None = PField(default=None, max_length=MAX_FILTER_ITEMS)
    kinds: list[str] | None = PField(default=None, max_length=MAX_FILTER_ITEMS)
    description: str | None = PField(default=None, max_length=500)
    status: Literal["active", "paused"] | None = None


class WebhookPublic(BaseModel):
    """A subscription as its owner sees it (never the secret)."""

    id: uuid.UUID
    owner: str
    url: str
    description: str | None = None
    event_types: list[str]
    parties: list[str]
    kinds: list[str]
    status: WebhookStatus
    disabled_reason: str | None = None
    delivered_seq: int = PField(description="Every matching event up to this change-log seq has been delivered")
    failing_since: datetime | None = None
    last_error: str | None = None
    last_success_at: datetime | None = None
    next_attempt_at: datetime
    previous_secret_expires_at: datetime | None = PField(
        default=None, description="Until then deliveries also carry a signature with the previous secret"
    )
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookPublic):
    """A new subscription (or a rotated secret): store `secret` now, it is shown only once."""

    secret: str = PField(description="whsec_ + base64 key; verify deliveries with any Standard Webhooks library")


class WebhookList(BaseModel):
    items: list[WebhookPublic]
    next_cursor: str | None = None


class DeliveryPublic(BaseModel):
    """One delivery attempt."""

    id: int
    subscription_id: uuid.UUID
    event_id: str
    event_type: str
    seq: int | None = None
    attempt: int
    outcome: DeliveryOutcome
    status_code: int | None = None
    duration_ms: float | None = None
    error: str | None = None
    response_excerpt: str | None = None
    redelivery_of: int | None = None
    created_at: datetime
    attempted_at: datetime | None = None


class DeliveryList(BaseModel):
    items: list[DeliveryPublic]
    next_cursor: str | None = None


class WebhookStatusPublic(BaseModel):
    """Delivery worker health: stuck subscriptions, backlog, workers' heartbeats."""

    subscriptions: dict[str, int]
    stuck: int = PField(description="Active subscriptions with due work that no worker has picked up in time")
    oldest_due_seconds: float | None = None
    max_lag_seconds: float | None = None
    workers: list[dict[str, object]]
    ok: bool
