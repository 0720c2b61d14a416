"""Backend wrappers for fault tests: an engine that can be down, slow, or recorded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.search.backend import Document, EngineUnavailable, SearchBackend, SearchQuery, SearchResult


class Wrapped(SearchBackend):
    """Delegates to a real backend; `down` makes every write fail as an outage; `delay` slows every write."""

    def __init__(self, inner: SearchBackend, *, delay: float = 0.0) -> None:
        self.inner = inner
        self.name = inner.name
        self.down = False
        self.delay = delay
        self.upserted: list[str] = []

    async def _gate(self) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise EngineUnavailable("connection refused (test outage)")

    async def ensure_ready(self) -> None:
        await self.inner.ensure_ready()

    async def upsert(self, documents: list[Document]) -> None:
        await self._gate()
        await self.inner.upsert(documents)
        self.upserted += [d["key"] for d in documents]

    async def delete(self, keys: list[str]) -> None:
        await self._gate()
        await self.inner.delete(keys)

    async def search(self, query: SearchQuery, *, conn: AsyncConnection | None = None) -> SearchResult:
        return await self.inner.search(query, conn=conn)

    async def stats(self) -> dict[str, Any]:
        return await self.inner.stats()

    async def build_and_swap(self, batches: AsyncIterator[list[Document]]) -> int:
        return await self.inner.build_and_swap(batches)

    async def get_document(self, key: str) -> Document | None:
        return await self.inner.get_document(key)

    async def keys(self) -> set[str]:
        return await self.inner.keys()
