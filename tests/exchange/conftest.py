"""Exchange fixtures: a live HTTP server for the real harvesting clients; webhook delivery workers and helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import db, registry
from app.exchange.webhooks import DeliveryWorker
from app.services import snapshot
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


# --- mirroring: a second, empty database and the public state to compare -------------------------------------


@pytest.fixture(scope="session")
def mirror_url(database_url: str) -> Iterator[str]:
    if db._embedded is None:
        pytest.skip("needs the embedded server to create a second database")
    exists = db._embedded.psql("SELECT 1 FROM pg_database WHERE datname = 'chm_mirror';")
    if "(1 row)" not in exists:
        db._embedded.psql('CREATE DATABASE "chm_mirror";')
    target = str(db._embedded.get_uri(database="chm_mirror"))
    db.migrate(target)
    yield target


@pytest.fixture
async def target(mirror_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.make_engine(mirror_url, pool_size=2)
    yield engine
    async with engine.begin() as conn:
        names = (await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars()
        wipe = [n for n in names if n not in ("parties", "vocabulary_terms", "alembic_version")]
        await conn.execute(text(f"TRUNCATE {', '.join(wipe)} RESTART IDENTITY CASCADE"))
    await engine.dispose()


async def public_state(engine: AsyncEngine, *, skip_party: str | None = None) -> dict[str, list[Any]]:
    """Every public entry of every exported kind, as JSON, in a stable order (entries of `skip_party` left out)."""
    out: dict[str, list[Any]] = {}
    async with engine.connect() as conn, conn.begin():
        for kind in snapshot.KINDS:
            items = [i async for batch in snapshot.stream(conn, kind, snapshot.Scope()) for i in batch]
            if skip_party:
                column = registry.get(kind).party_column if kind in snapshot.ENTITY_KINDS else "party"
                items = [i for i in items if i.get(column) != skip_party]
            key = "record_id" if kind == "record-revision" else "id" if kind not in ("party", "vocabulary-term") \
                else "code"  # fmt: skip
            out[kind] = sorted(
                orjson.loads(orjson.dumps(items, default=str)),
                key=lambda i: (str(i.get("vocabulary", "")), str(i[key]), i.get("revision", 0)),
            )
    return out


def as_served(kind: str, items: list[dict[str, Any]]) -> list[Any]:
    """Entries as the REST API serves them (through the kind's public schema: absent nested keys show as null)."""
    public = registry.get(kind).public
    return [public.model_validate(i).model_dump(mode="json") for i in items]
