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


async def _insert(session: Any, model: Any, values: dict[str, Any]) -> dict[str, Any]:
    table = model.__table__
    row = (await session.execute(insert(table).values(values).returning(*table.c))).one()
    await session.flush()
    return dict(row._mapping)


async def create_node(session: Any, **overrides: Any) -> dict[str, Any]:
    """Insert a national node (Party BR, active by default) and return its columns."""
    from app.models import NationalNode

    n = next(_n)
    at = overrides.pop("updated_at", _base + timedelta(minutes=n))
    values: dict[str, Any] = {
        "id": uuid.uuid4(), "party": "BR", "name": {"en": f"Node {n}"}, "url": f"https://chm{n}.example.org/",
        "languages": ["en"], "status": "active", "platform": "bioland", "created_at": at, "updated_at": at,
    }  # fmt: skip
    return await _insert(session, NationalNode, {**values, **overrides})


async def create_decision(session: Any, /, **overrides: Any) -> dict[str, Any]:
    """Insert a decision (COP; `session=` is the meeting number; `paragraphs=[...]` adds rows); return its columns."""
    from app.models import Decision, DecisionParagraph

    n = next(_n)
    at = overrides.pop("updated_at", _base + timedelta(minutes=n))
    paragraphs = overrides.pop("paragraphs", [])
    body, session_no, number = overrides.pop("body", "COP"), overrides.pop("session", 15), overrides.pop("number", n)
    values: dict[str, Any] = {
        "id": uuid.uuid4(), "code": f"{body}-{session_no}-{number}", "symbol": f"CBD/{body}/DEC/{session_no}/{number}",
        "body": body, "session": session_no, "number": number, "title": {"en": f"Decision {n}"}, "status": "active",
        "created_at": at, "updated_at": at,
    }  # fmt: skip
    decision = await _insert(session, Decision, {**values, **overrides})
    for pos, para in enumerate(paragraphs, start=1):
        await _insert(session, DecisionParagraph, {"decision_id": decision["id"], "position": pos, **para})
    return decision


async def create_request(session: Any, **overrides: Any) -> dict[str, Any]:
    """Insert a cooperation request (Party BR, open; `offers=[{...}]` inserts offers) and return its columns."""
    from app.models import CooperationOffer, CooperationRequest

    n = next(_n)
    at = overrides.pop("updated_at", _base + timedelta(minutes=n))
    offers = overrides.pop("offers", [])
    values: dict[str, Any] = {
        "id": uuid.uuid4(), "party": "BR", "title": {"en": f"Request {n} for help"}, "assistance_types": ["technical"],
        "status": "open", "created_at": at, "updated_at": at,
    }  # fmt: skip
    request = await _insert(session, CooperationRequest, {**values, **overrides})
    for i, offer in enumerate(offers):
        o_at = at + timedelta(seconds=i + 1)
        await _insert(session, CooperationOffer, {"id": uuid.uuid4(), "request_id": request["id"],
                                                  "provider_party": "FR", "description": {"en": "We can help."},
                                                  "status": "proposed", "created_at": o_at, "updated_at": o_at,
                                                  **offer})  # fmt: skip
    return request
