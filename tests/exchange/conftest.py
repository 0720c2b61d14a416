"""Harvesting tests: a live HTTP server (the real clients speak HTTP) and writes through the services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from app import db
from app.auth.principal import Principal
from app.models.record import RecordCreate, RecordUpdate
from app.services import record_writes

ADMIN = Principal(kind="secretariat", scopes=frozenset({"admin"}), token_name="tests")
BR = Principal(kind="party", party="BR", scopes=frozenset({"records:write", "records:publish"}), token_name="br")


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
