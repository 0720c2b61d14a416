"""COP / CP-MOP / NP-MOP decisions: reads (lists, single with paragraphs, DataLoader batches) and
Secretariat writes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app import db
from app.auth.principal import Principal
from app.errors import Conflict, Forbidden, Invalid, NotFound, field_error
from app.models.decision import (
    DECISION_BODIES,
    DECISION_STATUSES,
    Decision,
    DecisionCreate,
    DecisionParagraph,
    DecisionPublic,
    DecisionUpdate,
    ParagraphPublic,
)
from app.models.derive import columns
from app.services import etags, events, paging, reference
from app.services.ownership import values_of

D = Decision.__table__  # type: ignore[attr-defined]
DP = DecisionParagraph.__table__  # type: ignore[attr-defined]

PUBLIC_COLUMNS = columns(D, DecisionPublic)
PARAGRAPH_COLUMNS = columns(DP, ParagraphPublic)

SORTS: dict[str, paging.SortKey] = {
    # Code order: COP-9-1 < COP-9-30 < COP-15-4 (body, then session and number as integers).
    "code": paging.SortKey("code", (D.c.body, D.c.session, D.c.number, D.c.id), (str, int, int, uuid.UUID)),
    "-adopted_on": paging.SortKey(
        "-adopted_on", (D.c.adopted_on, D.c.id), (date, uuid.UUID), True, nullable=True, null_value=date.min
    ),
    "-updated_at": paging.SortKey("-updated_at", (D.c.updated_at, D.c.id), (datetime, uuid.UUID), True),
}
DEFAULT_SORT = "code"
BODIES = DECISION_BODIES
STATUSES = DECISION_STATUSES
SCOPE = "decisions:write"
KIND = "decision"


@dataclass(frozen=True)
class DecisionFilter(paging.Filter):
    """The documented list filters."""

    body: str | None = None
    session: int | None = None
    status: str | None = None
    subject: str | None = None
    gbf_target: str | None = None


def to_public(row: Any) -> dict[str, Any]:
    """A row as the DecisionPublic shape (without paragraphs)."""
    return dict(db.row_mapping(row))


def visibility(principal: Principal) -> ColumnElement[bool]:
    """Which decisions the caller may see: all of them (no draft state; the hook stays for one)."""
    return true()


LISTING = paging.Listing(
    D,
    PUBLIC_COLUMNS,
    SORTS,
    DEFAULT_SORT,
    DecisionFilter,
    choices={"body": BODIES, "status": STATUSES},
    upper=("body",),
)
list_decisions = LISTING.page  # a keyset page of decisions (without paragraphs), in code order by default


def normalise_code(code: str) -> str:
    """Decision codes are upper case (`cop-15-4` finds `COP-15-4`)."""
    return code.strip().upper()


async def get_decision(conn: AsyncConnection, principal: Principal, code: str) -> dict[str, Any]:
    """One decision by code, with its paragraphs in order."""
    row = (
        await conn.execute(select(*PUBLIC_COLUMNS).where(D.c.code == normalise_code(code), visibility(principal)))
    ).first()
    if row is None:
        raise NotFound(f"no decision {code}")
    decision = to_public(row)
    (decision["paragraphs"],) = await paragraphs_for_decisions(conn, [decision["id"]])
    return decision


async def get_many_by_code(
    conn: AsyncConnection, principal: Principal, codes: list[str]
) -> list[dict[str, Any] | None]:
    """Decisions by code in the given order (None where missing), without paragraphs; for DataLoaders."""
    if not codes:
        return []
    wanted = [normalise_code(c) for c in codes]
    rows = await conn.execute(select(*PUBLIC_COLUMNS).where(D.c.code.in_(wanted), visibility(principal)))
    found = {r.code: to_public(r) for r in rows}
    return [found.get(c) for c in wanted]


async def paragraphs_for_decisions(conn: Any, decision_ids: list[uuid.UUID]) -> list[list[dict[str, Any]]]:
    """Each decision's paragraphs by position, one list per given id; for DataLoaders."""
    if not decision_ids:
        return []
    stmt = (
        select(DP.c.decision_id, *PARAGRAPH_COLUMNS)
        .where(DP.c.decision_id.in_(set(decision_ids)))
        .order_by(DP.c.decision_id, DP.c.position)
    )
    by_id: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row in await conn.execute(stmt):
        para = dict(row._mapping)
        by_id.setdefault(para.pop("decision_id"), []).append(para)
    return [by_id.get(i, []) for i in decision_ids]


# --- writes (Secretariat only) -------------------------------------------------------------------------------


def require_writer(principal: Principal) -> None:
    """Decisions are the Secretariat's: a Party token is refused even when it holds the scope."""
    principal.require(SCOPE)
    if not principal.is_secretariat:
        raise Forbidden("only a Secretariat token writes decisions")


def _check_code(data: DecisionCreate) -> None:
    expected = f"{data.body}-{data.session}-{data.number}"
    if data.code != expected:
        raise Invalid.field(
            ["body", "code"], f"code '{data.code}' does not match body, session and number ('{expected}')"
        )


async def _insert_paragraphs(session: AsyncSession, decision_id: uuid.UUID, paragraphs: list[dict[str, Any]]) -> None:
    if paragraphs:
        await session.execute(
            insert(DP), [{"decision_id": decision_id, "position": i, **p} for i, p in enumerate(paragraphs, start=1)]
        )


async def _current(session: AsyncSession, principal: Principal, code: str) -> dict[str, Any]:
    stmt = select(*PUBLIC_COLUMNS).where(D.c.code == normalise_code(code), visibility(principal))
    row = (await session.execute(stmt.with_for_update())).first()
    if row is None:
        raise NotFound(f"no decision {code}")
    decision = to_public(row)
    (decision["paragraphs"],) = await paragraphs_for_decisions(session, [decision["id"]])
    return decision


def _event(op: str, decision: dict[str, Any]) -> events.Event:
    return events.of_row(KIND, op, decision, party=None, detail={"code": decision["code"]})


async def create_decision(session: AsyncSession, principal: Principal, *, data: DecisionCreate) -> dict[str, Any]:
    """Create a decision with its paragraphs; a code already taken is a Conflict."""
    require_writer(principal)
    _check_code(data)
    values = values_of(data, partial=False)
    await reference.check_terms(await session.connection(), values)
    paragraphs = values.pop("paragraphs")
    now = await events.now(session)
    stmt = (
        pg_insert(D)
        .values(id=uuid.uuid4(), created_at=now, updated_at=now, **values)
        .on_conflict_do_nothing(index_elements=["code"])
        .returning(*PUBLIC_COLUMNS)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        raise Conflict(
            f"decision {data.code} already exists; PUT /api/v1/decisions/{data.code} to replace it",
            errors=[field_error(("body", "code"), "already exists", "conflict")],
        )
    decision = to_public(row)
    await _insert_paragraphs(session, decision["id"], paragraphs)
    (decision["paragraphs"],) = await paragraphs_for_decisions(session, [decision["id"]])
    await events.emit(session, principal, [_event("create", decision)])
    return decision


async def update_decision(
    session: AsyncSession,
    principal: Principal,
    code: str,
    *,
    data: DecisionCreate | DecisionUpdate,
    if_match: str | None = None,
) -> dict[str, Any]:
    """Replace (DecisionCreate, PUT) or patch (DecisionUpdate, PATCH); paragraphs, when sent, replace all."""
    require_writer(principal)
    current = await _current(session, principal, code)
    replace = isinstance(data, DecisionCreate)
    if isinstance(data, DecisionCreate):
        _check_code(data)
        if data.code != current["code"]:
            raise Invalid.field(["body", "code"], f"the code of decision {current['code']} cannot change")
    etags.check_if_match(if_match, DecisionPublic, current)
    values = values_of(data, partial=not replace)
    await reference.check_terms(await session.connection(), values)
    paragraphs = values.pop("paragraphs", None)
    for fixed in ("code", "body", "session", "number"):
        values.pop(fixed, None)
    if not values and paragraphs is None:
        return current
    values["updated_at"] = await events.now(session)
    row = (
        await session.execute(update(D).where(D.c.id == current["id"]).values(**values).returning(*PUBLIC_COLUMNS))
    ).one()
    decision = to_public(row)
    if paragraphs is not None:
        await session.execute(delete(DP).where(DP.c.decision_id == decision["id"]))
        await _insert_paragraphs(session, decision["id"], paragraphs)
    (decision["paragraphs"],) = await paragraphs_for_decisions(session, [decision["id"]])
    await events.emit(session, principal, [_event("update", decision)])
    return decision


async def delete_decision(
    session: AsyncSession, principal: Principal, code: str, *, if_match: str | None = None
) -> None:
    """Delete a decision and its paragraphs."""
    require_writer(principal)
    current = await _current(session, principal, code)
    etags.check_if_match(if_match, DecisionPublic, current)
    await session.execute(delete(D).where(D.c.id == current["id"]))
    await events.emit(session, principal, [_event("delete", current)])


async def get_many(conn: AsyncConnection, principal: Principal, ids: list[uuid.UUID]) -> list[dict[str, Any] | None]:
    """Decisions by id in the given order (None where missing), without paragraphs; for the harvesting formats."""
    if not ids:
        return []
    rows = await conn.execute(select(*PUBLIC_COLUMNS).where(D.c.id.in_(ids), visibility(principal)))
    found = {r.id: to_public(r) for r in rows}
    return [found.get(i) for i in ids]
