"""Webhook subscriptions through REST: who may see and change what, validation, SSRF refusals."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import text

from app import db
from app.services import webhooks as webhooks_service
from app.settings import Settings, get_settings
from tests.auth import bearer, token_for
from tests.exchange.conftest import HOOKS, subscribe

pytestmark = pytest.mark.asyncio
URL = "http://127.0.0.1:9/hook"  # development allows loopback receivers; nothing is delivered in these tests


@pytest.fixture
async def br(engine):
    return bearer(await token_for("BR", "webhooks:write"))


@pytest.fixture
async def fr(engine):
    return bearer(await token_for("FR", "webhooks:write"))


async def state() -> list:
    async with db.read_connection() as conn:
        subs = await conn.execute(text("SELECT id, url, status, event_types, secret, updated_at FROM "
                                       "webhook_subscriptions ORDER BY id"))  # fmt: skip
        deliveries = await conn.execute(text("SELECT id, outcome FROM webhook_deliveries ORDER BY id"))
        return [list(subs), list(deliveries)]


async def test_party_b_cannot_list_change_ping_or_delete_party_a_subscription(client, br, fr):
    mine = await subscribe(client, br, URL, event_types=["record.*"])
    await subscribe(client, fr, URL)
    sid = mine["id"]
    r = await client.post(f"{HOOKS}/{sid}/ping", headers=br)
    delivery_id = r.json()["id"]
    before = await state()
    listed = (await client.get(HOOKS, headers=fr)).json()["items"]
    assert [w["owner"] for w in listed] == ["FR"]
    attempts = [
        client.get(f"{HOOKS}/{sid}", headers=fr),
        client.patch(f"{HOOKS}/{sid}", json={"status": "paused"}, headers=fr),
        client.patch(f"{HOOKS}/{sid}", json={"url": "http://127.0.0.1:10/evil"}, headers=fr),
        client.post(f"{HOOKS}/{sid}/ping", headers=fr),
        client.get(f"{HOOKS}/{sid}/deliveries", headers=fr),
        client.post(f"{HOOKS}/{sid}/deliveries/{delivery_id}/redeliver", headers=fr),
        client.post(f"{HOOKS}/{sid}/rotate-secret", headers=fr),
        client.delete(f"{HOOKS}/{sid}", headers=fr),
    ]
    for call in attempts:
        r = await call
        assert r.status_code == 404, r.text  # another Party's subscription does not exist for FR
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "whsec_" not in r.text
    assert await state() == before  # nothing changed
    # The owner and the Secretariat can.
    assert (await client.get(f"{HOOKS}/{sid}", headers=br)).status_code == 200
    sec = bearer(await token_for(None, "webhooks:write"))
    assert {w["owner"] for w in (await client.get(HOOKS, headers=sec)).json()["items"]} == {"BR", "FR"}
    r = await client.patch(f"{HOOKS}/{sid}", json={"status": "paused"}, headers=sec)
    assert r.status_code == 200 and r.json()["status"] == "paused"
    assert (await client.delete(f"{HOOKS}/{sid}", headers=sec)).status_code == 204
    assert (await client.get(f"{HOOKS}/{sid}", headers=br)).status_code == 404


async def test_scope_and_authentication(client, engine):
    r = await client.post(HOOKS, json={"url": URL})
    assert r.status_code == 401
    no_scope = bearer(await token_for("BR", "records:write"))
    for call in (client.post(HOOKS, json={"url": URL}, headers=no_scope), client.get(HOOKS, headers=no_scope),
                 client.get(f"{HOOKS}/status", headers=no_scope)):  # fmt: skip
        r = await call
        assert r.status_code == 403 and "webhooks:write" in r.json()["detail"]


async def test_party_cannot_create_for_another_party_but_the_secretariat_can(client, br):
    r = await client.post(HOOKS, json={"url": URL, "owner": "FR"}, headers=br)
    assert r.status_code == 403
    sec = bearer(await token_for(None, "webhooks:write"))
    created = await subscribe(client, sec, URL, owner="fr")
    assert created["owner"] == "FR"
    assert (await subscribe(client, sec, URL))["owner"] == "SECRETARIAT"


async def test_create_answers_the_secret_once_and_the_subscription(client, br):
    created = await subscribe(client, br, URL, event_types=["record.published", "decision.*"], parties=["br", "FR"],
                              kinds=["record", "decision"], description="  harvester  ")  # fmt: skip
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["event_types"] == ["record.published", "decision.*"] and created["parties"] == ["BR", "FR"]
    assert created["description"] == "harvester" and created["owner"] == "BR" and created["status"] == "active"
    r = await client.get(f"{HOOKS}/{created['id']}", headers=br)
    assert r.status_code == 200 and "secret" not in r.json() and r.headers["etag"]
    listed = (await client.get(HOOKS, headers=br)).json()["items"]
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]
    # If-Match: a stale ETag changes nothing.
    r = await client.patch(f"{HOOKS}/{created['id']}", json={"kinds": []}, headers={**br, "If-Match": '"stale"'})
    assert r.status_code == 412
    etag = (await client.get(f"{HOOKS}/{created['id']}", headers=br)).headers["etag"]
    r = await client.patch(f"{HOOKS}/{created['id']}", json={"kinds": []}, headers={**br, "If-Match": etag})
    assert r.status_code == 200 and r.json()["kinds"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": URL, "event_types": ["record.deleted"]}, "event_types"),
        ({"url": URL, "event_types": ["nope.*"]}, "event_types"),
        ({"url": URL, "parties": ["XX"]}, "parties"),
        ({"url": URL, "kinds": ["token"]}, "kinds"),
        ({"url": URL, "secret": "whsec_mine"}, "secret"),
        ({"url": "ftp://example.org/x"}, "url"),
        ({"url": "http://user:pw@127.0.0.1/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "http:///nohost"}, "url"),
        ({"url": URL, "event_types": ["record.*"] * 65}, "event_types"),
    ],
)
async def test_bad_input_is_a_problem_with_the_field(client, br, body, field):
    r = await client.post(HOOKS, json=body, headers=br)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert any(field in e["loc"] for e in r.json()["errors"]), r.json()
    async with db.read_connection() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM webhook_subscriptions"))).scalar_one() == 0


async def test_unknown_ids_are_404_and_bad_ids_422(client, br):
    assert (await client.get(f"{HOOKS}/{uuid.uuid4()}", headers=br)).status_code == 404
    assert (await client.get(f"{HOOKS}/not-a-uuid", headers=br)).status_code == 422
    sub = await subscribe(client, br, URL)
    r = await client.post(f"{HOOKS}/{sub['id']}/deliveries/99999999999999999999/redeliver", headers=br)
    assert r.status_code == 422
    r = await client.post(f"{HOOKS}/{sub['id']}/deliveries/12345/redeliver", headers=br)
    assert r.status_code == 404


async def test_subscriptions_per_owner_are_limited(client, br, monkeypatch):
    monkeypatch.setenv("CHM_WEBHOOK_MAX_PER_OWNER", "2")
    get_settings.cache_clear()
    try:
        await subscribe(client, br, URL)
        await subscribe(client, br, URL)
        r = await client.post(HOOKS, json={"url": URL}, headers=br)
        assert r.status_code == 409 and "limit is 2" in r.json()["detail"]
    finally:
        monkeypatch.delenv("CHM_WEBHOOK_MAX_PER_OWNER")
        get_settings.cache_clear()


# --- SSRF ------------------------------------------------------------------------------------------------------

REFUSED = ["http://127.0.0.1/hook", "http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data",
           "http://localhost/hook"]  # fmt: skip
# The same hosts over https, so the address check (not only the scheme) is what refuses them.
REFUSED_HTTPS = [u.replace("http://", "https://") for u in REFUSED] + [
    "https://[::1]/hook", "https://[::ffff:127.0.0.1]/hook", "https://0.0.0.0/hook", "https://100.100.100.200/",
    "https://192.168.1.10/", "https://[fe80::1]/", "https://224.0.0.1/", "https://[fd00:ec2::254]/",
]  # fmt: skip


def production() -> Settings:
    return Settings(CHM_ENV="production", CHM_SECRET_KEY="k" * 48)


@pytest.mark.parametrize("url", REFUSED + REFUSED_HTTPS)
async def test_production_settings_refuse_private_targets(url):
    settings = production()
    assert not settings.webhook_private_targets
    with pytest.raises(webhooks_service.UnsafeUrl) as exc:
        await webhooks_service.check_url(url, settings=settings)
    assert exc.value.errors[0]["loc"] == ["body", "url"]
    if url.startswith("https://"):
        assert "refused" in exc.value.detail  # the resolved address, not the scheme, was the reason


async def test_production_settings_accept_a_public_https_address():
    assert await webhooks_service.check_url("https://93.184.215.14/hook", settings=production())


async def test_the_api_refuses_private_targets_when_they_are_not_allowed(client, br, monkeypatch):
    monkeypatch.setitem(os.environ, "CHM_WEBHOOK_ALLOW_PRIVATE", "false")
    get_settings.cache_clear()
    try:
        for url in [*REFUSED, "https://localhost/hook"]:
            r = await client.post(HOOKS, json={"url": url}, headers=br)
            assert r.status_code == 422, (url, r.text)
            assert r.json()["errors"][0]["loc"] == ["body", "url"]
        async with db.read_connection() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM webhook_subscriptions"))).scalar_one() == 0
    finally:
        monkeypatch.delitem(os.environ, "CHM_WEBHOOK_ALLOW_PRIVATE")
        get_settings.cache_clear()
