"""A live uvicorn server on the test database, for third-party tools that speak HTTP (schemathesis, Chromium)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app import db
from app.services import demo

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def live_server(database_url: str) -> AsyncIterator[str]:
    """uvicorn serving the app on the test database, with the demo data loaded."""
    async with db.transaction() as session:
        await demo.seed(session)
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "CHM_ENV": "test", "CHM_RATE_LIMIT_PER_MINUTE": "0",
           "CHM_INPROCESS_WORKER": "false", "CHM_LOG_LEVEL": "WARNING"}  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", cwd=ROOT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as c:
            for _ in range(300):
                try:
                    if (await c.get(base + "/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("server did not start")
        yield base
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
