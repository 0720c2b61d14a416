"""Operating webhooks: the CLI, the status endpoint and /readyz on a stuck worker, metrics, timeouts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from app import db
from app.exchange.webhooks import DeliveryWorker
from tests.auth import bearer, token_for
from tests.exchange.conftest import HOOKS, create_record, deliveries, fast_settings, step, subscribe
from tests.exchange.receiver import Receiver
from tests.exchange.test_webhook_delivery import wait_until

pytestmark = pytest.mark.asyncio
CHM = str(Path(sys.executable).parent / "chm")


def chm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHM, *args], capture_output=True, text=True, env=os.environ.copy(), timeout=120, check=False)  # noqa: S603


async def test_cli_creates_lists_pauses_resumes_rotates_and_deletes(client):
    done = chm("webhooks", "create", "http://127.0.0.1:9/hook", "--owner", "BR", "--events", "record.*")
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip()
    assert secret.startswith("whsec_") and "\n" not in secret
    sec = bearer(await token_for(None, "webhooks:write"))
    [sub] = (await client.get(HOOKS, headers=sec)).json()["items"]
    assert sub["owner"] == "BR" and sub["event_types"] == ["record.*"]
    listed = chm("webhooks", "list")
    assert listed.returncode == 0 and sub["id"] in listed.stdout and "record.*" in listed.stdout
    assert chm("webhooks", "pause", sub["id"]).returncode == 0
    assert (await client.get(f"{HOOKS}/{sub['id']}", headers=sec)).json()["status"] == "paused"
    assert chm("webhooks", "resume", sub["id"]).returncode == 0
    assert (await client.get(f"{HOOKS}/{sub['id']}", headers=sec)).json()["status"] == "active"
    assert chm("webhooks", "ping", sub["id"]).returncode == 0
    assert "webhook.ping" in chm("webhooks", "deliveries", sub["id"]).stdout
    rotated = chm("webhooks", "rotate-secret", sub["id"])
    assert rotated.returncode == 0 and rotated.stdout.strip().startswith("whsec_") and rotated.stdout.strip() != secret
    bad = chm("webhooks", "create", "ftp://example.org/")
    assert bad.returncode == 1 and "must use" in bad.stderr
    assert chm("webhooks", "delete", "not-an-id").returncode == 2
    assert chm("webhooks", "delete", sub["id"]).returncode == 0
    assert (await client.get(f"{HOOKS}/{sub['id']}", headers=sec)).status_code == 404


async def test_status_and_readyz_report_a_stuck_delivery_worker(client, engine):
    br = bearer(await token_for("BR", "records:write", "records:publish", "webhooks:write"))
    sub = await subscribe(client, br, "http://127.0.0.1:9/hook")
    status = (await client.get(f"{HOOKS}/status", headers=br)).json()
    assert status["ok"] and status["stuck"] == 0 and status["subscriptions"]["active"] == 1
    rec = await create_record(client, br)
    await step(client, br, rec["id"], "publish")  # an event is due, and no worker runs
    async with db.transaction() as session:  # ... and has been for an hour
        await session.execute(text("UPDATE webhook_subscriptions SET next_attempt_at = now() - interval '1 hour'"))
    status = (await client.get(f"{HOOKS}/status", headers=br)).json()
    assert not status["ok"] and status["stuck"] == 1 and status["oldest_due_seconds"] >= 3600
    assert status["max_lag_seconds"] is not None
    r = await client.get("/readyz")
    assert r.json()["checks"]["webhook_delivery"].startswith("stuck: 1 subscription")
    assert r.status_code == 200  # reported, not fatal
    # A worker picks it up: no longer stuck.
    receiver = await Receiver(secrets=[]).start()
    async with db.transaction() as session:
        await session.execute(text("UPDATE webhook_subscriptions SET url = :u"), {"u": receiver.url})
    receiver.respond = lambda d: 200  # signatures are not what this test is about
    w = DeliveryWorker(settings=fast_settings(), name="test-worker-ops")
    await w.start()
    try:
        await receiver.wait_for(lambda rc: len(rc.requests) == 1)

        async def caught_up() -> bool:
            return (await client.get(f"{HOOKS}/status", headers=br)).json()["stuck"] == 0

        await wait_until(caught_up)
    finally:
        await w.stop()
        await receiver.stop()
    assert (await client.get("/readyz")).json()["checks"]["webhook_delivery"] == "ok"
    metrics = (await client.get("/metrics")).text
    assert 'chm_webhook_deliveries_total{outcome="success"}' in metrics
    assert f'chm_webhook_lag_seconds{{subscription="{sub["id"]}"}}' in metrics
    assert 'chm_webhook_subscriptions{status="disabled"}' in metrics


async def test_a_slow_receiver_times_out_and_is_retried(client, engine):
    br = bearer(await token_for("BR", "records:write", "records:publish", "webhooks:write"))
    receiver = await Receiver(secrets=[], hold=1.0).start()
    w = DeliveryWorker(settings=fast_settings(webhook_timeout_seconds=0.2, webhook_retry_base_seconds=30),
                       name="test-worker-timeout")  # fmt: skip
    await w.start()
    try:
        sub = await subscribe(client, br, receiver.url)
        rec = await create_record(client, br)
        started = time.monotonic()
        await step(client, br, rec["id"], "publish")

        async def timed_out() -> bool:
            return any(d.outcome == "failure" for d in await deliveries(sub["id"]))

        await wait_until(timed_out)
        assert time.monotonic() - started < 5
    finally:
        await w.stop()
        await receiver.stop()
    row = next(d for d in await deliveries(sub["id"]) if d.outcome == "failure")
    assert "timed out after 0.2 s" in row.error and row.duration_ms < 1000
    state = (await client.get(f"{HOOKS}/{sub['id']}", headers=br)).json()
    assert state["failing_since"] and "timed out" in state["last_error"] and state["delivered_seq"] < row.seq
