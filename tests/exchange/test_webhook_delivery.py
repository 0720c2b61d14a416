"""Webhook delivery end to end: REST subscription, the change log, the delivery worker, a real receiver on a loopback
port that verifies every request with the third-party `standardwebhooks` package."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app import db
from app.exchange.webhooks import DeliveryWorker, drain, sign
from tests.exchange.conftest import (
    HOOKS,
    create_record,
    deliveries,
    fast_settings,
    public_seqs,
    step,
    subscribe,
)
from tests.exchange.receiver import Receiver, bound_socket

pytestmark = pytest.mark.asyncio


async def wait_until(condition, within: float = 20.0) -> None:
    """Poll an async condition (the database has no callback for 'a failed attempt was logged')."""
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_publish_revise_withdraw_arrive_once_in_order_signed(client, br, worker):
    receiver = await Receiver(secrets=[]).start()
    try:
        sub = await subscribe(client, br, receiver.url, description="harvester")
        assert sub["secret"].startswith("whsec_") and sub["status"] == "active"
        receiver.secrets.append(sub["secret"])
        rec = await create_record(client, br)
        await step(client, br, rec["id"], "submit")
        await step(client, br, rec["id"], "publish")
        r = await client.patch(f"/api/v1/records/{rec['id']}", json={"title": {"en": "Mangroves, revised"}},
                               headers=br)  # fmt: skip
        assert r.status_code == 200, r.text
        await step(client, br, rec["id"], "publish")
        await step(client, br, rec["id"], "withdraw")
        events = await receiver.wait_events(3)
        await drain(worker)
    finally:
        await receiver.stop()
    assert [e["type"] for e in events] == ["record.published", "record.revised", "record.withdrawn"]
    assert len(receiver.requests) == 3 and all(d.verified for d in receiver.requests)  # once each, nothing else
    seqs = [e["data"]["seq"] for e in events]
    assert seqs == await public_seqs() and seqs == sorted(seqs)
    serial_uid = rec["id"]
    first, revised, withdrawn = (e["data"] for e in events)
    assert first["kind"] == "record" and first["id"] == serial_uid and first["party"] == "BR"
    assert first["revision"] == 1 and first["uid"].startswith("CHM-RES-BR-") and first["uid"].endswith("-1")
    assert revised["revision"] == 2 and revised["uid"] == first["uid"][:-1] + "2"
    assert withdrawn["revision"] == 2 and withdrawn["uid"] == revised["uid"]
    assert first["url"].endswith(f"/api/v1/records/{rec['id']}")
    assert set(events[0]) == {"type", "timestamp", "data"} and events[0]["timestamp"].endswith("Z")
    assert set(first) == {"seq", "kind", "id", "uid", "party", "revision", "url"}
    ids = [d.headers["webhook-id"] for d in receiver.requests]
    assert ids == [f"evt_{s}" for s in seqs]

    # The receiver's verifier rejects a tampered body and an old timestamp.
    d = receiver.requests[0]
    wh = Webhook(sub["secret"])
    assert wh.verify(d.body, d.headers)["data"]["seq"] == seqs[0]
    with pytest.raises(WebhookVerificationError):
        wh.verify(d.body.replace(b'"BR"', b'"FR"'), d.headers)
    old = int(time.time()) - 600
    resigned = sign(sub["secret"], d.headers["webhook-id"], old, d.body)  # correctly signed, but 10 minutes old
    stale = {**d.headers, "webhook-timestamp": str(old), "webhook-signature": resigned}
    with pytest.raises(WebhookVerificationError, match="too old"):
        wh.verify(d.body, stale)

    # The deliveries log, through REST: one success per event.
    log = (await client.get(f"{HOOKS}/{sub['id']}/deliveries", headers=br)).json()["items"]
    assert [(x["event_id"], x["outcome"], x["status_code"], x["attempt"]) for x in reversed(log)] == [
        (f"evt_{s}", "success", 200, 1) for s in seqs
    ]
    r = await client.get(f"{HOOKS}/{sub['id']}", headers=br)
    assert r.json()["delivered_seq"] >= seqs[-1] and "secret" not in r.json()


async def test_drafts_and_pending_records_never_produce_events(client, br, worker):
    receiver = await Receiver(secrets=[]).start()
    try:
        sub = await subscribe(client, br, receiver.url)
        receiver.secrets.append(sub["secret"])
        rec = await create_record(client, br)
        await client.patch(f"/api/v1/records/{rec['id']}", json={"title": {"en": "Still a draft"}}, headers=br)
        await step(client, br, rec["id"], "submit")
        r = await client.post("/api/v1/records/bulk", json={"items": [{**rec_body(i)} for i in range(3)]}, headers=br)
        assert r.status_code == 200, r.text
        await drain(worker)
        r = await client.post(f"{HOOKS}/{sub['id']}/ping", headers=br)  # a marker: everything before it was handled
        assert r.status_code == 202, r.text
        await receiver.wait_events(1)
        await drain(worker)
    finally:
        await receiver.stop()
    assert [e["type"] for e in receiver.events] == ["webhook.ping"]
    async with db.read_connection() as conn:
        head = (await conn.execute(text("SELECT max(seq) FROM changes"))).scalar_one()
        delivered = (await conn.execute(text("SELECT delivered_seq FROM webhook_subscriptions"))).scalar_one()
    assert head >= 6 and delivered == head  # the drafts' changes were passed over, not queued


def rec_body(i: int) -> dict:
    return {"type": "news", "title": {"en": f"Bulk draft {i}"}, "languages": ["en"], "external_id": f"draft-{i}"}


async def test_outage_then_recovery_delivers_everything_in_seq_order(client, br, worker):
    sock = bound_socket()  # bound, not listening: the receiver is down, connections are refused
    receiver = Receiver(secrets=[])
    receiver.port = sock.getsockname()[1]
    try:
        sub = await subscribe(client, br, receiver.url, event_types=["record.published"])
        receiver.secrets.append(sub["secret"])
        items = [{"type": "news", "title": {"en": f"News {i}"}, "languages": ["en"], "external_id": f"n-{i}"}
                 for i in range(200)]  # fmt: skip
        for chunk in (items[:100], items[100:]):
            r = await client.post("/api/v1/records/bulk?publish=true", json={"items": chunk}, headers=br)
            assert r.status_code == 200, r.text

        async def failed_twice() -> bool:
            return sum(d.outcome == "failure" for d in await deliveries(sub["id"])) >= 2

        await wait_until(failed_twice)
        await receiver.start(sock)
        events = await receiver.wait_events(200, within=60)
        await drain(worker)
    finally:
        await receiver.stop()
        sock.close()
    seqs = [e["data"]["seq"] for e in events]
    assert seqs == await public_seqs() and len(seqs) == 200  # every event, none missing, in seq order
    arrived = [d.payload["data"]["seq"] for d in receiver.requests]
    assert arrived == sorted(arrived)  # even counting retries, nothing ever arrived out of order
    log = await deliveries(sub["id"])
    failures = [d for d in log if d.outcome == "failure"]
    assert failures and all(d.seq == seqs[0] for d in failures)  # the first event was retried; the rest waited
    assert [d.attempt for d in failures] == list(range(1, len(failures) + 1))
    assert all("Connect" in (d.error or "") for d in failures) and all(d.status_code is None for d in failures)
    first_ok = next(d for d in log if d.outcome == "success")
    assert first_ok.seq == seqs[0] and first_ok.attempt == len(failures) + 1
    r = await client.get(f"{HOOKS}/{sub['id']}/deliveries?outcome=failure&limit=1", headers=br)
    page = r.json()
    assert r.status_code == 200 and page["items"][0]["error"]
    assert (page["next_cursor"] is not None) == (len(failures) > 1)
    state = (await client.get(f"{HOOKS}/{sub['id']}", headers=br)).json()
    assert state["failing_since"] is None and state["last_error"] is None and state["status"] == "active"


async def test_two_workers_never_deliver_one_subscription_concurrently_or_out_of_order(client, br, engine):
    # One subscription at a time each, a few events per claim: subscriptions change hands between the workers often.
    worker, second = (DeliveryWorker(settings=fast_settings(), name=f"test-worker-{i}", concurrency=1, budget=4)
                      for i in (1, 2))  # fmt: skip
    await worker.start()
    await second.start()
    receivers = [await Receiver(secrets=[], hold=0.003).start() for _ in range(3)]
    try:
        for rc in receivers:
            rc.secrets.append((await subscribe(client, br, rc.url))["secret"])
        for batch in range(4):
            items = [{"type": "news", "title": {"en": f"News {batch}-{i}"}, "languages": ["en"],
                      "external_id": f"w-{batch}-{i}"} for i in range(15)]  # fmt: skip
            r = await client.post("/api/v1/records/bulk?publish=true", json={"items": items}, headers=br)
            assert r.status_code == 200, r.text
        for rc in receivers:
            await rc.wait_events(60, within=60)
        await drain(worker)
    finally:
        await worker.stop()
        await second.stop()
        for rc in receivers:
            await rc.stop()
    expected = await public_seqs()
    assert worker.delivered > 0 and second.delivered > 0  # both workers took part
    for rc in receivers:
        assert rc.max_in_flight == 1
        arrived = [d.payload["data"]["seq"] for d in rc.requests]
        assert arrived == expected  # each event once, in seq order


async def test_secret_rotation_overlap_signs_with_both_secrets(client, br, worker):
    receiver = await Receiver(secrets=[]).start()
    try:
        sub = await subscribe(client, br, receiver.url)
        old = sub["secret"]
        r = await client.post(f"{HOOKS}/{sub['id']}/rotate-secret", headers=br)
        assert r.status_code == 200, r.text
        rotated = r.json()
        new = rotated["secret"]
        assert new != old and new.startswith("whsec_")
        expires = datetime.fromisoformat(rotated["previous_secret_expires_at"].replace("Z", "+00:00"))
        assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)
        receiver.secrets.append(old)  # a receiver that has not switched yet
        rec = await create_record(client, br)
        await step(client, br, rec["id"], "publish")
        await receiver.wait_events(1)
        d = receiver.requests[0]
        assert len(d.headers["webhook-signature"].split(" ")) == 2
        Webhook(old).verify(d.body, d.headers)
        Webhook(new).verify(d.body, d.headers)
        # After the overlap only the new secret signs.
        async with db.transaction() as session:
            await session.execute(text("UPDATE webhook_subscriptions SET previous_secret_expires_at = now() - "
                                       "interval '1 second'"))  # fmt: skip
        receiver.secrets[:] = [new]
        await step(client, br, rec["id"], "withdraw")
        await receiver.wait_events(2)
    finally:
        await receiver.stop()
    d = receiver.requests[-1]
    assert len(d.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(d.body, d.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(d.body, d.headers)


async def test_ping_redeliver_pause_resume_and_disable(client, br, engine):
    w = DeliveryWorker(settings=fast_settings(webhook_disable_after_seconds=0.3), name="test-worker-disable")
    await w.start()
    receiver = await Receiver(secrets=[]).start()
    try:
        sub = await subscribe(client, br, receiver.url)
        receiver.secrets.append(sub["secret"])
        sid = sub["id"]
        r = await client.post(f"{HOOKS}/{sid}/ping", headers=br)
        assert r.status_code == 202 and r.json()["outcome"] == "pending" and r.json()["event_id"].startswith("ping_")
        await receiver.wait_events(1)
        rec = await create_record(client, br)
        await step(client, br, rec["id"], "publish")
        await receiver.wait_events(2)

        async def acknowledged() -> bool:  # the receiver answered; the worker records it right after
            return any(d.outcome == "success" and d.seq for d in await deliveries(sid))

        await wait_until(acknowledged)
        log = (await client.get(f"{HOOKS}/{sid}/deliveries", headers=br)).json()["items"]
        event_row = next(x for x in log if x["event_type"] == "record.published")
        r = await client.post(f"{HOOKS}/{sid}/deliveries/{event_row['id']}/redeliver", headers=br)
        assert r.status_code == 202, r.text
        await receiver.wait_for(lambda rc: len(rc.requests) == 3)
        assert receiver.requests[2].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
        assert len(receiver.events) == 2  # the receiver deduplicated the redelivery

        # Paused: events wait; resumed: they arrive.
        r = await client.patch(f"{HOOKS}/{sid}", json={"status": "paused"}, headers=br)
        assert r.json()["status"] == "paused"
        await step(client, br, rec["id"], "withdraw")
        await drain(w)
        assert len(receiver.requests) == 3
        r = await client.patch(f"{HOOKS}/{sid}", json={"status": "active"}, headers=br)
        assert r.status_code == 200
        await receiver.wait_events(3)
        assert receiver.events[-1]["type"] == "record.withdrawn"

        # Failing longer than the configured time disables the subscription, with the reason; resume continues.
        receiver.status = 503
        await step(client, br, rec["id"], "publish")

        async def disabled() -> bool:
            return (await client.get(f"{HOOKS}/{sid}", headers=br)).json()["status"] == "disabled"

        await wait_until(disabled)
        state = (await client.get(f"{HOOKS}/{sid}", headers=br)).json()
        assert "HTTP 503" in state["disabled_reason"] and state["disabled_reason"].startswith("failing since")
        status = (await client.get(f"{HOOKS}/status", headers=br)).json()
        assert status["subscriptions"]["disabled"] == 1
        receiver.status = 200
        r = await client.patch(f"{HOOKS}/{sid}", json={"status": "active"}, headers=br)
        assert r.json()["status"] == "active" and r.json()["disabled_reason"] is None
        await receiver.wait_events(4)
        assert receiver.events[-1]["type"] == "record.revised"
    finally:
        await w.stop()
        await receiver.stop()


async def test_redirects_are_not_followed_and_count_as_failures(client, br, engine):
    w = DeliveryWorker(settings=fast_settings(webhook_retry_base_seconds=30), name="test-worker-redirect")
    await w.start()
    target = await Receiver(secrets=[]).start()
    redirecting = await Receiver(secrets=[], respond=lambda d: 307).start()
    try:
        sub = await subscribe(client, br, redirecting.url)
        rec = await create_record(client, br)
        await step(client, br, rec["id"], "publish")

        async def failed() -> bool:
            return any(d.outcome == "failure" for d in await deliveries(sub["id"]))

        await wait_until(failed)
    finally:
        await w.stop()
        await target.stop()
        await redirecting.stop()
    row = next(d for d in await deliveries(sub["id"]) if d.outcome == "failure")
    assert row.status_code == 307 and "redirects are not followed" in row.error and not target.requests


async def test_each_delivery_checks_the_address_again(client, br, engine):
    """A URL accepted earlier (here: in development) whose host now resolves to loopback is refused at delivery,
    as a rebinding DNS name would be; the attempt is logged and the receiver gets nothing."""
    receiver = await Receiver(secrets=[]).start()
    strict = fast_settings(webhook_allow_private=False, webhook_retry_base_seconds=30)
    w = DeliveryWorker(settings=strict, name="test-worker-strict")
    await w.start()
    try:
        sub = await subscribe(client, br, f"https://localhost:{receiver.port}/hook")
        rec = await create_record(client, br)
        await step(client, br, rec["id"], "publish")

        async def refused() -> bool:
            return any(d.outcome == "failure" for d in await deliveries(sub["id"]))

        await wait_until(refused)
    finally:
        await w.stop()
        await receiver.stop()
    row = next(d for d in await deliveries(sub["id"]) if d.outcome == "failure")
    assert "loopback" in row.error and "refused" in row.error and row.status_code is None
    assert receiver.requests == []
