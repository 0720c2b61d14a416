"""Webhook subscriptions through GraphQL: the same service, the same rules as REST."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app import db
from app.graphql.types.webhooks import WebhookDelivery, WebhookInput, WebhookPatch, WebhookSubscription
from app.models.webhook import DeliveryPublic, WebhookCreate, WebhookPublic, WebhookUpdate
from tests.auth import bearer, token_for
from tests.graphql import data, error, gql, same

pytestmark = pytest.mark.asyncio
URL = "http://127.0.0.1:9/hook"
SUB = ("id owner url description eventTypes parties kinds status disabledReason deliveredSeq failingSince lastError"
       " lastSuccessAt nextAttemptAt previousSecretExpiresAt createdAt updatedAt")  # fmt: skip
DELIVERY = ("id subscriptionId eventId eventType seq attempt outcome statusCode durationMs error responseExcerpt"
            " redeliveryOf createdAt attemptedAt")  # fmt: skip
CREATE = f"mutation($input: WebhookInput!) {{ createWebhook(input: $input) {{ secret subscription {{ {SUB} }} }} }}"
GET = f"query($id: UUID!) {{ webhookSubscription(id: $id) {{ {SUB} }} }}"
LIST = f"{{ webhookSubscriptions {{ nodes {{ {SUB} }} pageInfo {{ hasNextPage endCursor }} }} }}"
UPDATE = f"mutation($id: UUID!, $input: WebhookPatch!) {{ updateWebhook(id: $id, input: $input) {{ {SUB} }} }}"
DELETE = "mutation($id: UUID!) { deleteWebhook(id: $id) }"
PING = f"mutation($id: UUID!) {{ pingWebhook(id: $id) {{ {DELIVERY} }} }}"
REDELIVER = f"mutation($id: UUID!, $d: Int!) {{ redeliverWebhook(id: $id, deliveryId: $d) {{ {DELIVERY} }} }}"
ROTATE = f"mutation($id: UUID!) {{ rotateWebhookSecret(id: $id) {{ secret subscription {{ {SUB} }} }} }}"
DELIVERIES = f"query($id: UUID!) {{ webhookDeliveries(id: $id) {{ nodes {{ {DELIVERY} }} }} }}"


def _fields(gql_type: type) -> set[str]:
    return {f.python_name for f in gql_type.__strawberry_definition__.fields}  # type: ignore[attr-defined]


async def test_graphql_types_match_the_pydantic_schemas():
    assert _fields(WebhookSubscription) == set(WebhookPublic.model_fields)
    assert _fields(WebhookDelivery) == set(DeliveryPublic.model_fields)
    assert _fields(WebhookInput) == set(WebhookCreate.model_fields)
    assert _fields(WebhookPatch) == set(WebhookUpdate.model_fields)


@pytest.fixture
async def br(engine):
    return bearer(await token_for("BR", "webhooks:write"))


@pytest.fixture
async def fr(engine):
    return bearer(await token_for("FR", "webhooks:write"))


async def state() -> list:
    async with db.read_connection() as conn:
        subs = await conn.execute(text("SELECT * FROM webhook_subscriptions ORDER BY id"))
        deliveries = await conn.execute(text("SELECT id, outcome FROM webhook_deliveries ORDER BY id"))
        return [list(subs), list(deliveries)]


async def test_create_read_update_like_rest(client, br):
    created = data(await gql(client, CREATE, {"input": {"url": URL, "eventTypes": ["record.*"], "parties": ["br"]}},
                             br))["createWebhook"]  # fmt: skip
    assert created["secret"].startswith("whsec_")
    sub = created["subscription"]
    assert sub["owner"] == "BR" and sub["parties"] == ["BR"] and sub["eventTypes"] == ["record.*"]
    rest = (await client.get(f"/api/v1/webhooks/{sub['id']}", headers=br)).json()
    same(data(await gql(client, GET, {"id": sub["id"]}, br))["webhookSubscription"], rest)
    listed = data(await gql(client, LIST, None, br))["webhookSubscriptions"]["nodes"]
    assert [n["id"] for n in listed] == [sub["id"]]
    paused = data(await gql(client, UPDATE, {"id": sub["id"], "input": {"status": "paused"}}, br))["updateWebhook"]
    assert paused["status"] == "paused"
    ping = data(await gql(client, PING, {"id": sub["id"]}, br))["pingWebhook"]
    assert ping["outcome"] == "pending" and ping["eventType"] == "webhook.ping"
    rest_log = (await client.get(f"/api/v1/webhooks/{sub['id']}/deliveries", headers=br)).json()["items"]
    same(data(await gql(client, DELIVERIES, {"id": sub["id"]}, br))["webhookDeliveries"]["nodes"][0], rest_log[0])
    rotated = data(await gql(client, ROTATE, {"id": sub["id"]}, br))["rotateWebhookSecret"]
    assert rotated["secret"] != created["secret"] and rotated["subscription"]["previousSecretExpiresAt"]
    assert data(await gql(client, DELETE, {"id": sub["id"]}, br))["deleteWebhook"] == sub["id"]


async def test_party_b_cannot_touch_party_a_subscription_through_graphql(client, br, fr):
    sub = data(await gql(client, CREATE, {"input": {"url": URL}}, br))["createWebhook"]["subscription"]
    ping = data(await gql(client, PING, {"id": sub["id"]}, br))["pingWebhook"]
    before = await state()
    assert data(await gql(client, LIST, None, fr))["webhookSubscriptions"]["nodes"] == []
    for query, variables in [
        (GET, {"id": sub["id"]}),
        (UPDATE, {"id": sub["id"], "input": {"status": "paused"}}),
        (UPDATE, {"id": sub["id"], "input": {"url": "http://127.0.0.1:10/evil"}}),
        (PING, {"id": sub["id"]}),
        (DELIVERIES, {"id": sub["id"]}),
        (REDELIVER, {"id": sub["id"], "d": ping["id"]}),
        (ROTATE, {"id": sub["id"]}),
        (DELETE, {"id": sub["id"]}),
    ]:
        body = await gql(client, query, variables, fr)
        assert error(body)["extensions"]["code"] == "NOT_FOUND", (query, body)
        assert "whsec_" not in str(body)
    assert await state() == before


async def test_the_same_validation_and_scopes_as_rest(client, br):
    body = await gql(client, CREATE, {"input": {"url": "ftp://x.example/"}}, br)
    err = error(body)
    assert err["extensions"]["code"] == "UNSAFE_URL" and err["extensions"]["errors"][0]["loc"] == ["input", "url"]
    body = await gql(client, CREATE, {"input": {"url": URL, "kinds": ["token"]}}, br)
    assert error(body)["extensions"]["code"] == "INVALID"
    body = await gql(client, CREATE, {"input": {"url": URL}}, None)
    assert error(body)["extensions"]["code"] == "UNAUTHENTICATED"
    no_scope = bearer(await token_for("BR", "records:write"))
    assert error(await gql(client, LIST, None, no_scope))["extensions"]["code"] == "FORBIDDEN"
    async with db.read_connection() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM webhook_subscriptions"))).scalar_one() == 0
