"""A first-come, first-served connection pool for the async engine.

SQLAlchemy's async pool keeps its idle connections in an `asyncio.Queue`. When a connection comes back, that
queue wakes the longest waiter but leaves the connection in the queue until the waiter runs; a request that
arrives in between takes it first ("barging"), and the woken waiter goes back to the *end* of the line. Under
steady load above the pool size some requests lose that race again and again and wait seconds (up to the
pool timeout) while others are served at once: a median like the plain asyncpg baseline's with a p99 ten times
worse. `HandoffQueue` gives a returned connection straight to the longest waiter, so connections are taken
in arrival order and the wait for one is the queue's length, not luck.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any, Generic, TypeVar

from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import queue as sqla_queue
from sqlalchemy.util.langhelpers import memoized_property

T = TypeVar("T")


class HandoffQueue(Generic[T]):
    """The subset of `asyncio.Queue` the pool uses, with direct hand-off to waiters in arrival order."""

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._waiters: deque[asyncio.Future[T]] = deque()

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def put_nowait(self, item: T) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a waiter whose wait was cancelled is skipped
                waiter.set_result(item)
                return
        if self.full():
            raise asyncio.QueueFull
        self._items.append(item)

    async def put(self, item: T) -> None:
        self.put_nowait(item)  # the pool never holds more than it created: a put never has to wait

    def get_nowait(self) -> T:
        # items and waiters never coexist (a put hands over to a waiter first), so taking an idle item never
        # jumps the line
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    async def get(self) -> T:
        if self._items:
            return self._items.popleft()
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            # cancelled (the pool timeout) after the hand-off but before running: pass the item on
            if waiter.done() and not waiter.cancelled():
                self.put_nowait(waiter.result())
            raise
        finally:
            if not waiter.done() or waiter.cancelled():
                with contextlib.suppress(ValueError):  # already skipped by a put
                    self._waiters.remove(waiter)


class _HandoffAdaptedQueue(sqla_queue.AsyncAdaptedQueue[Any]):
    @memoized_property
    def _queue(self) -> Any:  # created on first use, in the running loop (as SQLAlchemy's own)
        return HandoffQueue(maxsize=self.maxsize)


class FairAsyncPool(AsyncAdaptedQueuePool):
    """`AsyncAdaptedQueuePool` whose waiters get connections in arrival order."""

    _queue_class = _HandoffAdaptedQueue
