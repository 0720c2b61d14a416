"""Scientific and technical cooperation: requests by a Party, offers by other Parties, the requester's answer.

Rules: only the requesting Party (or the Secretariat) edits a request and accepts or declines its offers;
a Party offers on another Party's request only; only the offering Party (or the Secretariat) edits or
withdraws its own proposed offer. An offer changes what a request shows, so every offer write also bumps
the request (`updated_at`, change feed, search reindex).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app import db
from app.auth.principal import Principal
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.models.cooperation import (
    REQUEST_STATUSES,
    CooperationOffer,
    CooperationRequest,
    OfferCreate,
    OfferDecision,
    OfferPublic,
    OfferUpdate,
    RequestCreate,
    RequestPublic,
    RequestUpdate,
)
from app.models.derive import columns
from app.services import etags, events, paging, reference
from app.services.ownership import check_party_unchanged, values_of, writing_party

CR = CooperationRequest.__table__  # type: ignore[attr-defined]
CO = CooperationOffer.__table__  # type: ignore[attr-defined]

PUBLIC_COLUMNS = columns(CR, RequestPublic)
OFFER_COLUMNS = columns(CO, OfferPublic)

SORTS: dict[str, paging.SortKey] = {
    "-updated_at": paging.SortKey("-updated_at", (CR.c.updated_at, CR.c.id), (datetime, uuid.UUID), True),
    "updated_at": paging.SortKey("updated_at", (CR.c.updated_at, CR.c.id), (datetime, uuid.UUID)),
}
OFFER_SORT = paging.SortKey("created_at", (CO.c.created_at, CO.c.id), (datetime, uuid.UUID))
DEFAULT_SORT = "-updated_at"
STATUSES = REQUEST_STATUSES
OFFERABLE = ("open", "in-discussion")  # a matched or closed request takes no new offers
SCOPE = "cooperation:write"
KIND, OFFER_KIND = "cooperation-request", "offer"


@dataclass(frozen=True)
class RequestFilter(paging.Filter):
    """The documented list filters."""

    party: str | None = None
    status: str | None = None
    subject: str | None = None
    gbf_target: str | None = None


def to_public(row: Any) -> dict[str, Any]:
    """A row as the RequestPublic / OfferPublic shape."""
    return dict(db.row_mapping(row))


def visibility(principal: Principal) -> ColumnElement[bool]:
    """Which requests the caller may see: all of them (no draft state; the hook stays for one)."""
    return true()


LISTING = paging.Listing(CR, PUBLIC_COLUMNS, SORTS, DEFAULT_SORT, RequestFilter, choices={"status": STATUSES})
list_requests = LISTING.page  # a keyset page of cooperation requests (without offers), newest change first


async def get_request(conn: Any, principal: Principal, request_id: uuid.UUID, *, lock: bool = False) -> dict[str, Any]:
    """One request with its offers (oldest first); `lock` takes a row lock inside a write transaction."""
    stmt = select(*PUBLIC_COLUMNS).where(CR.c.id == request_id, visibility(principal))
    row = (await conn.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise NotFound(f"no cooperation request {request_id}")
    request = to_public(row)
    (request["offers"],) = await offers_for_requests(conn, [request_id])
    return request


async def visible_ids(conn: Any, principal: Principal, request_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these requests the caller may see (primary-key probes, no offers read)."""
    if not request_ids:
        return set()
    found = await conn.execute(select(CR.c.id).where(CR.c.id.in_(set(request_ids)), visibility(principal)))
    return set(found.scalars())


async def check_visible(conn: Any, principal: Principal, request_id: uuid.UUID) -> None:
    """NotFound unless the caller may see the request."""
    if not await visible_ids(conn, principal, [request_id]):
        raise NotFound(f"no cooperation request {request_id}")


requests_for_parties = LISTING.party_pages  # each Party's first page of requests; for DataLoaders


async def offers_for_requests(conn: Any, request_ids: list[uuid.UUID]) -> list[list[dict[str, Any]]]:
    """Each request's offers (oldest first), one whole list per given request id (single reads, dumps)."""
    if not request_ids:
        return []
    stmt = (
        select(*OFFER_COLUMNS)
        .where(CO.c.request_id.in_(set(request_ids)))
        .order_by(CO.c.request_id, CO.c.created_at, CO.c.id)
    )
    by_id: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row in await conn.execute(stmt):
        by_id.setdefault(row.request_id, []).append(to_public(row))
    return [by_id.get(i, []) for i in request_ids]


async def offer_pages(conn: AsyncConnection, request_ids: list[uuid.UUID], *, limit: int) -> list[paging.Page]:
    """The first page (oldest first) of each request's offers, one page per given id; for DataLoaders."""
    pages = await paging.first_pages(conn, OFFER_COLUMNS, CO.c.request_id, request_ids, OFFER_SORT, limit)
    return [([to_public(r) for r in pages[i][0]], pages[i][1]) if i in pages else ([], None) for i in request_ids]


async def list_offers(
    conn: AsyncConnection,
    principal: Principal,
    request_id: uuid.UUID,
    *,
    cursor: str | None = None,
    limit: int = paging.DEFAULT_LIMIT,
) -> paging.Page:
    """A keyset page of one request's offers, oldest first."""
    paging.check_limit(limit)
    stmt = paging.apply(select(*OFFER_COLUMNS).where(CO.c.request_id == request_id), OFFER_SORT, cursor, limit)
    await check_visible(conn, principal, request_id)
    rows, next_cursor = paging.page((await conn.execute(stmt)).all(), OFFER_SORT, limit, lambda r: (r.created_at, r.id))
    return [to_public(r) for r in rows], next_cursor


async def get_offer(conn: Any, principal: Principal, request_id: uuid.UUID, offer_id: uuid.UUID) -> dict[str, Any]:
    """One offer on a request."""
    stmt = (
        select(*OFFER_COLUMNS)
        .join(CR, CR.c.id == CO.c.request_id)
        .where(CO.c.id == offer_id, CO.c.request_id == request_id, visibility(principal))
    )
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound(f"no offer {offer_id} on cooperation request {request_id}")
    return to_public(row)


# --- writes --------------------------------------------------------------------------------------------------


def _check_dates(values: dict[str, Any], current: dict[str, Any] | None = None) -> None:
    merged = {**(current or {}), **values}
    start, end = merged.get("start_date"), merged.get("end_date")
    if start and end and end < start:
        raise Invalid.field(["body", "end_date"], "end_date is before start_date")


def _request_event(op: str, request: dict[str, Any], detail: dict[str, Any] | None = None) -> events.Event:
    return events.of_row(KIND, op, request, party=request["party"], detail=detail)


def _offer_event(action: str, op: str, offer: dict[str, Any]) -> events.Event:
    return events.of_row(OFFER_KIND, op, offer, party=offer["provider_party"], action=f"offer.{action}",
                         reindex=False, detail={"request_id": str(offer["request_id"])})  # fmt: skip


async def create_request(session: AsyncSession, principal: Principal, *, data: RequestCreate) -> dict[str, Any]:
    """Create a request for the token's Party (the Secretariat names any Party)."""
    principal.require(SCOPE)
    conn = await session.connection()
    values = values_of(data, partial=False)
    values["party"] = await writing_party(conn, principal, data.party)
    await reference.check_terms(conn, values)
    now = await events.now(session)
    row = (
        await session.execute(
            insert(CR).values(id=uuid.uuid4(), created_at=now, updated_at=now, **values).returning(*PUBLIC_COLUMNS)
        )
    ).one()
    request = {**to_public(row), "offers": []}
    await events.emit(session, principal, [_request_event("create", request)])
    return request


async def update_request(
    session: AsyncSession,
    principal: Principal,
    request_id: uuid.UUID,
    *,
    data: RequestCreate | RequestUpdate,
    if_match: str | None = None,
) -> dict[str, Any]:
    """Replace (RequestCreate, PUT) or patch (RequestUpdate, PATCH) a request of the caller's Party."""
    principal.require(SCOPE)
    current = await get_request(session, principal, request_id, lock=True)
    principal.require_party(current["party"])
    replace = isinstance(data, RequestCreate)
    if isinstance(data, RequestCreate):
        check_party_unchanged(principal, current["party"], data.party)
    etags.check_if_match(if_match, RequestPublic, current)
    _check_dates(data.model_dump(exclude_unset=not replace, include={"start_date", "end_date"}), current)
    values = values_of(data, partial=not replace)
    values.pop("party", None)
    await reference.check_terms(await session.connection(), values)
    if not values:
        return current
    return await _touch_request(session, principal, current, values, op="update")


async def _touch_request(
    session: AsyncSession,
    principal: Principal,
    current: dict[str, Any],
    values: dict[str, Any],
    *,
    op: str,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write `values` (plus a fresh `updated_at`) to a locked request and emit its event."""
    values = {**values, "updated_at": await events.now(session)}
    row = (
        await session.execute(update(CR).where(CR.c.id == current["id"]).values(**values).returning(*PUBLIC_COLUMNS))
    ).one()
    request = to_public(row)
    (request["offers"],) = await offers_for_requests(session, [request["id"]])
    await events.emit(session, principal, [_request_event(op, request, detail)])
    return request


async def delete_request(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, *, if_match: str | None = None
) -> None:
    """Delete a request of the caller's Party, with its offers."""
    principal.require(SCOPE)
    current = await get_request(session, principal, request_id, lock=True)
    principal.require_party(current["party"])
    etags.check_if_match(if_match, RequestPublic, current)
    await session.execute(delete(CR).where(CR.c.id == request_id))
    await events.emit(session, principal, [_request_event("delete", current)])


async def create_offer(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, *, data: OfferCreate
) -> dict[str, Any]:
    """Offer help on another Party's open request; the provider is the token's Party."""
    principal.require(SCOPE)
    current = await get_request(session, principal, request_id, lock=True)
    if principal.party is not None and principal.party == current["party"]:
        raise Forbidden(f"{principal.party} cannot offer on its own cooperation request")
    if principal.party is None and not data.provider_organization:
        raise Invalid.field(
            ["body", "provider_organization"], "an offer made by the Secretariat names the providing organization"
        )
    if current["status"] not in OFFERABLE:
        raise Conflict(f"cooperation request {request_id} is {current['status']} and takes no new offers")
    values = values_of(data, partial=False)
    now = await events.now(session)
    row = (
        await session.execute(
            insert(CO)
            .values(
                id=uuid.uuid4(),
                request_id=request_id,
                created_at=now,
                updated_at=now,
                provider_party=principal.party,
                **values,
            )
            .returning(*OFFER_COLUMNS)
        )
    ).one()
    offer = to_public(row)
    await events.emit(session, principal, [_offer_event("create", "create", offer)])
    bump = {"status": "in-discussion"} if current["status"] == "open" else {}
    await _touch_request(session, principal, current, bump, op="update", detail={"offer": str(offer["id"])})
    return offer


async def _locked_offer(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, offer_id: uuid.UUID
) -> tuple[dict[str, Any], dict[str, Any]]:
    request = await get_request(session, principal, request_id, lock=True)
    offer = next((o for o in request["offers"] if o["id"] == offer_id), None)
    if offer is None:
        raise NotFound(f"no offer {offer_id} on cooperation request {request_id}")
    return request, offer


def _require_provider(principal: Principal, offer: dict[str, Any]) -> None:
    if not (principal.is_secretariat or (principal.party and principal.party == offer["provider_party"])):
        raise Forbidden(f"only the offering Party ({offer['provider_party'] or 'the Secretariat'}) changes this offer")


def _require_proposed(offer: dict[str, Any]) -> None:
    if offer["status"] != "proposed":
        raise Conflict(f"offer {offer['id']} was already {offer['status']}")


async def update_offer(
    session: AsyncSession,
    principal: Principal,
    request_id: uuid.UUID,
    offer_id: uuid.UUID,
    *,
    data: OfferUpdate,
    if_match: str | None = None,
) -> dict[str, Any]:
    """The offering Party edits its own offer while it is still proposed."""
    principal.require(SCOPE)
    request, offer = await _locked_offer(session, principal, request_id, offer_id)
    _require_provider(principal, offer)
    etags.check_if_match(if_match, OfferPublic, offer)
    _require_proposed(offer)
    values = values_of(data, partial=True)
    if not values:
        return offer
    values["updated_at"] = await events.now(session)
    row = (
        await session.execute(update(CO).where(CO.c.id == offer_id).values(**values).returning(*OFFER_COLUMNS))
    ).one()
    offer = to_public(row)
    await events.emit(session, principal, [_offer_event("update", "update", offer)])
    await _touch_request(session, principal, request, {}, op="update", detail={"offer": str(offer_id)})
    return offer


async def withdraw_offer(
    session: AsyncSession,
    principal: Principal,
    request_id: uuid.UUID,
    offer_id: uuid.UUID,
    *,
    if_match: str | None = None,
) -> None:
    """The offering Party withdraws (deletes) its own offer while it is still proposed."""
    principal.require(SCOPE)
    request, offer = await _locked_offer(session, principal, request_id, offer_id)
    _require_provider(principal, offer)
    etags.check_if_match(if_match, OfferPublic, offer)
    _require_proposed(offer)
    await session.execute(delete(CO).where(CO.c.id == offer_id))
    await events.emit(session, principal, [_offer_event("withdraw", "delete", offer)])
    await _touch_request(session, principal, request, {}, op="update", detail={"offer": str(offer_id)})


async def decide_offer(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, offer_id: uuid.UUID, *, data: OfferDecision
) -> dict[str, Any]:
    """The requester accepts or declines a proposed offer; accepting matches an open request."""
    principal.require(SCOPE)
    request, offer = await _locked_offer(session, principal, request_id, offer_id)
    if not principal.is_secretariat and principal.party != request["party"]:
        raise Forbidden(f"only the requesting Party ({request['party']}) accepts or declines offers")
    _require_proposed(offer)
    if request["status"] == "closed":
        raise Conflict(f"cooperation request {request_id} is closed")
    now = await events.now(session)
    row = (
        await session.execute(
            update(CO).where(CO.c.id == offer_id).values(status=data.status, updated_at=now).returning(*OFFER_COLUMNS)
        )
    ).one()
    offer = to_public(row)
    action = "accept" if data.status == "accepted" else "decline"
    await events.emit(session, principal, [_offer_event(action, "update", offer)])
    bump = {"status": "matched"} if data.status == "accepted" and request["status"] in OFFERABLE else {}
    await _touch_request(session, principal, request, bump, op="update", detail={"offer": str(offer_id)})
    return offer


async def get_many(conn: AsyncConnection, principal: Principal, ids: list[uuid.UUID]) -> list[dict[str, Any] | None]:
    """Requests by id in the given order (None where missing), without offers; for the harvesting formats."""
    if not ids:
        return []
    rows = await conn.execute(select(*PUBLIC_COLUMNS).where(CR.c.id.in_(ids), visibility(principal)))
    found = {r.id: to_public(r) for r in rows}
    return [found.get(i) for i in ids]
