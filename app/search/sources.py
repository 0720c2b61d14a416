"""Reading the current public state of entities and turning it into documents (the worker's and reindex's input)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models import (
    CooperationOffer,
    CooperationRequest,
    Decision,
    DecisionParagraph,
    NationalNode,
    Opportunity,
    Record,
)
from app.search import documents
from app.search.backend import Document

R = Record.__table__  # type: ignore[attr-defined]
N = NationalNode.__table__  # type: ignore[attr-defined]
D = Decision.__table__  # type: ignore[attr-defined]
DP = DecisionParagraph.__table__  # type: ignore[attr-defined]
CR = CooperationRequest.__table__  # type: ignore[attr-defined]
CO = CooperationOffer.__table__  # type: ignore[attr-defined]
OP = Opportunity.__table__  # type: ignore[attr-defined]

RECORD_COLUMNS = (
    R.c.id, R.c.serial, R.c.party, R.c.type, R.c.revision, R.c.title, R.c.summary, R.c.body, R.c.languages,
    R.c.keywords, R.c.subjects, R.c.gbf_targets, R.c.publication_date, R.c.published_at, R.c.updated_at,
)  # fmt: skip
# What the public sees of a record is its head row, and only while published; drafts live in record_drafts.
RECORD_PUBLIC = R.c.status == "published"


def parse_id(value: str) -> uuid.UUID:
    """An outbox entity id as a UUID (ValueError when malformed: the row is poisoned)."""
    return uuid.UUID(str(value))


async def _records(conn: AsyncConnection, ids: list[uuid.UUID]) -> dict[uuid.UUID, Document]:
    rows = await conn.execute(select(*RECORD_COLUMNS).where(R.c.id.in_(ids), RECORD_PUBLIC))
    return {r.id: documents.record_document(r._mapping) for r in rows}


async def _nodes(conn: AsyncConnection, ids: list[uuid.UUID]) -> dict[uuid.UUID, Document]:
    rows = await conn.execute(select(N).where(N.c.id.in_(ids)))
    return {r.id: documents.node_document(r._mapping) for r in rows}


async def _decisions(conn: AsyncConnection, ids: list[uuid.UUID]) -> dict[uuid.UUID, Document]:
    rows = (await conn.execute(select(D).where(D.c.id.in_(ids)))).all()
    paras: dict[uuid.UUID, list[Any]] = {}
    if rows:
        stmt = select(DP.c.decision_id, DP.c.text).where(DP.c.decision_id.in_([r.id for r in rows]))
        for p in await conn.execute(stmt.order_by(DP.c.decision_id, DP.c.position)):
            paras.setdefault(p.decision_id, []).append(p._mapping)
    return {r.id: documents.decision_document(r._mapping, paras.get(r.id, [])) for r in rows}


async def _requests(conn: AsyncConnection, ids: list[uuid.UUID]) -> dict[uuid.UUID, Document]:
    rows = (await conn.execute(select(CR).where(CR.c.id.in_(ids)))).all()
    offers: dict[uuid.UUID, list[Any]] = {}
    if rows:
        stmt = select(CO.c.request_id, CO.c.description).where(CO.c.request_id.in_([r.id for r in rows]))
        for o in await conn.execute(stmt.order_by(CO.c.request_id, CO.c.created_at, CO.c.id)):
            offers.setdefault(o.request_id, []).append(o._mapping)
    return {r.id: documents.request_document(r._mapping, offers.get(r.id, [])) for r in rows}


async def _opportunities(conn: AsyncConnection, ids: list[uuid.UUID]) -> dict[uuid.UUID, Document]:
    rows = await conn.execute(select(OP).where(OP.c.id.in_(ids)))
    return {r.id: documents.opportunity_document(r._mapping) for r in rows}


LOADERS = {"record": _records, "node": _nodes, "decision": _decisions, "cooperation-request": _requests,
           "opportunity": _opportunities}  # fmt: skip


async def resolve_offers(conn: AsyncConnection, offer_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """offer id → its request id (an offer change reindexes its request)."""
    ids = list(offer_ids)
    if not ids:
        return {}
    return {r.id: r.request_id for r in await conn.execute(select(CO.c.id, CO.c.request_id).where(CO.c.id.in_(ids)))}


async def load(conn: AsyncConnection, kind: str, ids: list[uuid.UUID]) -> tuple[list[Document], list[str]]:
    """Documents to upsert for the entities that are public now, and keys to delete for the others."""
    found = await LOADERS[kind](conn, ids)
    upserts = [found[i] for i in ids if i in found]
    deletes = [documents.doc_key(kind, i) for i in ids if i not in found]
    return upserts, deletes


async def iter_all(conn: AsyncConnection, *, batch_size: int = 500) -> AsyncIterator[list[Document]]:
    """Every public entity as documents, in batches (for a full reindex)."""
    for kind, table, where in (("record", R, RECORD_PUBLIC), ("node", N, None), ("decision", D, None),
                               ("cooperation-request", CR, None), ("opportunity", OP, None)):  # fmt: skip
        last: uuid.UUID | None = None
        while True:
            stmt = select(table.c.id).order_by(table.c.id).limit(batch_size)
            if where is not None:
                stmt = stmt.where(where)
            if last is not None:
                stmt = stmt.where(table.c.id > last)
            ids = list((await conn.execute(stmt)).scalars())
            if not ids:
                break
            last = ids[-1]
            found = await LOADERS[kind](conn, ids)
            yield [found[i] for i in ids if i in found]
