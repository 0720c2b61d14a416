"""Factories: plain async functions that write rows the way the services do."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from app.models import Record, RecordRevision
from app.models.record import CONTENT_FIELDS

_n = itertools.count(1)
_base = datetime(2025, 1, 1, tzinfo=UTC)


async def create_record(session: Any, **overrides: Any) -> dict[str, Any]:
    """Insert a record head (published by default, with its revision rows) and return its columns."""
    n = next(_n)
    status = overrides.pop("status", "published")
    revision = overrides.pop("revision", 1 if status in ("published", "withdrawn") else 0)
    at = overrides.pop("updated_at", _base + timedelta(minutes=n))
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "party": "BR",
        "type": "resource",
        "status": status,
        "revision": revision,
        "title": {"en": f"Record {n} on biodiversity", "fr": f"Fiche {n} sur la biodiversité"},
        "summary": {"en": "A summary."},
        "languages": ["en", "fr"],
        "keywords": ["test"],
        "subjects": [],
        "gbf_targets": [],
        "created_at": at,
        "updated_at": at,
        "published_at": at if revision else None,
        "withdrawn_at": at if status == "withdrawn" else None,
    }
    values.update(overrides)
    table = Record.__table__  # type: ignore[attr-defined]
    await session.execute(insert(table).values(values))
    for rev in range(1, revision + 1):
        content = {k: values.get(k) for k in CONTENT_FIELDS if k in values}
        await session.execute(
            insert(RecordRevision.__table__).values(  # type: ignore[attr-defined]
                record_id=values["id"], revision=rev, content=content, published_at=at
            )
        )
    row = (await session.execute(select(table).where(table.c.id == values["id"]))).first()
    await session.flush()
    return dict(row._mapping)
