"""Records: reading (lists, single, revisions) with visibility rules. Writes live in record_writes.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth.principal import Principal
from app.errors import AppError, BadRequest, NotFound
from app.models.common import INT32_MAX, check_int, iso_z
from app.models.derive import columns
from app.models.record import (
    ABBR_RECORD_TYPE,
    RECORD_STATUSES,
    RECORD_TYPES,
    Record,
    RecordDraft,
    RecordPublic,
    RecordRevision,
    make_uid,
)
from app.services import paging

R = Record.__table__  # type: ignore[attr-defined]
RD = RecordDraft.__table__  # type: ignore[attr-defined]
RR = RecordRevision.__table__  # type: ignore[attr-defined]

PUBLIC_COLUMNS = columns(R, RecordPublic, "serial")  # serial: for the uid

SORTS: dict[str, paging.SortKey] = {
    "-updated_at": paging.SortKey("-updated_at", (R.c.updated_at, R.c.id), (datetime, uuid.UUID), True),
    "updated_at": paging.SortKey("updated_at", (R.c.updated_at, R.c.id), (datetime, uuid.UUID)),
    "-published_at": paging.SortKey(
        "-published_at", (R.c.published_at, R.c.id), (datetime, uuid.UUID), True, nullable=True
    ),
    "published_at": paging.SortKey("published_at", (R.c.published_at, R.c.id), (datetime, uuid.UUID), nullable=True),
    "-created_at": paging.SortKey("-created_at", (R.c.created_at, R.c.id), (datetime, uuid.UUID), True),
    "created_at": paging.SortKey("created_at", (R.c.created_at, R.c.id), (datetime, uuid.UUID)),
}
DEFAULT_SORT = "-updated_at"
STATUSES = RECORD_STATUSES


class Gone(AppError):
    """A withdrawn record: the tombstone is all that remains public."""

    status = 410
    code = "GONE"
    title = "Withdrawn"


@dataclass(frozen=True)
class RecordFilter(paging.Filter):
    """The documented list filters."""

    party: str | None = None
    type: str | None = None
    status: str | None = None
    subject: str | None = None
    gbf_target: str | None = None


_PUBLIC_FIELDS = tuple(RecordPublic.model_fields)
_COLUMN_NAMES = tuple(c.name for c in PUBLIC_COLUMNS)
# The shape to_public builds fast: `id`, `uid`, then the selected columns in their (schema) order, then the
# fields no column holds (the owners' draft status). Checked here, so a reordered schema cannot skew it.
_NOT_COLUMNS = tuple(f for f in _PUBLIC_FIELDS if f not in _COLUMN_NAMES and f != "uid")
assert ("id", "uid", *(n for n in _COLUMN_NAMES[1:] if n != "serial"), *_NOT_COLUMNS) == _PUBLIC_FIELDS
_SLOTS = dict.fromkeys(_NOT_COLUMNS)


def to_public(row: Any) -> dict[str, Any]:
    """A head row as exactly the RecordPublic shape, in its field order (adds `uid`, drops `serial`), so a
    list page can be serialized without a second validation pass."""
    data = row if isinstance(row, dict) else dict(zip(_COLUMN_NAMES, row, strict=True))
    revision = data["revision"]
    uid = make_uid(data["type"], data["party"], data["serial"], revision) if revision else None
    if len(data) != len(_COLUMN_NAMES):  # not a row of PUBLIC_COLUMNS: pick field by field
        return {f: uid if f == "uid" else data.get(f) for f in _PUBLIC_FIELDS}
    out = {"id": data["id"], "uid": uid}
    out.update(data)
    del out["serial"]
    out.update(_SLOTS)
    return out


def visibility(principal: Principal) -> ColumnElement[bool]:
    """Which head rows the caller may see: published for everyone, everything of its own Party."""
    if principal.is_secretariat:
        return true()
    published = R.c.status == "published"
    if principal.party:
        return or_(published, R.c.party == principal.party)
    return published


def _visible(principal: Principal, f: RecordFilter) -> list[ColumnElement[bool]]:
    """A status filter other than `published` shows the caller's own Party's records only."""
    if f.status is None:
        return [visibility(principal)]
    if f.status != "published" and not principal.is_secretariat:
        return [R.c.party == principal.party if principal.party else false()]
    return []


LISTING = paging.Listing(
    R,
    PUBLIC_COLUMNS,
    SORTS,
    DEFAULT_SORT,
    RecordFilter,
    choices={"type": RECORD_TYPES, "status": STATUSES},
    visible=_visible,
    to_public=to_public,
)


async def list_records(
    conn: AsyncConnection,
    principal: Principal,
    *,
    filters: RecordFilter,
    sort: str | None = None,
    cursor: str | None = None,
    limit: int = paging.DEFAULT_LIMIT,
) -> tuple[list[dict[str, Any]], str | None]:
    """A keyset page of records the caller may see, newest change first by default."""
    items, next_cursor = await LISTING.page(conn, principal, filters=filters, sort=sort, cursor=cursor, limit=limit)
    await _attach_draft_status(conn, principal, items)
    return items, next_cursor


async def _attach_draft_status(conn: AsyncConnection, principal: Principal, items: list[dict[str, Any]]) -> None:
    """Owners see whether a working draft sits over a published record."""
    if principal.is_anonymous:
        return
    ids = [i["id"] for i in items if i["revision"] and principal.can_see_unpublished(i["party"])]
    if not ids:
        return
    rows = await conn.execute(select(RD.c.record_id, RD.c.status, RD.c.updated_at).where(RD.c.record_id.in_(ids)))
    drafts = {r.record_id: r for r in rows}
    for item in items:
        draft = drafts.get(item["id"])
        if draft is not None:
            item["draft_status"] = draft.status
            item["draft_updated_at"] = draft.updated_at


async def records_for_parties(
    conn: AsyncConnection, principal: Principal, parties: list[str], *, limit: int
) -> list[paging.Page]:
    """The first page (default sort) of each Party's visible records, one (items, next_cursor) per code; for
    DataLoaders."""
    pages = await LISTING.party_pages(conn, principal, parties, limit=limit)
    await _attach_draft_status(conn, principal, [item for items, _ in pages for item in items])
    return pages


def parse_uid(uid: str) -> tuple[str, str, int, int | None]:
    """Split `CHM-RES-BR-000123-2` (revision optional) into type, party, serial, revision."""
    parts = uid.split("-")
    try:
        if len(parts) not in (4, 5) or parts[0] != "CHM":
            raise ValueError
        rtype = ABBR_RECORD_TYPE[parts[1]]
        if not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts[3:]) or len(parts[2]) != 2:
            raise ValueError  # serial is a bigint, revision an integer: never let an overflow reach SQL
        revision = check_int(int(parts[4]), 0, INT32_MAX) if len(parts) == 5 else None
        return rtype, parts[2], int(parts[3]), revision
    except (KeyError, ValueError):
        raise BadRequest(f"'{uid}' is not a CHM uid (CHM-{{TYPE}}-{{PARTY}}-{{serial}}[-{{revision}}])") from None


async def get_record(conn: AsyncConnection, principal: Principal, record_id: uuid.UUID) -> dict[str, Any]:
    """One record; 404 when invisible to the caller, 410 with a tombstone when withdrawn."""
    row = (await conn.execute(select(*PUBLIC_COLUMNS).where(R.c.id == record_id))).first()
    return await _visible_or_raise(conn, principal, row, str(record_id))


async def get_by_uid(conn: AsyncConnection, principal: Principal, uid: str) -> dict[str, Any]:
    """One record by its public uid; with a revision suffix, that published revision's content."""
    rtype, party, serial, revision = parse_uid(uid)
    row = (
        await conn.execute(select(*PUBLIC_COLUMNS).where(R.c.serial == serial, R.c.party == party, R.c.type == rtype))
    ).first()
    record = await _visible_or_raise(conn, principal, row, uid)
    if revision is not None and revision != record["revision"]:
        rev = await get_revision(conn, principal, record["id"], revision)
        record = {
            **record,
            **rev["content"],
            "revision": revision,
            "uid": rev["uid"],
            "published_at": rev["published_at"],
        }
    return record


async def _visible_or_raise(conn: AsyncConnection, principal: Principal, row: Any, ref: str) -> dict[str, Any]:
    if row is None or (row.status != "published" and not principal.can_see_unpublished(row.party)):
        if row is not None and row.status == "withdrawn":
            raise Gone(
                f"record {ref} was withdrawn",
                tombstone={
                    "id": str(row.id),
                    "uid": make_uid(row.type, row.party, row.serial, row.revision) if row.revision else None,
                    "party": row.party,
                    "type": row.type,
                    "status": "withdrawn",
                    "withdrawn_at": iso_z(row.withdrawn_at) if row.withdrawn_at else None,
                },
            )
        raise NotFound(f"no record {ref}")
    record = to_public(row)
    await _attach_draft_status(conn, principal, [record])
    return record


async def list_revisions(
    conn: AsyncConnection, principal: Principal, record_id: uuid.UUID, *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Every published revision of a record, newest first."""
    paging.check_limit(limit)
    head = await get_record(conn, principal, record_id)
    key = paging.SortKey("-revision", (RR.c.revision,), (int,), True)
    stmt = paging.apply(
        select(RR.c.revision, RR.c.content, RR.c.published_at).where(RR.c.record_id == record_id), key, cursor, limit
    )
    rows, next_cursor = paging.page((await conn.execute(stmt)).all(), key, limit, lambda r: (r.revision,))
    return [_revision_public(head, r) for r in rows], next_cursor


async def get_revision(
    conn: AsyncConnection, principal: Principal, record_id: uuid.UUID, revision: int
) -> dict[str, Any]:
    """One published revision."""
    head = await get_record(conn, principal, record_id)
    row = (
        await conn.execute(
            select(RR.c.revision, RR.c.content, RR.c.published_at).where(
                RR.c.record_id == record_id, RR.c.revision == revision
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"record {record_id} has no published revision {revision}")
    return _revision_public(head, row)


def _revision_public(head: dict[str, Any], row: Any) -> dict[str, Any]:
    content = dict(row.content)
    serial = int(head["uid"].split("-")[3]) if head.get("uid") else 0
    return {
        "record_id": head["id"],
        "revision": row.revision,
        "published_at": row.published_at,
        "uid": make_uid(content.get("type", head["type"]), head["party"], serial, row.revision),
        "content": content,
    }


async def get_working(conn: AsyncConnection, principal: Principal, record_id: uuid.UUID) -> dict[str, Any]:
    """The owner's working copy: the draft over a published record, or the never-published record itself."""
    head = await get_record(conn, principal, record_id)
    if not principal.can_see_unpublished(head["party"]):
        raise NotFound(f"no working draft of record {record_id}")
    if not head["revision"]:
        return head
    row = (
        await conn.execute(select(RD.c.status, RD.c.content, RD.c.updated_at).where(RD.c.record_id == record_id))
    ).first()
    if row is None:
        raise NotFound(f"record {record_id} has no working draft; edit it to make one")
    return working_view(head, row.content, row.status, row.updated_at)


def working_view(head: dict[str, Any], content: dict[str, Any], status: str, updated_at: datetime) -> dict[str, Any]:
    """A head with a draft's content laid over it."""
    return {**head, **content, "status": status, "draft_status": status, "draft_updated_at": updated_at}


async def get_many(conn: AsyncConnection, principal: Principal, ids: list[uuid.UUID]) -> list[dict[str, Any] | None]:
    """Records by id in the given order (None where missing or not visible); for the harvesting formats."""
    if not ids:
        return []
    rows = await conn.execute(select(*PUBLIC_COLUMNS).where(R.c.id.in_(ids), visibility(principal)))
    found = {r.id: to_public(r) for r in rows}
    return [found.get(i) for i in ids]
