"""The worker's clean-up of done outbox rows (it used to fail at every start: timestamptz < interval)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from app import db
from app.search.worker import purge_done

pytestmark = pytest.mark.asyncio


async def test_purge_deletes_only_rows_done_long_enough_ago(engine) -> None:  # type: ignore[no-untyped-def]
    async with db.get_engine().begin() as conn:
        await conn.execute(text(
            "INSERT INTO search_outbox (kind, entity_id, parked, done_at) VALUES "
            "('record', 'old', false, now() - interval '2 days'), ('record', 'recent', false, now()), "
            "('record', 'pending', false, NULL)"))  # fmt: skip
    assert await purge_done(older_than=timedelta(days=1)) == 1
    async with db.read_connection() as conn:
        left = sorted((await conn.execute(text("SELECT entity_id FROM search_outbox"))).scalars())
    assert left == ["pending", "recent"]
