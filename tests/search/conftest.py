"""Search fixtures: the PostgreSQL backend installed as the process-wide backend; the Meilisearch fake on a
loopback socket; `any_backend` runs a test on PostgreSQL, on Meilisearch (the fake) and, when MEILI_URL is set,
on a real Meilisearch."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from app.search import set_backend
from app.search.backend import SearchBackend
from app.search.meili import MeiliBackend
from app.search.postgres import PostgresBackend
from tests.search.meili_fake import FakeMeili, serve

LIVE_URL = os.environ.get("MEILI_URL")
live_only = pytest.mark.skipif(not LIVE_URL, reason="MEILI_URL is not set (live Meilisearch tests)")


@pytest.fixture
async def backend(engine: object) -> AsyncIterator[PostgresBackend]:
    b = PostgresBackend()
    set_backend(b)
    yield b
    set_backend(None)


@pytest.fixture
def meili_fake() -> Iterator[FakeMeili]:
    with serve() as fake:
        yield fake


def live_backend() -> MeiliBackend:
    """A backend on the real server at MEILI_URL, on an index of its own (drop it afterwards)."""
    assert LIVE_URL
    return MeiliBackend(LIVE_URL, os.environ.get("MEILI_KEY"), index=f"chm_test_{uuid.uuid4().hex[:12]}",
                        poll_interval=0.01)  # fmt: skip


@pytest.fixture(
    params=["postgres", "meili-fake", pytest.param("meili-live", marks=[pytest.mark.meili_live, live_only])]
)
async def any_backend(request: pytest.FixtureRequest, engine: object) -> AsyncIterator[SearchBackend]:
    b: SearchBackend
    if request.param == "postgres":
        b = PostgresBackend()
    elif request.param == "meili-fake":
        fake = request.getfixturevalue("meili_fake")
        b = MeiliBackend(fake.url, fake.api_key, poll_interval=0)
    else:
        b = live_backend()
    set_backend(b)
    yield b
    set_backend(None)
    if isinstance(b, MeiliBackend) and request.param == "meili-live":
        await b.drop()
    await b.close()
