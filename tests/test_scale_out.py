"""Scale-out pieces: one leader runs the in-process workers (advisory lock), `chm serve --workers N` shares it,
and anonymous reads go to DATABASE_READ_URL (a read-only replica) while token reads stay on the primary."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app import db
from app.leader import INPROCESS_WORKERS_LOCK, Leadership
from app.settings import get_settings
from tests.auth import bearer, token_for
from tests.factories import create_record

pytestmark = pytest.mark.asyncio
CHM = str(Path(sys.executable).with_name("chm"))


async def _until(condition: Any, what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _scalar(sql: str, **params: Any) -> Any:
    async with db.read_connection() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def test_one_leader_runs_the_workers_and_another_takes_over(database_url):
    ran: list[str] = []

    def leader(name: str) -> Leadership:
        async def start() -> str:
            ran.append(f"start {name}")
            return name

        async def stop(started: str) -> None:
            ran.append(f"stop {started}")

        return Leadership(database_url, INPROCESS_WORKERS_LOCK, start, stop, retry=0.05)

    a, b = leader("a"), leader("b")
    await a.start()
    await b.start()
    try:
        assert a.leading and not b.leading and ran == ["start a"]
        # The leader's lock connection dies: it notices and stops its workers, and one process (either may win
        # the race for the lock; both keep trying) runs them again, never both.
        killed = await _scalar("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                               "AND objid = :k AND granted", k=INPROCESS_WORKERS_LOCK)  # fmt: skip
        assert killed is True

        async def one_leads_again() -> bool:
            return len(ran) >= 3 and (a.leading or b.leading)

        await _until(one_leads_again, "a leader after the lock connection died")
        assert ran[:2] == ["start a", "stop a"] and ran[2] in ("start a", "start b") and len(ran) == 3
        assert a.leading != b.leading
        # The leader exits: the other one takes over.
        first, second = (a, b) if a.leading else (b, a)
        await first.stop()

        async def second_leads() -> bool:
            return second.leading

        await _until(second_leads, "the other process to take over")
        assert len(ran) == 5 and ran[3].startswith("stop ") and ran[4].startswith("start ") and ran[3] != ran[4]
        assert not first.leading
    finally:
        await a.stop()
        await b.stop()
    assert ran[-1].startswith("stop ") and not a.leading and not b.leading


@pytest.mark.slow
async def test_serve_with_workers_shares_one_worker_pool_and_listens_in_each(database_url, tmp_path):
    port = 18000 + os.getpid() % 1000
    env = {**os.environ, "DATABASE_URL": database_url, "CHM_ENV": "development", "CHM_INPROCESS_WORKER": "true",
           "CHM_LOG_LEVEL": "WARNING", "CHM_DATA_DIR": str(tmp_path)}  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        CHM, "serve", "--port", str(port), "--workers", "2", "--no-migrate", env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        async def both_listening() -> bool:
            assert proc.returncode is None, "chm serve exited"
            return await _scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'chm-cache'") == 2

        await _until(both_listening, "two API processes listening for changes", within=120)
        leaders = await _scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :k",
                                k=INPROCESS_WORKERS_LOCK)  # fmt: skip
        assert leaders == 1
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            assert (await c.get("/api/v1/records")).status_code == 200
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 60)


@pytest.fixture
async def reader_url(database_url):
    """DATABASE_READ_URL: the same server as a role that may only read (a replica, as far as the app can tell)."""
    async with db.get_engine().begin() as conn:
        await conn.execute(text("DROP ROLE IF EXISTS chm_reader"))
        await conn.execute(text("CREATE ROLE chm_reader LOGIN"))
        await conn.execute(text("ALTER ROLE chm_reader SET default_transaction_read_only = on"))
        await conn.execute(text("GRANT SELECT ON ALL TABLES IN SCHEMA public TO chm_reader"))
    url = db.to_libpq_url(database_url).replace("postgres:@", "chm_reader:@").replace("postgres@", "chm_reader@")
    assert "chm_reader" in url
    os.environ["DATABASE_READ_URL"] = url
    get_settings.cache_clear()
    yield url
    del os.environ["DATABASE_READ_URL"]
    get_settings.cache_clear()
    await db.dispose_engine()  # the read engine goes with it; the next use re-creates the primary's
    async with db.get_engine().begin() as conn:
        await conn.execute(text("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM chm_reader"))
        await conn.execute(text("DROP ROLE chm_reader"))


async def test_anonymous_reads_use_the_read_url_and_token_reads_the_primary(reader_url):
    from app.main import create_app

    async with db.transaction() as session:
        record = await create_record(session)
    br = bearer(await token_for("BR", "records:write"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url="http://test") as c:
        assert db._read_engine is None
        assert (await c.get("/api/v1/records")).json()["items"][0]["id"] == str(record["id"])
        assert (await c.post("/graphql", json={"query": "{ records { edges { node { id } } } }"})).status_code == 200
        assert db._read_engine is not None and db._read_engine.url.username == "chm_reader"
        checked_out = db._read_engine.pool.checkedout()  # type: ignore[attr-defined]
        assert db._read_engine.pool.checkedin() >= 1  # type: ignore[attr-defined]
        draft = await c.post("/api/v1/records", json={"type": "resource", "title": {"en": "Mine"}, "languages": ["en"]},
                             headers=br)  # fmt: skip
        assert draft.status_code == 201
        mine = await c.get("/api/v1/records", headers=br)  # read-your-writes: the primary
        assert draft.json()["id"] in [i["id"] for i in mine.json()["items"]]
        assert db._read_engine.pool.checkedout() == checked_out  # type: ignore[attr-defined]
