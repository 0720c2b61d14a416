"""The change feed: every create, update, publish and withdraw, in strictly increasing `seq` order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from app import registry
from app.auth.principal import Principal
from app.errors import BadRequest
from app.services import paging, reference
from app.services.events import CHANGES


def _visible(principal: Principal) -> ColumnElement[bool]:
    if principal.is_secretariat:
        return CHANGES.c.seq.isnot(None)
    if principal.party:
        return or_(CHANGES.c.public == true(), CHANGES.c.party == principal.party)
    return CHANGES.c.public == true()


async def list_changes(
    conn: AsyncConnection,
    principal: Principal,
    *,
    since: int = 0,
    limit: int = paging.DEFAULT_LIMIT,
    kind: str | None = None,
    party: str | None = None,
) -> dict[str, Any]:
    """Changes after `since` the caller may see; `next_since` continues the feed (poll it)."""
    paging.check_limit(limit)
    if since < 0:
        raise BadRequest.param("since", "must be ≥ 0", "since must be ≥ 0")
    if kind is not None and kind not in registry.FEED_KINDS:
        raise BadRequest.choice("kind", kind, registry.FEED_KINDS)
    party = await reference.check_party_filter(conn, party)
    conds = [CHANGES.c.seq > since, _visible(principal)]
    if kind:
        conds.append(CHANGES.c.kind == kind)
    if party:
        conds.append(CHANGES.c.party == party)
    stmt = (
        select(CHANGES.c.seq, CHANGES.c.kind, CHANGES.c.entity_id.label("id"), CHANGES.c.party, CHANGES.c.op,
               CHANGES.c.revision, CHANGES.c.at)
        .where(and_(*conds)).order_by(CHANGES.c.seq).limit(limit)
    )  # fmt: skip
    items = [dict(r._mapping) for r in await conn.execute(stmt)]
    return {"items": items, "next_since": items[-1]["seq"] if items else since}
