"""Opportunities: support on offer that is not yet tied to a request (the Bio-Bridge "opportunity").

Rules: a Party publishes opportunities as their provider (`provider_party` is the token's Party, optionally
with the organization that delivers); the Secretariat publishes for any Party, or for an organization alone
(`provider_party` empty, `provider_organization` required). Only the publishing Party (or the Secretariat)
edits, closes or deletes an opportunity. There is no draft state: an opportunity is public once written.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app import db
from app.auth.principal import Principal
from app.errors import Forbidden, Invalid, NotFound
from app.models.derive import columns
from app.models.opportunity import (
    OPPORTUNITY_STATUSES,
    Opportunity,
    OpportunityCreate,
    OpportunityPublic,
    OpportunityUpdate,
)
from app.services import etags, events, paging, reference
from app.services.ownership import check_party_unchanged, values_of, writing_party

OP = Opportunity.__table__  # type: ignore[attr-defined]
PUBLIC_COLUMNS = columns(OP, OpportunityPublic)

SORTS: dict[str, paging.SortKey] = {
    "-updated_at": paging.SortKey("-updated_at", (OP.c.updated_at, OP.c.id), (datetime, uuid.UUID), True),
    "updated_at": paging.SortKey("updated_at", (OP.c.updated_at, OP.c.id), (datetime, uuid.UUID)),
}
DEFAULT_SORT = "-updated_at"
SCOPE = "cooperation:write"
KIND = "opportunity"


@dataclass(frozen=True)
class OpportunityFilter(paging.Filter):
    """The documented list filters (`party` is the provider Party)."""

    party: str | None = None
    status: str | None = None
    subject: str | None = None
    gbf_target: str | None = None


def to_public(row: Any) -> dict[str, Any]:
    """A row as the OpportunityPublic shape."""
    return dict(db.row_mapping(row))


def visibility(principal: Principal) -> ColumnElement[bool]:
    """Which opportunities the caller may see: all of them (no draft state; the hook stays for one)."""
    return true()


LISTING = paging.Listing(
    OP,
    PUBLIC_COLUMNS,
    SORTS,
    DEFAULT_SORT,
    OpportunityFilter,
    choices={"status": OPPORTUNITY_STATUSES},
    party="provider_party",
)
list_opportunities = LISTING.page  # a keyset page of opportunities, newest change first by default


async def get_opportunity(
    conn: Any, principal: Principal, opportunity_id: uuid.UUID, *, lock: bool = False
) -> dict[str, Any]:
    """One opportunity; `lock` takes a row lock inside a write transaction."""
    stmt = select(*PUBLIC_COLUMNS).where(OP.c.id == opportunity_id, visibility(principal))
    row = (await conn.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise NotFound(f"no opportunity {opportunity_id}")
    return to_public(row)


opportunities_for_parties = LISTING.party_pages  # each provider Party's first page; for DataLoaders


# --- writes --------------------------------------------------------------------------------------------------


def _event(op: str, opportunity: dict[str, Any]) -> events.Event:
    return events.of_row(KIND, op, opportunity, party=opportunity["provider_party"])


async def _provider(conn: AsyncConnection, principal: Principal, data: OpportunityCreate) -> str | None:
    """The owning Party: the token's own; the Secretariat names one, or none for an organization alone."""
    if principal.party is None and data.provider_party is None:
        if not data.provider_organization:
            raise Invalid.field(
                ["body", "provider_organization"],
                "an opportunity published by the Secretariat names a provider_party or a provider_organization",
            )
        return None
    return await writing_party(conn, principal, data.provider_party)


def _require_owner(principal: Principal, current: dict[str, Any]) -> None:
    owner = current["provider_party"]
    if principal.is_secretariat:
        return
    if owner is None:
        raise Forbidden("only the Secretariat changes an opportunity it published")
    principal.require_party(owner)


def _check_provider(values: dict[str, Any], current: dict[str, Any]) -> None:
    merged = {**current, **values}
    if merged.get("provider_party") is None and not merged.get("provider_organization"):
        raise Invalid.field(
            ["body", "provider_organization"], "an opportunity without a provider Party names the provider_organization"
        )


async def create_opportunity(session: AsyncSession, principal: Principal, *, data: OpportunityCreate) -> dict[str, Any]:
    """Publish an opportunity for the token's Party (the Secretariat names any Party, or an organization)."""
    principal.require(SCOPE)
    conn = await session.connection()
    values = values_of(data, partial=False)
    values["provider_party"] = await _provider(conn, principal, data)
    await reference.check_terms(conn, values)
    now = await events.now(session)
    row = (
        await session.execute(
            insert(OP).values(id=uuid.uuid4(), created_at=now, updated_at=now, **values).returning(*PUBLIC_COLUMNS)
        )
    ).one()
    opportunity = to_public(row)
    await events.emit(session, principal, [_event("create", opportunity)])
    await _announce(session, principal, opportunity)
    return opportunity


async def _announce(session: AsyncSession, principal: Principal, opportunity: dict[str, Any]) -> None:
    """An open opportunity announces the open requests it fits well (cooperation.match)."""
    from app.services import matchmaking  # matchmaking reads opportunities through this module

    if opportunity["status"] == "open":
        await matchmaking.announce(session, principal, opportunity["id"])


async def update_opportunity(
    session: AsyncSession,
    principal: Principal,
    opportunity_id: uuid.UUID,
    *,
    data: OpportunityCreate | OpportunityUpdate,
    if_match: str | None = None,
) -> dict[str, Any]:
    """Replace (OpportunityCreate, PUT) or patch (OpportunityUpdate, PATCH) an opportunity the caller owns."""
    principal.require(SCOPE)
    current = await get_opportunity(session, principal, opportunity_id, lock=True)
    _require_owner(principal, current)
    replace = isinstance(data, OpportunityCreate)
    if isinstance(data, OpportunityCreate) and current["provider_party"] is not None:
        check_party_unchanged(principal, current["provider_party"], data.provider_party)
    elif isinstance(data, OpportunityCreate) and data.provider_party is not None:
        raise Invalid.field(["body", "provider_party"], "the provider Party of an existing opportunity cannot change")
    etags.check_if_match(if_match, OpportunityPublic, current)
    values = values_of(data, partial=not replace)
    values.pop("provider_party", None)
    _check_provider(values, current)
    await reference.check_terms(await session.connection(), values)
    if not values:
        return current
    values["updated_at"] = await events.now(session)
    row = (
        await session.execute(update(OP).where(OP.c.id == opportunity_id).values(**values).returning(*PUBLIC_COLUMNS))
    ).one()
    opportunity = to_public(row)
    await events.emit(session, principal, [_event("update", opportunity)])
    await _announce(session, principal, opportunity)
    return opportunity


async def delete_opportunity(
    session: AsyncSession, principal: Principal, opportunity_id: uuid.UUID, *, if_match: str | None = None
) -> None:
    """Delete an opportunity the caller owns."""
    principal.require(SCOPE)
    current = await get_opportunity(session, principal, opportunity_id, lock=True)
    _require_owner(principal, current)
    etags.check_if_match(if_match, OpportunityPublic, current)
    await session.execute(delete(OP).where(OP.c.id == opportunity_id))
    await events.emit(session, principal, [_event("delete", current)])


async def get_many(conn: AsyncConnection, principal: Principal, ids: list[uuid.UUID]) -> list[dict[str, Any] | None]:
    """Opportunities by id in the given order (None where missing); for the harvesting formats."""
    if not ids:
        return []
    rows = await conn.execute(select(*PUBLIC_COLUMNS).where(OP.c.id.in_(ids), visibility(principal)))
    found = {r.id: to_public(r) for r in rows}
    return [found.get(i) for i in ids]
