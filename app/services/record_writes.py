"""Record writes and the CHM life cycle: draft → pending → published (revision +1) → withdrawn.

Editing a published record makes a working draft (`record_drafts`); the head row keeps the published
content until the draft is published. Every published revision is kept in `record_revisions`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import Text, any_, bindparam, delete, insert, select
from sqlalchemy import update as sa_update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError

from app import db
from app.auth.principal import Principal
from app.errors import AppError, Conflict, Forbidden, Invalid, NotFound, TooLarge, describe, field_error, field_errors
from app.models.common import text_problem
from app.models.record import CONTENT_FIELDS, RecordContentIn, RecordCreate, RecordPublic, RecordUpdate
from app.services import etags, reference
from app.services import records as reads
from app.services.events import Event, emit, now
from app.services.ownership import writing_party
from app.services.rows import insert_rows, update_rows

R, RD, RR = reads.R, reads.RD, reads.RR
BULK_MAX = 1000


def _content(data: RecordContentIn | dict[str, Any]) -> dict[str, Any]:
    """The content fields of a validated body, as JSON-ready values."""
    dumped = data.model_dump(mode="json") if isinstance(data, RecordContentIn) else data
    content = {k: dumped.get(k) for k in CONTENT_FIELDS}
    for key in ("languages", "links", "keywords", "subjects", "gbf_targets", "aichi_targets", "countries"):
        content[key] = content[key] or []
    if key_list := content.get("countries"):
        content["countries"] = [c.upper() for c in key_list]
    return content


def _columns(content: dict[str, Any]) -> dict[str, Any]:
    """Content as head-row column values (dates as date objects)."""
    cols = dict(content)
    pub = cols.get("publication_date")
    if isinstance(pub, str):
        cols["publication_date"] = date.fromisoformat(pub)
    return cols


def _fingerprint(content: dict[str, Any]) -> bytes:
    return orjson.dumps({k: content.get(k) for k in CONTENT_FIELDS}, option=orjson.OPT_SORT_KEYS)


def _head_content(row: Any) -> dict[str, Any]:
    data = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    content = {k: data.get(k) for k in CONTENT_FIELDS}
    published = content.get("publication_date")
    if isinstance(published, date):
        content["publication_date"] = published.isoformat()
    return content


async def _check(session: Any, content: dict[str, Any], loc: tuple[str | int, ...] = ("body",)) -> None:
    await reference.check_terms(await session.connection(), content, loc=loc)


async def _lock_head(session: Any, principal: Principal, record_id: uuid.UUID) -> Any:
    row = (await session.execute(select(*reads.PUBLIC_COLUMNS).where(R.c.id == record_id).with_for_update())).first()
    if row is None or (row.status != "published" and not principal.can_see_unpublished(row.party)):
        raise NotFound(f"no record {record_id}")
    principal.require_party(row.party)
    return row


async def _view(session: Any, principal: Principal, record_id: uuid.UUID) -> dict[str, Any]:
    """The caller's view of a record after a write (working draft when there is one)."""
    conn = await session.connection()
    head = await reads.get_record(conn, principal, record_id)
    if head["revision"] and head.get("draft_status"):
        return await reads.get_working(conn, principal, record_id)
    return head


async def _external_id_free(session: Any, party: str, external_id: str | None, record_id: uuid.UUID | None) -> None:
    if external_id is None:
        return
    stmt = select(R.c.id).where(R.c.party == party, R.c.external_id == external_id)
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is not None and found != record_id:
        raise Conflict(
            f"{party} already has a record with external_id '{external_id}' ({found}); "
            "update it, or use POST /api/v1/records/bulk to upsert",
            errors=[field_error(("body", "external_id"), "already used by another record", "conflict")],
        )


async def create(session: Any, principal: Principal, data: RecordCreate) -> dict[str, Any]:
    """Create a draft record for the caller's Party (or, for the Secretariat, the Party named)."""
    principal.require("records:write")
    party = await writing_party(await session.connection(), principal, data.party)
    content = _content(data)
    await _check(session, content)
    await _external_id_free(session, party, data.external_id, None)
    at = await now(session)
    record_id = uuid.uuid4()
    await session.execute(
        insert(R).values(
            id=record_id,
            party=party,
            status="draft",
            revision=0,
            external_id=data.external_id,
            created_at=at,
            updated_at=at,
            **_columns(content),
        )
    )
    await emit(session, principal, [Event("record.create", "record", str(record_id), party, op="create", public=False)])
    return await _view(session, principal, record_id)


async def update(
    session: Any,
    principal: Principal,
    record_id: uuid.UUID,
    data: RecordCreate | RecordUpdate,
    *,
    partial: bool,
    if_match: str | None = None,
) -> dict[str, Any]:
    """Edit a record (PUT replaces, PATCH merges); a published record gets a working draft instead."""
    principal.require("records:write")
    row = await _lock_head(session, principal, record_id)
    conn = await session.connection()
    current_view = await reads.get_record(conn, principal, record_id)
    if if_match is not None:
        working = await _view(session, principal, record_id)
        if not (
            etags.matches(if_match, etags.etag(RecordPublic, current_view))
            or etags.matches(if_match, etags.etag(RecordPublic, working))
        ):
            etags.check_if_match(if_match, RecordPublic, working)
    body = data.model_dump(exclude_unset=True, mode="json")
    if "party" in body and body["party"] and body["party"].upper() != row.party:
        raise Forbidden(f"a record cannot move from {row.party} to another Party")
    draft = None
    if row.revision:
        draft = (await session.execute(select(RD.c.content).where(RD.c.record_id == record_id))).first()
    base = dict(draft.content) if draft is not None else _head_content(row)
    if partial:
        content = {**base, **{k: v for k, v in body.items() if k in CONTENT_FIELDS}}
        for required in ("title", "type"):
            if required in body and body[required] is None:
                raise Invalid.field(("body", required), f"{required} cannot be removed")
        content = _content(RecordContentIn.model_validate({k: v for k, v in content.items() if v is not None}))
    else:
        content = _content(data)  # type: ignore[arg-type]
    await _check(session, content)
    external_id = body.get("external_id", row.external_id) if partial else body.get("external_id")
    await _external_id_free(session, row.party, external_id, record_id)
    at = await now(session)
    if row.revision:  # published or withdrawn: the public content stays; edit the working draft
        stmt = pg_insert(RD).values(record_id=record_id, status="draft", content=content, created_at=at, updated_at=at)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["record_id"], set_={"content": content, "status": "draft", "updated_at": at}
            )
        )
        if external_id != row.external_id:
            await session.execute(sa_update(R).where(R.c.id == record_id).values(external_id=external_id))
    else:
        await session.execute(
            sa_update(R)
            .where(R.c.id == record_id)
            .values(status="draft", external_id=external_id, updated_at=at, **_columns(content))
        )
    await emit(
        session,
        principal,
        [
            Event(
                "record.update",
                "record",
                str(record_id),
                row.party,
                op="update",
                before_revision=row.revision,
                after_revision=row.revision,
                public=False,
            )
        ],
    )
    return await _view(session, principal, record_id)


async def submit(session: Any, principal: Principal, record_id: uuid.UUID) -> dict[str, Any]:
    """Submit a draft for publication (status pending)."""
    principal.require("records:write")
    row = await _lock_head(session, principal, record_id)
    at = await now(session)
    if row.revision:
        res = await session.execute(
            sa_update(RD)
            .where(RD.c.record_id == record_id, RD.c.status == "draft")
            .values(status="pending", updated_at=at)
        )
        if res.rowcount == 0:
            raise Conflict("there is no draft to submit: edit the record first")
    elif row.status == "draft":
        await session.execute(sa_update(R).where(R.c.id == record_id).values(status="pending", updated_at=at))
    else:
        raise Conflict(f"a {row.status} record cannot be submitted")
    await emit(
        session,
        principal,
        [
            Event(
                "record.submit",
                "record",
                str(record_id),
                row.party,
                op="update",
                before_revision=row.revision,
                after_revision=row.revision,
                public=False,
            )
        ],
    )
    return await _view(session, principal, record_id)


@dataclass
class _Publish:
    record_id: uuid.UUID
    party: str
    before: int
    content: dict[str, Any]
    from_draft: bool
    events: list[Event] = field(default_factory=list)
    inserted: bool = False  # a new record inserted already published: its head row needs no update


async def _apply_publish(session: Any, principal: Principal, items: list[_Publish], at: datetime) -> None:
    """Make `items` public: head content, revision +1, revision snapshot, draft removed. One statement per table."""
    if not items:
        return
    await update_rows(
        session,
        R,
        [{"id": p.record_id, "status": "published", "updated_at": at, "published_at": at, "withdrawn_at": None,
          **_columns(p.content)} for p in items if not p.inserted],
        set_sql={"revision": "t.revision + 1"},
    )  # fmt: skip
    await insert_rows(
        session,
        RR,
        [{"record_id": p.record_id, "revision": p.before + 1, "content": p.content, "published_at": at,
          "published_by": principal.label} for p in items],
    )  # fmt: skip
    drafted = [p.record_id for p in items if p.from_draft]
    if drafted:
        await session.execute(delete(RD).where(RD.c.record_id.in_(drafted)))


def _publish_event(p: _Publish) -> Event:
    return Event(
        "record.publish",
        "record",
        str(p.record_id),
        p.party,
        op="publish",
        before_revision=p.before,
        after_revision=p.before + 1,
        reindex=True,
    )


async def publish(session: Any, principal: Principal, record_id: uuid.UUID) -> dict[str, Any]:
    """Publish the record (or its working draft) as a new revision."""
    principal.require("records:publish")
    row = await _lock_head(session, principal, record_id)
    if row.revision:
        draft = (await session.execute(select(RD.c.content).where(RD.c.record_id == record_id))).first()
        if draft is None:
            if row.status == "withdrawn":  # republish the last revision as a new one
                item = _Publish(record_id, row.party, row.revision, _head_content(row), False)
            else:
                raise Conflict("nothing to publish: the record is published and has no working draft")
        else:
            item = _Publish(record_id, row.party, row.revision, dict(draft.content), True)
    else:
        item = _Publish(record_id, row.party, 0, _head_content(row), False)
    await _apply_publish(session, principal, [item], await now(session))
    await emit(session, principal, [_publish_event(item)])
    return await _view(session, principal, record_id)


async def withdraw(session: Any, principal: Principal, record_id: uuid.UUID) -> dict[str, Any]:
    """Take a published record out of public view, leaving a tombstone."""
    principal.require("records:publish")
    row = await _lock_head(session, principal, record_id)
    if row.status != "published":
        raise Conflict(f"only published records can be withdrawn (this one is {row.status})")
    at = await now(session)
    await session.execute(
        sa_update(R).where(R.c.id == record_id).values(status="withdrawn", withdrawn_at=at, updated_at=at)
    )
    await emit(
        session,
        principal,
        [
            Event(
                "record.withdraw",
                "record",
                str(record_id),
                row.party,
                op="withdraw",
                before_revision=row.revision,
                after_revision=row.revision,
                reindex=True,
            )
        ],
    )
    return await _view(session, principal, record_id)


def _error(exc: AppError | ValidationError, index: int) -> dict[str, Any]:
    if isinstance(exc, ValidationError):
        errs = field_errors(exc.errors(), ("items", index))
        return {"code": "INVALID", "detail": describe(errs, limit=None), "errors": errs}
    return {"code": exc.code, "detail": exc.detail, "errors": exc.errors or None}


@dataclass(slots=True)
class BulkItem:
    """One input item that passed validation: the upsert key and its content."""

    index: int  # position in the batch
    party: str
    external_id: str
    content: dict[str, Any]


@dataclass(slots=True)
class ItemPlan:
    """What one item writes: its result and its rows, one per table it touches (none when unchanged)."""

    index: int
    record_id: uuid.UUID
    status: str  # created | updated | unchanged
    new_head: dict[str, Any] | None = None
    head_update: dict[str, Any] | None = None
    draft_upsert: dict[str, Any] | None = None
    publish: _Publish | None = None
    events: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class BulkPlan:
    """Every item's writes; `apply_bulk` sends each table's rows in one statement."""

    at: datetime
    items: list[ItemPlan]

    def rows(self, name: str) -> list[Any]:
        """The non-empty `name` rows of every item (new_head, head_update, draft_upsert, publish), in input order."""
        return [r for r in (getattr(i, name) for i in self.items) if r is not None]


def _failed(results: list[dict[str, Any]], index: int, exc: AppError | ValidationError) -> None:
    results[index]["error"] = _error(exc, index)


async def parse_bulk(conn: Any, principal: Principal, items: list[Any]) -> tuple[list[dict[str, Any]], list[BulkItem]]:
    """Validate every item on its own (schema, upsert key, Party, terms): the results, with an `error` for each bad
    item, and the good items. Reads reference data only; nothing is locked or written."""
    results: list[dict[str, Any]] = [{"external_id": None, "id": None, "status": "error", "error": None} for _ in items]
    good: list[BulkItem] = []
    seen: set[tuple[str, str]] = set()
    known_parties = await reference.party_codes(conn)
    check_terms = await reference.term_checker(conn)
    for i, raw in enumerate(items):
        ext = raw.get("external_id") if isinstance(raw, dict) else None
        results[i]["external_id"] = ext if isinstance(ext, str) and text_problem(ext) is None else None
        try:
            if not isinstance(raw, dict):
                raise Invalid.field(("items", i), "each item must be a JSON object")
            data = RecordCreate.model_validate(raw)
            if not data.external_id:
                raise Invalid.field(
                    ("items", i, "external_id"), "external_id is required in bulk (it is the upsert key)"
                )
            party = (data.party or principal.party or "").upper()
            if not party:
                raise Invalid.field(("items", i, "party"), "party is required for Secretariat tokens")
            if party not in known_parties:
                raise Invalid.field(("items", i, "party"), f"unknown Party code '{party}'")
            principal.require_party(party)
            if (party, data.external_id) in seen:
                raise Invalid.field(("items", i, "external_id"), "duplicate external_id in this batch")
            seen.add((party, data.external_id))
            content = _content(data)
            check_terms(content, loc=("items", i))
            good.append(BulkItem(i, party, data.external_id, content))
        except (AppError, ValidationError) as exc:
            _failed(results, i, exc)
    return results, good


async def lock_existing(session: Any, items: list[BulkItem]) -> tuple[dict[tuple[str, str], Any], dict[uuid.UUID, Any]]:
    """The head rows the items upsert (locked FOR UPDATE), keyed by (party, external_id), and their working drafts."""
    if not items:
        return {}, {}
    rows = (
        await session.execute(
            select(*reads.PUBLIC_COLUMNS)
            .where(
                R.c.party == any_(bindparam("parties", sorted({i.party for i in items}), type_=ARRAY(Text))),
                R.c.external_id == any_(bindparam("external_ids", [i.external_id for i in items], type_=ARRAY(Text))),
            )
            .with_for_update()
        )
    ).all()
    drafts: dict[uuid.UUID, Any] = {}
    published_ids = [r.id for r in rows if r.revision]
    if published_ids:
        stmt = select(RD.c.record_id, RD.c.content).where(
            RD.c.record_id == any_(bindparam("ids", published_ids, type_=ARRAY(PG_UUID)))
        )
        drafts = {r.record_id: r for r in await session.execute(stmt)}
    return {(r.party, r.external_id): r for r in rows}, drafts


def _plan_item(item: BulkItem, row: Any, draft: Any, *, at: datetime, publish: bool) -> ItemPlan:
    """Create, update (head row or working draft), publish or leave alone: one item's decision."""
    content, party = item.content, item.party
    if row is None:
        rid = uuid.uuid4()
        plan = ItemPlan(
            item.index,
            rid,
            "created",
            events=[Event("record.create", "record", str(rid), party, op="create", public=False)],
        )
        plan.new_head = {
            "id": rid,
            "party": party,
            "status": "published" if publish else "draft",  # published at once: one write, not draft + update
            "revision": 1 if publish else 0,
            "external_id": item.external_id,
            "created_at": at,
            "updated_at": at,
            "published_at": at if publish else None,
            **_columns(content),
        }
        if publish:
            plan.publish = _Publish(rid, party, 0, content, False, inserted=True)
        return plan
    rid = row.id
    fp = _fingerprint(content)
    public_same = row.revision and row.status == "published" and _fingerprint(_head_content(row)) == fp
    if publish:
        if public_same and draft is None:
            return ItemPlan(item.index, rid, "unchanged")
        return ItemPlan(
            item.index, rid, "updated", publish=_Publish(rid, party, row.revision, content, draft is not None)
        )
    working = dict(draft.content) if draft is not None else (None if row.revision else _head_content(row))
    if (working is not None and _fingerprint(working) == fp) or (working is None and public_same):
        return ItemPlan(item.index, rid, "unchanged")
    plan = ItemPlan(
        item.index,
        rid,
        "updated",
        events=[
            Event(
                "record.update",
                "record",
                str(rid),
                party,
                op="update",
                before_revision=row.revision,
                after_revision=row.revision,
                public=False,
            )
        ],
    )
    if row.revision:
        plan.draft_upsert = {
            "record_id": rid,
            "status": "draft",
            "content": content,
            "created_at": at,
            "updated_at": at,
        }
    else:
        plan.head_update = {"id": rid, **_columns(content)}
    return plan


def plan_bulk(
    items: list[BulkItem],
    existing: dict[tuple[str, str], Any],
    drafts: dict[uuid.UUID, Any],
    *,
    at: datetime,
    publish: bool,
) -> BulkPlan:
    """Decide every item against the current rows (no I/O): what it writes and what it reports."""
    plans = []
    for item in items:
        row = existing.get((item.party, item.external_id))
        plans.append(_plan_item(item, row, drafts.get(row.id) if row is not None else None, at=at, publish=publish))
    return BulkPlan(at, plans)


async def apply_bulk(session: Any, principal: Principal, plan: BulkPlan) -> None:
    """Write a plan: one statement per table for all its items, then publications, audit, change log, outbox."""
    at = plan.at
    await insert_rows(session, R, plan.rows("new_head"))
    await update_rows(session, R, [{"status": "draft", "updated_at": at, **u} for u in plan.rows("head_update")])
    if draft_upserts := plan.rows("draft_upsert"):
        stmt = pg_insert(RD)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["record_id"],
                set_={"content": stmt.excluded.content, "status": "draft", "updated_at": stmt.excluded.updated_at},
            ),
            draft_upserts,
        )
    to_publish: list[_Publish] = plan.rows("publish")
    await _apply_publish(session, principal, to_publish, at)
    events = [e for i in plan.items for e in i.events]
    events.extend(_publish_event(p) for p in to_publish)
    await emit(session, principal, events)


async def bulk_upsert(
    session: Any, principal: Principal, items: list[Any], *, publish: bool = False
) -> list[dict[str, Any]]:
    """Upsert up to 1,000 records by (party, external_id); one result per item, in input order.

    parse (validate each item) → plan (decide against the locked current rows) → apply (one statement per
    table). Invalid items are reported and skipped; the valid ones land in the same transaction.
    """
    principal.require("records:write")
    if publish:
        principal.require("records:publish")
    if len(items) > BULK_MAX:
        raise TooLarge(f"a batch holds at most {BULK_MAX} records (got {len(items)}); split it")
    results, good = await parse_bulk(await session.connection(), principal, items)
    if not good:
        return results
    try:
        async with session.begin_nested():
            await _plan_and_apply(session, principal, good, results, publish=publish)
    except DBAPIError as exc:
        if not _refused(exc):
            raise
        # Only the database refused something (e.g. a concurrent batch created one of these external_ids):
        # re-plan and apply item by item, so the refused item alone carries the error.
        for item in good:
            try:
                async with session.begin_nested():
                    await _plan_and_apply(session, principal, [item], results, publish=publish)
            except DBAPIError as item_exc:
                if not _refused(item_exc):
                    raise
                results[item.index].update(id=None, status="error", error=_error(db.as_app_error(item_exc), item.index))
    return results


def _refused(exc: Exception) -> bool:
    """The database rejected the data (a 409 or 422), as opposed to being unavailable or a bug."""
    mapped = db.as_app_error(exc)
    return mapped is not None and mapped.status in (409, 422)


async def _plan_and_apply(
    session: Any, principal: Principal, good: list[BulkItem], results: list[dict[str, Any]], *, publish: bool
) -> None:
    """Lock what the items upsert, plan against it, write, and record each item's outcome."""
    existing, drafts = await lock_existing(session, good)
    plan = plan_bulk(good, existing, drafts, at=await now(session), publish=publish)
    await apply_bulk(session, principal, plan)
    for p in plan.items:
        results[p.index].update(id=p.record_id, status=p.status)
