"""REST: /api/v1/webhooks (subscriptions, pings, the delivery log, redelivery, secret rotation)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.auth.dependencies import PrincipalDep, ReadConnDep, SessionDep
from app.models.webhook import (
    DeliveryList,
    DeliveryPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookPublic,
    WebhookStatusPublic,
    WebhookUpdate,
)
from app.routers import http
from app.routers.params import DEFAULT, Cursor, IfMatch, Limit
from app.services import webhooks as webhooks_service

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
NO_STORE = {"Cache-Control": "no-store"}
DeliveryId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A delivery's id (from the deliveries log)")]


def _created(data: dict, secret: str, status_code: int) -> Response:
    body = http.render(WebhookCreated, {**data, "secret": secret})
    headers = {**NO_STORE, "Location": f"{router.prefix}/{data['id']}"}
    return Response(body, status_code=status_code, headers=headers, media_type=http.JSON)


@router.post("", response_model=WebhookCreated, status_code=201, summary="Subscribe to public changes")
async def create_webhook(body: WebhookCreate, session: SessionDep, principal: PrincipalDep) -> Response:
    """Needs `webhooks:write`. Only `url` is required; no filter means every public event. The `secret` is in this
    response only: store it now."""
    sub, secret = await webhooks_service.create(session, principal, data=body)
    return _created(sub, secret, 201)


@router.get("", response_model=WebhookList, summary="List webhook subscriptions")
async def list_webhooks(
    request: Request, conn: ReadConnDep, principal: PrincipalDep, limit: Limit = DEFAULT, cursor: Cursor = None,
    status: Annotated[str | None, Query(description="active, paused or disabled")] = None,
) -> Response:  # fmt: skip
    """Your Party's subscriptions (the Secretariat sees all), newest first."""
    items, next_cursor = await webhooks_service.list_webhooks(conn, principal, status=status, cursor=cursor,
                                                              limit=limit)  # fmt: skip
    return http.listing(request, WebhookList, items, next_cursor)


@router.get("/status", response_model=WebhookStatusPublic, summary="Webhook delivery status")
async def webhook_status(conn: ReadConnDep, principal: PrincipalDep) -> Response:
    """Subscriptions by status, stuck subscriptions (due work no worker picked up), the worst lag, workers."""
    data = await webhooks_service.status(conn, principal)
    return Response(http.render(WebhookStatusPublic, data), headers=NO_STORE, media_type=http.JSON)


@router.get("/{subscription_id}", response_model=WebhookPublic, summary="Get a webhook subscription")
async def get_webhook(request: Request, subscription_id: uuid.UUID, conn: ReadConnDep,
                      principal: PrincipalDep) -> Response:  # fmt: skip
    """One subscription, with an ETag (never its secret)."""
    return http.single(request, WebhookPublic, await webhooks_service.get_webhook(conn, principal, subscription_id))


@router.patch("/{subscription_id}", response_model=WebhookPublic, summary="Change, pause or resume a subscription")
async def update_webhook(
    request: Request, subscription_id: uuid.UUID, body: WebhookUpdate, session: SessionDep, principal: PrincipalDep,
    if_match: IfMatch = None,
) -> Response:  # fmt: skip
    """Change filters, URL or description; `status: paused` stops delivery, `status: active` resumes it from where
    it stopped (also after the server disabled a failing subscription)."""
    sub = await webhooks_service.update_webhook(session, principal, subscription_id, data=body, if_match=if_match)
    return http.single(request, WebhookPublic, sub)


@router.delete("/{subscription_id}", status_code=204, summary="Delete a subscription")
async def delete_webhook(subscription_id: uuid.UUID, session: SessionDep, principal: PrincipalDep,
                         if_match: IfMatch = None) -> Response:  # fmt: skip
    """Delete the subscription and its delivery log."""
    await webhooks_service.delete_webhook(session, principal, subscription_id, if_match=if_match)
    return Response(status_code=204)


@router.post("/{subscription_id}/ping", response_model=DeliveryPublic, status_code=202, summary="Send a ping")
async def ping_webhook(subscription_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> Response:
    """Queue a signed `webhook.ping`; its outcome appears in the deliveries log."""
    delivery = await webhooks_service.ping(session, principal, subscription_id)
    return Response(http.render(DeliveryPublic, delivery), status_code=202, headers=NO_STORE, media_type=http.JSON)


@router.get("/{subscription_id}/deliveries", response_model=DeliveryList, summary="The delivery log")
async def list_deliveries(
    request: Request, subscription_id: uuid.UUID, conn: ReadConnDep, principal: PrincipalDep, limit: Limit = DEFAULT,
    cursor: Cursor = None,
    outcome: Annotated[str | None, Query(description="pending, success or failure")] = None,
) -> Response:  # fmt: skip
    """Every attempt, newest first: event id, attempt number, HTTP status, duration, error."""
    items, next_cursor = await webhooks_service.list_deliveries(conn, principal, subscription_id, outcome=outcome,
                                                                cursor=cursor, limit=limit)  # fmt: skip
    return http.listing(request, DeliveryList, items, next_cursor)


@router.post("/{subscription_id}/deliveries/{delivery_id}/redeliver", response_model=DeliveryPublic,
             status_code=202, summary="Redeliver a message")  # fmt: skip
async def redeliver(subscription_id: uuid.UUID, delivery_id: DeliveryId, session: SessionDep,
                    principal: PrincipalDep) -> Response:  # fmt: skip
    """Queue that delivery's message again, with the same `webhook-id`."""
    delivery = await webhooks_service.redeliver(session, principal, subscription_id, delivery_id)
    return Response(http.render(DeliveryPublic, delivery), status_code=202, headers=NO_STORE, media_type=http.JSON)


@router.post("/{subscription_id}/rotate-secret", response_model=WebhookCreated, summary="Rotate the signing secret")
async def rotate_secret(subscription_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> Response:
    """A new secret (shown once); the old one keeps signing alongside it for 24 hours (`previous_secret_expires_at`):
    deliveries carry both signatures in one `webhook-signature` header meanwhile."""
    sub, secret = await webhooks_service.rotate_secret(session, principal, subscription_id)
    return _created(sub, secret, 200)
