"""The delivery worker's fast path: events read once for every subscription (the worker's tail), acknowledgements of
many subscriptions recorded together, a subscription that is behind streaming on without a new claim. Order, at
least once and the delivery log must hold exactly as on the slow path; receivers verify with `standardwebhooks`."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app import db
from app.exchange.webhooks import DeliveryWorker, drain
from tests.exchange.conftest import deliveries, fast_settings, public_seqs, subscribe
from tests.exchange.receiver import Delivery, Receiver

pytestmark = pytest.mark.asyncio


async def publish(client, headers, tag: str, n: int) -> None:
    items = [{"type": "news", "title": {"en": f"News {tag} {i}"}, "languages": ["en"], "external_id": f"{tag}-{i}"}
             for i in range(n)]  # fmt: skip
    r = await client.post("/api/v1/records/bulk?publish=true", json={"items": items}, headers=headers)
    assert r.status_code == 200, r.text


async def test_backlog_then_live_events_arrive_in_order_on_every_subscription(client, br, engine):
    """A backlog older than the worker (read from the change log per subscription) followed by events published while
    it delivers (read from the shared tail): each of four receivers gets every event once, in seq order, verified."""
    receivers = [await Receiver(secrets=[]).start() for _ in range(4)]
    w = DeliveryWorker(settings=fast_settings(), name="test-worker-fast", concurrency=2, budget=7)
    try:
        for rc in receivers:
            rc.secrets.append((await subscribe(client, br, rc.url))["secret"])
        await publish(client, br, "backlog", 30)  # before the worker starts: behind its tail
        await w.start()
        for batch in range(3):
            await publish(client, br, f"live{batch}", 10)
        for rc in receivers:
            await rc.wait_events(60, within=60)
        await drain(w)
    finally:
        await w.stop()
        for rc in receivers:
            await rc.stop()
    expected = await public_seqs()
    assert len(expected) == 60 and w.tail.low is not None and w.tail.low > expected[0]  # both paths were taken
    for rc in receivers:
        assert all(d.verified for d in rc.requests) and rc.max_in_flight == 1
        assert [d.payload["data"]["seq"] for d in rc.requests] == expected  # once each, in order
    async with db.read_connection() as conn:
        rows = (await conn.execute(text("SELECT delivered_seq FROM webhook_subscriptions"))).all()
    assert [r.delivered_seq for r in rows] == [expected[-1]] * 4
    logged = [d.seq for d in await deliveries(str((await subscription_ids())[0]))]
    assert sorted(logged) == expected  # one success row per event, recorded through the batched flushes


async def subscription_ids() -> list[str]:
    async with db.read_connection() as conn:
        return [r.id for r in await conn.execute(text("SELECT id FROM webhook_subscriptions ORDER BY created_at"))]


async def test_a_receiver_failing_mid_stream_stops_its_stream_and_resumes_in_order(client, br, engine):
    """The 13th event fails once on one receiver: the events before it are acknowledged, nothing after it is sent
    until it succeeds, the retry carries attempt 2, and the other subscription is not held up."""
    failed: list[int] = []
    expected_seqs: list[int] = []

    def flaky(d: Delivery) -> int:
        seq = d.payload["data"]["seq"]
        if len(expected_seqs) > 12 and seq == expected_seqs[12] and not failed:
            failed.append(seq)
            return 500
        return 200

    bad = await Receiver(secrets=[], respond=flaky).start()
    good = await Receiver(secrets=[]).start()
    w = DeliveryWorker(settings=fast_settings(), name="test-worker-flaky")
    try:
        bad_sub = await subscribe(client, br, bad.url)
        bad.secrets.append(bad_sub["secret"])
        good.secrets.append((await subscribe(client, br, good.url))["secret"])
        async with db.read_connection() as conn:
            head = (await conn.execute(text("SELECT coalesce(max(seq), 0) FROM changes"))).scalar_one()
        await publish(client, br, "flaky", 25)
        expected_seqs.extend(s for s in await public_seqs() if s > head)
        await w.start()
        await good.wait_events(25, within=60)
        await bad.wait_for(lambda r: len(r.seen) == 25, within=60)
        await drain(w)
    finally:
        await w.stop()
        await bad.stop()
        await good.stop()
    assert failed == [expected_seqs[12]] and all(d.verified for d in bad.requests + good.requests)
    arrived = [d.payload["data"]["seq"] for d in bad.requests]
    assert arrived == expected_seqs[:13] + expected_seqs[12:]  # the failed event again, then the rest, in order
    assert [d.payload["data"]["seq"] for d in good.requests] == expected_seqs
    log = await deliveries(bad_sub["id"])
    assert [(d.seq, d.outcome, d.attempt) for d in log if d.seq == expected_seqs[12]] == [
        (expected_seqs[12], "failure", 1), (expected_seqs[12], "success", 2)]  # fmt: skip
    assert sorted(d.seq for d in log if d.outcome == "success") == expected_seqs
