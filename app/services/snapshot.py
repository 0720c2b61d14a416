"""The public state, streamed kind by kind: what a harvester, an offline bundle or a mirror may copy.

Every stream yields the same dicts the public reads serve (anonymous visibility), so a bundle holds exactly
what the API shows; a delta (`since`) holds what the change log says changed after that seq, withdrawals
and deletions included.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, cast, func, select, true
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from app import registry
from app.auth.principal import ANONYMOUS
from app.models.record import make_uid
from app.services import records
from app.services.events import CHANGES
from app.services.reference import PARTY, TERM

R, RR = records.R, records.RR
BATCH = 1000

# Reference data first (what entries refer to), then every entity kind that is an item of its own
# (registry.HARVEST_KINDS: records with their earlier revisions, decisions, nodes, requests, opportunities...).
REFERENCE: tuple[str, ...] = ("party", "vocabulary-term")
ENTITY_KINDS: tuple[str, ...] = registry.HARVEST_KINDS
# The public kinds, in the order a mirror applies them (Parties before what refers to them).
KINDS: tuple[str, ...] = (
    *REFERENCE,
    *(k for kind in ENTITY_KINDS for k in ((kind, "record-revision") if kind == "record" else (kind,))),
)
# Kinds that can disappear (deleted); records are withdrawn instead and stay as tombstones.
DELETABLE: dict[str, Any] = {k: registry.get(k).table for k in ENTITY_KINDS if k != "record"}


def owner(kind: str) -> Any:
    """The column of the Party owning an entry of `kind` (None: no Party owns it, e.g. decisions)."""
    return registry.get(kind).owner


@dataclass(frozen=True)
class Scope:
    """What to copy: one Party's entries or all, everything or only what changed in (since, until]."""

    party: str | None = None
    since: int | None = None
    until: int | None = None


async def high_water_mark(conn: AsyncConnection) -> int:
    """The newest change-log seq (0 for an empty log)."""
    return int((await conn.execute(select(func.coalesce(func.max(CHANGES.c.seq), 0)))).scalar_one())


def _changed(kind: str, scope: Scope, id_column: Any) -> ColumnElement[bool]:
    if scope.since is None:
        return true()
    conds = [CHANGES.c.seq > scope.since, CHANGES.c.kind == kind, CHANGES.c.public == true()]
    if scope.until is not None:
        conds.append(CHANGES.c.seq <= scope.until)
    return id_column.in_(select(cast(CHANGES.c.entity_id, UUID(as_uuid=True))).where(and_(*conds)))


async def _batches(conn: AsyncConnection, stmt: Any) -> AsyncIterator[list[Any]]:
    """Rows in batches through a server-side cursor (memory stays flat; needs an open transaction)."""
    result = await conn.stream(stmt.execution_options(yield_per=BATCH))
    async for rows in result.partitions(BATCH):
        yield list(rows)


def tombstone(row: Any) -> dict[str, Any]:
    """What stays public of a withdrawn record (the body of its 410)."""
    return {"id": row.id, "uid": make_uid(row.type, row.party, row.serial, row.revision) if row.revision else None,
            "party": row.party, "type": row.type, "status": "withdrawn", "revision": row.revision,
            "withdrawn_at": row.withdrawn_at, "updated_at": row.updated_at}  # fmt: skip


def count_statement(kind: str, scope: Scope) -> Any:
    """How many entries `stream(kind)` yields (for progress bars); `kind` is one of ENTITY_KINDS."""
    if kind == "record":
        return select(func.count()).select_from(R).where(*_record_where(scope))
    return select(func.count()).select_from(registry.get(kind).table).where(*_entity_where(kind, scope))


def _entity_where(kind: str, scope: Scope) -> list[ColumnElement[bool]]:
    entity = registry.get(kind)
    conds = [entity.service_module().visibility(ANONYMOUS), _changed(kind, scope, entity.table.c.id)]
    if scope.party and entity.owner is not None:
        conds.append(entity.owner == scope.party)
    return conds


def _record_where(scope: Scope) -> list[ColumnElement[bool]]:
    conds = [R.c.status.in_(("published", "withdrawn")), _changed("record", scope, R.c.id)]
    if scope.party:
        conds.append(R.c.party == scope.party)
    return conds


async def stream(conn: AsyncConnection, kind: str, scope: Scope) -> AsyncIterator[list[dict[str, Any]]]:
    """Batches of public entries of `kind` (records: published ones whole, withdrawn ones as tombstones)."""
    if kind == "party":
        result = await conn.execute(select(PARTY.c.code, PARTY.c.name, PARTY.c.is_party).order_by(PARTY.c.code))
        yield [dict(r._mapping) for r in result]
    elif kind == "vocabulary-term":
        cols = (TERM.c.vocabulary, TERM.c.code, TERM.c.position, TERM.c.title, TERM.c.description, TERM.c.extra)
        result = await conn.execute(select(*cols).order_by(TERM.c.vocabulary, TERM.c.position, TERM.c.code))
        yield [dict(r._mapping) for r in result]
    elif kind == "record":
        # Newest publication first: the offline site lists the bundle in this order.
        stmt = (select(*records.PUBLIC_COLUMNS).where(*_record_where(scope))
                .order_by(R.c.status, R.c.published_at.desc(), R.c.id.desc()))  # fmt: skip
        async for rows in _batches(conn, stmt):
            yield [records.to_public(r) if r.status == "published" else tombstone(r) for r in rows]
    elif kind == "record-revision":
        # Earlier published revisions of public records; the current one is the record itself.
        stmt = (
            select(RR.c.record_id, RR.c.revision, RR.c.content, RR.c.published_at, R.c.party, R.c.serial, R.c.type)
            .join(R, R.c.id == RR.c.record_id)
            .where(*_record_where(scope), R.c.status == "published", RR.c.revision < R.c.revision)
            .order_by(RR.c.record_id, RR.c.revision)
        )
        async for rows in _batches(conn, stmt):
            yield [{"record_id": r.record_id, "revision": r.revision, "published_at": r.published_at,
                    "uid": make_uid(r.content.get("type", r.type), r.party, r.serial, r.revision),
                    "content": r.content} for r in rows]  # fmt: skip
    elif kind in ENTITY_KINDS:
        async for items in _entities(conn, kind, scope):
            yield items
    else:  # pragma: no cover - callers iterate KINDS
        raise ValueError(f"unknown kind {kind}")


async def _entities(conn: AsyncConnection, kind: str, scope: Scope) -> AsyncIterator[list[dict[str, Any]]]:
    """Any other entity kind, through its service: its public columns in its default list order, with its
    parts (a decision's paragraphs, a request's offers) attached."""
    entity = registry.get(kind)
    service = entity.service_module()
    key = service.SORTS[service.DEFAULT_SORT]
    order = [c.desc() if key.descending else c for c in key.exprs()]
    stmt = select(*service.PUBLIC_COLUMNS).where(*_entity_where(kind, scope)).order_by(*order)
    async for rows in _batches(conn, stmt):
        items = [service.to_public(r) for r in rows]
        if entity.parts is not None:
            field, loader = entity.parts
            for item, parts in zip(items, await getattr(service, loader)(conn, [i["id"] for i in items]), strict=True):
                item[field] = parts
        yield items


async def deletions(conn: AsyncConnection, scope: Scope) -> list[dict[str, Any]]:
    """Entries deleted in (since, until]: their change-log entries remain, their rows are gone."""
    if scope.since is None:
        return []
    out: list[dict[str, Any]] = []
    for kind, table in DELETABLE.items():
        conds = [CHANGES.c.seq > scope.since, CHANGES.c.kind == kind, CHANGES.c.public == true(),
                 CHANGES.c.op == "delete"]  # fmt: skip
        if scope.until is not None:
            conds.append(CHANGES.c.seq <= scope.until)
        if scope.party and owner(kind) is not None:
            conds.append(CHANGES.c.party == scope.party)
        gone = cast(CHANGES.c.entity_id, UUID(as_uuid=True))
        alive = select(table.c.id).where(table.c.id == gone).exists()
        stmt = (select(CHANGES.c.entity_id, func.max(CHANGES.c.seq).label("seq")).where(*conds, ~alive)
                .group_by(CHANGES.c.entity_id))  # fmt: skip
        out.extend({"kind": kind, "id": uuid.UUID(r.entity_id), "seq": r.seq} for r in await conn.execute(stmt))
    return sorted(out, key=lambda d: d["seq"])
