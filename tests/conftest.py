"""Test fixtures: one real PostgreSQL per session (embedded unless TEST_DATABASE_URL), migrated once;
every test starts from the reference data alone."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

os.environ.setdefault("CHM_ENV", "test")
os.environ.setdefault("CHM_LOG_LEVEL", "WARNING")
os.environ.setdefault("CHM_RATE_LIMIT_PER_MINUTE", "0")  # tests/routers/test_platform.py turns it on

from app import db
from app.settings import get_settings

pytest_plugins = ("tests.live",)  # the `live_server` fixture (a uvicorn subprocess) for third-party tools

KEEP = {"parties", "vocabulary_terms", "alembic_version"}


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A migrated database for the whole session."""
    tmp: Path | None = None
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        tmp = Path(tempfile.mkdtemp(prefix="chm-test-"))
        url = db.start_embedded(tmp, database="chm_test", cleanup="delete")
    os.environ["DATABASE_URL"] = url
    os.environ["CHM_DATA_DIR"] = str(tmp or Path(tempfile.mkdtemp(prefix="chm-test-")))
    get_settings.cache_clear()
    db.migrate(url)
    yield url
    if tmp is not None and db._embedded is not None:
        db._embedded.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[object]:
    eng = db.init_engine(database_url)
    yield eng
    await db.dispose_engine()


@pytest.fixture(autouse=True)
async def clean_db(engine: object) -> AsyncIterator[None]:
    """Empty every table but the reference data after each test."""
    yield
    async with db.get_engine().begin() as conn:
        names = (
            (await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars().all()
        )
        wipe = [n for n in names if n not in KEEP]
        if wipe:
            await conn.execute(text(f"TRUNCATE {', '.join(wipe)} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def app(engine: object) -> object:
    from app.main import create_app

    return create_app()


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
