"""Harvesting test helpers: records written through the services, as publishers write them."""

from __future__ import annotations

from typing import Any

from app import db
from app.auth.principal import Principal
from app.models.record import RecordCreate, RecordUpdate
from app.services import record_writes

ADMIN = Principal(kind="secretariat", scopes=frozenset({"admin"}), token_name="tests")
BR = Principal(kind="party", party="BR", scopes=frozenset({"records:write", "records:publish"}), token_name="br")


def content(n: int, **overrides: Any) -> dict[str, Any]:
    """A valid record body."""
    body: dict[str, Any] = {
        "type": "resource", "title": {"en": f"Wetland guide {n}", "fr": f"Guide des zones humides {n}"},
        "summary": {"en": f"Summary {n}"}, "languages": ["en", "fr"], "keywords": ["wetlands"],
        "gbf_targets": ["GBF-TARGET-02"] if n % 2 else [], "countries": ["BR"],
    }  # fmt: skip
    body.update(overrides)
    return body


async def create(principal: Principal = BR, *, publish: bool = True, **body: Any) -> dict[str, Any]:
    """A record through the services (and published unless told otherwise)."""
    async with db.transaction() as s:
        rec = await record_writes.create(s, principal, RecordCreate.model_validate(body))
        if publish:
            rec = await record_writes.publish(s, principal, rec["id"])
    return rec


async def edit(record_id: Any, principal: Principal = BR, *, publish: bool = False, **fields: Any) -> dict[str, Any]:
    async with db.transaction() as s:
        rec = await record_writes.update(s, principal, record_id, RecordUpdate.model_validate(fields), partial=True)
        if publish:
            rec = await record_writes.publish(s, principal, record_id)
    return rec


async def withdraw(record_id: Any, principal: Principal = BR) -> dict[str, Any]:
    async with db.transaction() as s:
        return await record_writes.withdraw(s, principal, record_id)
