"""Webhook queries and mutations over services.webhooks (the same rules as /api/v1/webhooks)."""

from __future__ import annotations

import uuid
from typing import Any

from app import db
from app.graphql.context import Info
from app.graphql.errors import validated
from app.graphql.inputs import data_of
from app.graphql.limits import DEFAULT_FIRST
from app.graphql.types.common import Connection, connection
from app.graphql.types.webhooks import WebhookDelivery, WebhookInput, WebhookPatch, WebhookSecret, WebhookSubscription
from app.models.webhook import WebhookCreate, WebhookUpdate
from app.services import webhooks as webhooks_service


def _secret(result: tuple[dict[str, Any], str]) -> WebhookSecret:
    sub, secret = result
    return WebhookSecret(subscription=sub, secret=secret)  # type: ignore[arg-type]


async def webhook_subscription(info: Info, id: uuid.UUID) -> WebhookSubscription:
    """One of your subscriptions (needs `webhooks:write`)."""
    async with info.context.read() as conn:
        return await webhooks_service.get_webhook(conn, info.context.principal, id)  # type: ignore[return-value]


async def webhook_subscriptions(info: Info, status: str | None = None, first: int = DEFAULT_FIRST,
                                after: str | None = None) -> Connection[WebhookSubscription]:  # fmt: skip
    """Your Party's subscriptions (the Secretariat: all), newest first."""
    async with info.context.read() as conn:
        page = await webhooks_service.list_webhooks(conn, info.context.principal, status=status, cursor=after,
                                                    limit=first)  # fmt: skip
    return connection(page, webhooks_service.SORT)


async def webhook_deliveries(info: Info, id: uuid.UUID, outcome: str | None = None, first: int = DEFAULT_FIRST,
                             after: str | None = None) -> Connection[WebhookDelivery]:  # fmt: skip
    """The delivery log of one subscription, newest first."""
    async with info.context.read() as conn:
        page = await webhooks_service.list_deliveries(conn, info.context.principal, id, outcome=outcome, cursor=after,
                                                      limit=first)  # fmt: skip
    return connection(page, webhooks_service.DELIVERY_SORT)


async def create_webhook(info: Info, input: WebhookInput) -> WebhookSecret:
    """Subscribe a URL to public changes; the secret is in this answer only."""
    data = validated(WebhookCreate, data_of(input))
    async with db.transaction() as session:
        return _secret(await webhooks_service.create(session, info.context.principal, data=data))


async def update_webhook(info: Info, id: uuid.UUID, input: WebhookPatch, if_match: str | None = None
                         ) -> WebhookSubscription:  # fmt: skip
    """Change filters, URL or description; status pauses or resumes."""
    data = validated(WebhookUpdate, data_of(input))
    async with db.transaction() as session:
        return await webhooks_service.update_webhook(session, info.context.principal, id, data=data,
                                                     if_match=if_match)  # type: ignore[return-value]  # fmt: skip


async def delete_webhook(info: Info, id: uuid.UUID, if_match: str | None = None) -> uuid.UUID:
    """Delete a subscription and its delivery log; answers its id."""
    async with db.transaction() as session:
        await webhooks_service.delete_webhook(session, info.context.principal, id, if_match=if_match)
    return id


async def ping_webhook(info: Info, id: uuid.UUID) -> WebhookDelivery:
    """Queue a signed webhook.ping; follow it in webhookDeliveries."""
    async with db.transaction() as session:
        return await webhooks_service.ping(session, info.context.principal, id)  # type: ignore[return-value]


async def redeliver_webhook(info: Info, id: uuid.UUID, delivery_id: int) -> WebhookDelivery:
    """Queue a past delivery's message again, with the same webhook-id."""
    async with db.transaction() as session:
        return await webhooks_service.redeliver(session, info.context.principal, id, delivery_id)  # type: ignore[return-value]


async def rotate_webhook_secret(info: Info, id: uuid.UUID) -> WebhookSecret:
    """A new secret; the old one keeps signing alongside it for 24 hours."""
    async with db.transaction() as session:
        return _secret(await webhooks_service.rotate_secret(session, info.context.principal, id))
