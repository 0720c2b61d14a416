"""The per-request GraphQL context: the caller, one lazily opened read connection, lazily built loaders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import cached_property

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.fastapi import BaseContext
from strawberry.types import Info as _Info

from app import db
from app.auth.dependencies import get_principal
from app.auth.principal import Principal
from app.graphql.loaders import Loaders


class Context(BaseContext):
    """What every resolver sees: `principal`, `read()` for the connection, `loaders`."""

    def __init__(self, principal: Principal) -> None:
        super().__init__()
        self.principal = principal
        self._stack = AsyncExitStack()
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """The request's autocommit read connection, opened on first use; one resolver at a time uses it
        (sibling fields resolve concurrently, a connection runs one statement at a time)."""
        async with self._lock:
            if self._conn is None:
                self._conn = await self._stack.enter_async_context(
                    db.read_connection(replica=self.principal.is_anonymous)
                )
            yield self._conn

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self)

    async def close(self) -> None:
        await self._stack.aclose()


async def get_context(principal: Principal = Depends(get_principal)) -> AsyncIterator[Context]:
    """FastAPI dependency: the bearer token is resolved exactly as for REST; the connection closes at the end."""
    context = Context(principal)
    try:
        yield context
    finally:
        await context.close()


Info = _Info[Context, None]
