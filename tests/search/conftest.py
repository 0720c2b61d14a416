"""Search fixtures: the PostgreSQL backend installed as the process-wide backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.search import set_backend
from app.search.postgres import PostgresBackend


@pytest.fixture
async def backend(engine: object) -> AsyncIterator[PostgresBackend]:
    b = PostgresBackend()
    set_backend(b)
    yield b
    set_backend(None)
