"""GraphQL types of webhook subscriptions and their delivery log (hand-written; tests keep them in step with the
pydantic schemas in app/models/webhook.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry


@strawberry.type(description="A webhook subscription (the secret is shown only when created or rotated)")
class WebhookSubscription:
    id: uuid.UUID
    owner: str = strawberry.field(description="A Party code, or SECRETARIAT")
    url: str
    description: str | None
    event_types: list[str] = strawberry.field(description="Empty: every event type")
    parties: list[str] = strawberry.field(description="Empty: every Party")
    kinds: list[str] = strawberry.field(description="Empty: every kind")
    status: str = strawberry.field(description="active, paused or disabled")
    disabled_reason: str | None
    delivered_seq: int = strawberry.field(description="Every matching event up to this change-log seq is delivered")
    failing_since: datetime | None
    last_error: str | None
    last_success_at: datetime | None
    next_attempt_at: datetime
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


@strawberry.type(description="A subscription with its new secret: store it now, it is shown only once")
class WebhookSecret:
    subscription: WebhookSubscription
    secret: str


@strawberry.type(description="One delivery attempt")
class WebhookDelivery:
    id: int
    subscription_id: uuid.UUID
    event_id: str = strawberry.field(description="The webhook-id header: stable per event")
    event_type: str
    seq: int | None
    attempt: int
    outcome: str = strawberry.field(description="pending, success or failure")
    status_code: int | None
    duration_ms: float | None
    error: str | None
    response_excerpt: str | None
    redelivery_of: int | None
    created_at: datetime
    attempted_at: datetime | None


@strawberry.input(description="A subscription (WebhookCreate): only url is required; no filter means every event")
class WebhookInput:
    url: str
    event_types: list[str] | None = strawberry.UNSET
    parties: list[str] | None = strawberry.UNSET
    kinds: list[str] | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    owner: str | None = strawberry.UNSET


@strawberry.input(description="The fields to change (WebhookUpdate); status 'paused' or 'active' pauses or resumes")
class WebhookPatch:
    url: str | None = strawberry.UNSET
    event_types: list[str] | None = strawberry.UNSET
    parties: list[str] | None = strawberry.UNSET
    kinds: list[str] | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    status: str | None = strawberry.UNSET
