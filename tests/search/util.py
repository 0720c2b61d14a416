"""Helpers for search tests: writes through the record write services, and the database's published set."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from app import db
from app.auth.principal import Principal
from app.models.record import RecordCreate, RecordUpdate
from app.services import record_writes

SEC = Principal(kind="secretariat", scopes=frozenset({"admin"}))


async def publish_new(**fields: Any) -> uuid.UUID:
    """Create a record and publish it (two transactions, like two API calls)."""
    data = {"party": "BR", "type": "resource", "title": {"en": "A record"}, **fields}
    async with db.transaction() as s:
        rec = await record_writes.create(s, SEC, RecordCreate(**data))
    async with db.transaction() as s:
        await record_writes.publish(s, SEC, rec["id"])
    return rec["id"]


async def create_draft(**fields: Any) -> uuid.UUID:
    data = {"party": "BR", "type": "resource", "title": {"en": "A draft"}, **fields}
    async with db.transaction() as s:
        rec = await record_writes.create(s, SEC, RecordCreate(**data))
    return rec["id"]


async def edit_and_publish(record_id: uuid.UUID, **fields: Any) -> None:
    async with db.transaction() as s:
        await record_writes.update(s, SEC, record_id, RecordUpdate(**fields), partial=True)
    async with db.transaction() as s:
        await record_writes.publish(s, SEC, record_id)


async def edit_draft(record_id: uuid.UUID, **fields: Any) -> None:
    async with db.transaction() as s:
        await record_writes.update(s, SEC, record_id, RecordUpdate(**fields), partial=True)


async def withdraw(record_id: uuid.UUID) -> None:
    async with db.transaction() as s:
        await record_writes.withdraw(s, SEC, record_id)


async def published_keys() -> set[str]:
    """The document keys the index must hold: every published record (only records are written in these tests)."""
    async with db.read_connection() as conn:
        ids = (await conn.execute(text("SELECT id FROM records WHERE status = 'published'"))).scalars()
        return {f"record-{i}" for i in ids}


async def published_revisions() -> dict[str, int]:
    async with db.read_connection() as conn:
        rows = await conn.execute(text("SELECT id, revision FROM records WHERE status = 'published'"))
        return {f"record-{r.id}": r.revision for r in rows}


async def pending_outbox() -> int:
    async with db.read_connection() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM search_outbox WHERE done_at IS NULL"))).scalar_one())
