"""Exchange fixtures: a live HTTP server for the real harvesting clients; webhook delivery workers and helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from sqlalchemy import text

from app import db
from app.exchange.webhooks import DeliveryWorker
from app.settings import Settings, get_settings
from tests.auth import bearer, token_for


@pytest.fixture
async def live(app: Any) -> AsyncIterator[str]:
    """The app served over a real loopback socket in the test's event loop; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


HOOKS = "/api/v1/webhooks"
RECORD = {"type": "resource", "title": {"en": "Mangrove restoration toolkit"}, "languages": ["en"]}


def fast_settings(**overrides: Any) -> Settings:
    """The test settings with delivery timings short enough for tests (no real 10 s timeouts or hour back-offs)."""
    values = {"webhook_retry_base_seconds": 0.05, "webhook_retry_max_seconds": 0.3, "webhook_timeout_seconds": 2.0,
              "webhook_poll_seconds": 0.5, "webhook_concurrency": 8, **overrides}  # fmt: skip
    return get_settings().model_copy(update=values)


@pytest.fixture
async def worker(engine: object) -> AsyncIterator[DeliveryWorker]:
    w = DeliveryWorker(settings=fast_settings(), name="test-worker-1")
    await w.start()
    yield w
    await w.stop()


@pytest.fixture
async def br(engine: object) -> dict[str, str]:
    """A BR token that publishes records and manages webhooks."""
    return bearer(await token_for("BR", "records:write", "records:publish", "webhooks:write"))


async def subscribe(client: Any, headers: dict[str, str], url: str, **body: Any) -> dict[str, Any]:
    r = await client.post(HOOKS, json={"url": url, **body}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def create_record(client: Any, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/records", json={**RECORD, **extra}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def step(client: Any, headers: dict[str, str], rid: str, op: str) -> dict[str, Any]:
    r = await client.post(f"/api/v1/records/{rid}/{op}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def public_seqs(kind: str = "record") -> list[int]:
    async with db.read_connection() as conn:
        rows = await conn.execute(text("SELECT seq FROM changes WHERE public AND kind = :k ORDER BY seq"), {"k": kind})
        return [r.seq for r in rows]


async def deliveries(subscription_id: str) -> list[Any]:
    async with db.read_connection() as conn:
        rows = await conn.execute(text("SELECT * FROM webhook_deliveries WHERE subscription_id = :s ORDER BY id"),
                                  {"s": subscription_id})  # fmt: skip
        return list(rows)
