"""Reading the current public state of entities and turning it into documents (the worker's and reindex's input).

Which kinds are searchable, which columns their documents read, which rows are public and which child rows
add text all come from `app.registry`; this module only runs the queries.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app import registry
from app.registry import Entity, SearchSource
from app.search import documents
from app.search.backend import Document


def parse_id(value: str) -> uuid.UUID:
    """An outbox entity id as a UUID (ValueError when malformed: the row is poisoned)."""
    return uuid.UUID(str(value))


def _source(entity: Entity) -> SearchSource:
    if entity.search is None:
        raise KeyError(f"{entity.kind!r} has no search documents")
    return entity.search


def _public_ids(entity: Entity) -> Select[Any]:
    table, src = entity.table, _source(entity)
    stmt = select(table.c.id)
    return stmt.where(src.public(table)) if src.public is not None else stmt


async def _documents(conn: AsyncConnection, entity: Entity, ids: list[uuid.UUID]) -> dict[uuid.UUID, Document]:
    """id → document for the entities among `ids` that are public now."""
    table, src = entity.table, _source(entity)
    cols = [table.c[c] for c in src.columns] if src.columns is not None else [table]
    stmt = select(*cols).where(table.c.id.in_(ids))
    if src.public is not None:
        stmt = stmt.where(src.public(table))
    rows = (await conn.execute(stmt)).all()
    children: dict[uuid.UUID, list[Any]] = {}
    if rows and src.children is not None:
        ch = src.children
        ct, parent = ch.table, ch.table.c[ch.parent]
        child_stmt = select(parent, *(ct.c[c] for c in ch.columns)).where(parent.in_([r.id for r in rows]))
        for c in await conn.execute(child_stmt.order_by(parent, *(ct.c[o] for o in ch.order_by))):
            children.setdefault(c._mapping[ch.parent], []).append(c._mapping)
    return {r.id: src.document(r._mapping, children.get(r.id, [])) for r in rows}


async def resolve_parents(conn: AsyncConnection, kind: str, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """child id → parent id for a kind whose changes show in its parent's document (an offer → its request)."""
    entity = registry.get(kind)
    if entity.reindexes is None:
        raise KeyError(f"{kind!r} does not reindex a parent")
    wanted = list(ids)
    if not wanted:
        return {}
    table, fk = entity.table, entity.table.c[entity.reindexes[1]]
    return {r[0]: r[1] for r in await conn.execute(select(table.c.id, fk).where(table.c.id.in_(wanted)))}


async def load(conn: AsyncConnection, kind: str, ids: list[uuid.UUID]) -> tuple[list[Document], list[str]]:
    """Documents to upsert for the entities that are public now, and keys to delete for the others."""
    found = await _documents(conn, registry.get(kind), ids)
    upserts = [found[i] for i in ids if i in found]
    deletes = [documents.doc_key(kind, i) for i in ids if i not in found]
    return upserts, deletes


async def iter_all(conn: AsyncConnection, *, batch_size: int = 500) -> AsyncIterator[list[Document]]:
    """Every public entity as documents, in batches (for a full reindex)."""
    for kind in registry.SEARCH_KINDS:
        entity = registry.get(kind)
        table = entity.table
        last: uuid.UUID | None = None
        while True:
            stmt = _public_ids(entity).order_by(table.c.id).limit(batch_size)
            if last is not None:
                stmt = stmt.where(table.c.id > last)
            ids = list((await conn.execute(stmt)).scalars())
            if not ids:
                break
            last = ids[-1]
            found = await _documents(conn, entity, ids)
            yield [found[i] for i in ids if i in found]
