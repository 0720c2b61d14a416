"""Alembic environment: async engine, URL from the app's settings (embedded PostgreSQL when unset)."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Connection

from alembic import context
from app.db import make_engine, resolve_database_url, to_asyncpg_url
from app.models import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    return config.attributes.get("database_url") or resolve_database_url()


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Leave the search tables (owned by app/search/postgres.py: the documents, swapped whole by `chm reindex`, and
    their vocabulary) to their migrations."""
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return not (table or "").startswith(("search_documents", "search_words"))


def run_migrations_offline() -> None:
    context.configure(url=to_asyncpg_url(_url()), target_metadata=target_metadata, literal_binds=True,
                      include_object=include_object)  # fmt: skip
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True,
                      include_object=include_object)  # fmt: skip
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = make_engine(_url(), pool_size=1)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
