"""One leader among the API processes, elected through a PostgreSQL advisory lock.

`chm serve --workers N` (or any number of API processes on one database) must run the in-process background
workers (search outbox, webhook delivery) once, not N times. Each process tries `pg_try_advisory_lock` on a
dedicated connection; the one that holds it runs them. The lock lives as long as that connection: when the
leader exits or its connection drops, PostgreSQL releases it and another process takes over at its next try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("chm.leader")

INPROCESS_WORKERS_LOCK = 0x43484D10  # "CHM" + 0x10: the in-process workers' leadership
RETRY_SECONDS = 5.0


class Leadership:
    """Run `start()` while this process holds the advisory lock `key`; `stop(started)` when it is lost or on exit."""

    def __init__(self, url: str, key: int, start: Callable[[], Awaitable[Any]],
                 stop: Callable[[Any], Awaitable[None]], *, retry: float = RETRY_SECONDS) -> None:  # fmt: skip
        self.url = url
        self.key = key
        self._start = start
        self._stop = stop
        self.retry = retry
        self.leading = False
        self._conn: Any = None
        self._started: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()

    async def start(self) -> None:
        """Try once now (so a single process starts its workers before serving), then keep trying."""
        await self._attempt()
        self._task = asyncio.create_task(self._loop(), name="leadership")

    async def _attempt(self) -> None:
        import asyncpg

        from app import db

        try:
            conn = await asyncpg.connect(db.to_libpq_url(self.url), timeout=5,
                                         server_settings={"application_name": "chm-leader"})  # fmt: skip
        except Exception as exc:
            log.warning("leadership: cannot connect (%s); retrying", type(exc).__name__)
            return
        try:
            won = await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key)
        except Exception:
            await conn.close()
            return
        if not won:
            await conn.close()
            return
        self._conn = conn
        self._lost.clear()
        conn.add_termination_listener(lambda _c: self._lost.set())
        self._started = await self._start()
        self.leading = True
        log.info("leadership: this process runs the background workers")

    async def _loop(self) -> None:
        while True:
            if self.leading:
                await self._lost.wait()
                log.warning("leadership: lost the lock connection; stopping the background workers")
                await self._resign()
            await asyncio.sleep(self.retry)
            await self._attempt()

    async def _resign(self) -> None:
        started, self._started = self._started, None
        self.leading = False
        if started is not None:
            await self._stop(started)
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._resign()
