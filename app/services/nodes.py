"""National CHM nodes: reads (lists, single, DataLoader batches) and writes by the owning Party."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app import db
from app.auth.principal import Principal
from app.errors import NotFound
from app.models.derive import columns
from app.models.node import NODE_STATUSES, NationalNode, NodeCreate, NodePublic, NodeUpdate
from app.services import etags, events, paging
from app.services.ownership import check_party_unchanged, values_of, writing_party

N = NationalNode.__table__  # type: ignore[attr-defined]

PUBLIC_COLUMNS = columns(N, NodePublic)

SORTS: dict[str, paging.SortKey] = {
    "-updated_at": paging.SortKey("-updated_at", (N.c.updated_at, N.c.id), (datetime, uuid.UUID), True),
    "updated_at": paging.SortKey("updated_at", (N.c.updated_at, N.c.id), (datetime, uuid.UUID)),
    "party": paging.SortKey("party", (N.c.party, N.c.updated_at, N.c.id), (str, datetime, uuid.UUID)),
}
DEFAULT_SORT = "-updated_at"
STATUSES = NODE_STATUSES
SCOPE = "nodes:write"
KIND = "node"


@dataclass(frozen=True)
class NodeFilter(paging.Filter):
    """The documented list filters."""

    party: str | None = None
    status: str | None = None


def to_public(row: Any) -> dict[str, Any]:
    """A row as the NodePublic shape."""
    return dict(db.row_mapping(row))


def visibility(principal: Principal) -> ColumnElement[bool]:
    """Which nodes the caller may see: all of them (nodes have no draft state; the hook stays for one)."""
    return true()


LISTING = paging.Listing(N, PUBLIC_COLUMNS, SORTS, DEFAULT_SORT, NodeFilter, choices={"status": STATUSES})
list_nodes = LISTING.page  # a keyset page of national nodes, newest change first by default


async def get_node(conn: AsyncConnection, principal: Principal, node_id: uuid.UUID) -> dict[str, Any]:
    """One national node, or NotFound."""
    row = (await conn.execute(select(*PUBLIC_COLUMNS).where(N.c.id == node_id, visibility(principal)))).first()
    if row is None:
        raise NotFound(f"no national node {node_id}")
    return to_public(row)


nodes_for_parties = LISTING.party_pages  # each Party's first page of nodes; for DataLoaders


# --- writes --------------------------------------------------------------------------------------------------


async def _current(session: AsyncSession, principal: Principal, node_id: uuid.UUID) -> dict[str, Any]:
    row = (
        await session.execute(select(*PUBLIC_COLUMNS).where(N.c.id == node_id, visibility(principal)).with_for_update())
    ).first()
    if row is None:
        raise NotFound(f"no national node {node_id}")
    return to_public(row)


def _event(principal: Principal, op: str, node: dict[str, Any]) -> events.Event:
    return events.of_row(KIND, op, node, party=node["party"])


async def create_node(session: AsyncSession, principal: Principal, *, data: NodeCreate) -> dict[str, Any]:
    """Create a node for the token's Party (the Secretariat names any Party)."""
    principal.require(SCOPE)
    values = values_of(data, partial=False)
    values["party"] = await writing_party(await session.connection(), principal, data.party)
    now = await events.now(session)
    row = (
        await session.execute(
            insert(N).values(id=uuid.uuid4(), created_at=now, updated_at=now, **values).returning(*PUBLIC_COLUMNS)
        )
    ).one()
    node = to_public(row)
    await events.emit(session, principal, [_event(principal, "create", node)])
    return node


async def update_node(
    session: AsyncSession,
    principal: Principal,
    node_id: uuid.UUID,
    *,
    data: NodeCreate | NodeUpdate,
    if_match: str | None = None,
) -> dict[str, Any]:
    """Replace (NodeCreate, PUT) or patch (NodeUpdate, PATCH) a node of the caller's Party."""
    principal.require(SCOPE)
    current = await _current(session, principal, node_id)
    principal.require_party(current["party"])
    replace = isinstance(data, NodeCreate)
    if isinstance(data, NodeCreate):
        check_party_unchanged(principal, current["party"], data.party)
    etags.check_if_match(if_match, NodePublic, current)
    values = values_of(data, partial=not replace)
    values.pop("party", None)
    if not values:
        return current
    values["updated_at"] = await events.now(session)
    row = (await session.execute(update(N).where(N.c.id == node_id).values(**values).returning(*PUBLIC_COLUMNS))).one()
    node = to_public(row)
    await events.emit(session, principal, [_event(principal, "update", node)])
    return node


async def delete_node(
    session: AsyncSession, principal: Principal, node_id: uuid.UUID, *, if_match: str | None = None
) -> None:
    """Delete a node of the caller's Party."""
    principal.require(SCOPE)
    current = await _current(session, principal, node_id)
    principal.require_party(current["party"])
    etags.check_if_match(if_match, NodePublic, current)
    await session.execute(delete(N).where(N.c.id == node_id))
    await events.emit(session, principal, [_event(principal, "delete", current)])


async def get_many(conn: AsyncConnection, principal: Principal, ids: list[uuid.UUID]) -> list[dict[str, Any] | None]:
    """Nodes by id in the given order (None where missing); for the harvesting formats."""
    if not ids:
        return []
    rows = await conn.execute(select(*PUBLIC_COLUMNS).where(N.c.id.in_(ids), visibility(principal)))
    found = {r.id: to_public(r) for r in rows}
    return [found.get(i) for i in ids]
