"""The connection pool serves waiters in arrival order (no request starves behind late arrivals), and a waiter
cancelled at its pool timeout never loses the connection it was handed."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, text

from app import db
from app.pool import HandoffQueue


async def test_a_waiter_is_served_before_requests_that_came_later(database_url: str) -> None:
    """Requests keep arriving while connections are busy (a loaded server). Here a new request arrives at the
    very moment each connection is given back, the worst case for a queue that lets a newcomer take an idle
    connection before the woken waiter runs. The request that has been waiting must get the next connection,
    not watch the newcomers take it again and again until its pool timeout."""
    engine = db.make_engine(database_url, pool_size=2, max_overflow=0)
    served: list[str] = []
    newcomers: list[asyncio.Task[None]] = []

    async def request(name: str) -> None:
        async with engine.connect() as conn:
            served.append(name)
            await conn.execute(text("SELECT pg_sleep(0.005)"))

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def arrive(*_: object) -> None:  # runs as the connection is returned, before the pool hands it on
        if len(newcomers) < 30:
            newcomers.append(asyncio.get_running_loop().create_task(request(f"new{len(newcomers)}")))

    try:
        first = [asyncio.create_task(request("a")), asyncio.create_task(request("b"))]
        await asyncio.sleep(0.002)  # both connections being opened and taken
        await request("waiter")
        await asyncio.gather(*first)
        while not all(t.done() for t in newcomers):
            await asyncio.gather(*newcomers)
    finally:
        await engine.dispose()
    # served at one of the first releases after it arrived, not after the 30 newcomers
    assert served.index("waiter") <= 4, served


async def test_a_cancelled_waiter_passes_its_hand_off_on() -> None:
    queue: HandoffQueue[str] = HandoffQueue(maxsize=1)
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("conn")  # handed to `first`, which has not run yet
    first.cancel()  # ... and is cancelled (its pool timeout) before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, 1) == "conn"
    assert queue.empty()


async def test_a_timed_out_waiter_leaves_the_line() -> None:
    queue: HandoffQueue[str] = HandoffQueue(maxsize=1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.get(), 0.01)
    queue.put_nowait("conn")  # not handed to the waiter that gave up
    assert queue.get_nowait() == "conn"
