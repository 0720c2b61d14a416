"""Mirroring: write another instance's public entries here with their own ids, uids and revisions.

Secretariat (admin) only. Entries of `own` Parties are never touched (a national node mirroring the central
Clearing-House keeps authority over its own Party's records), reference data already present is kept, an
entry identical to what is here changes nothing, and every write leaves the usual audit, change-log and
search-outbox rows (action `<kind>.mirror`).
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app import registry
from app.auth.principal import Principal
from app.errors import Forbidden
from app.models.record import CONTENT_FIELDS
from app.services import cooperation, decisions, records, snapshot
from app.services.events import Event, emit
from app.services.reference import PARTY, TERM, reset_cache

R, RR = records.R, records.RR
Items = list[dict[str, Any]]


def require_mirror(principal: Principal) -> None:
    """Only the Secretariat (or the CLI acting as it) writes entries with given ids and uids."""
    if not (principal.is_secretariat and principal.has("admin")):
        raise Forbidden("mirroring writes entries with their source's ids: Secretariat admin only")


def _norm(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, default=str))


def _ts(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _day(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _serial(uid: str) -> int:
    return int(uid.split("-")[3])


_PARSERS: dict[Any, Any] = {datetime: _ts, date: _day, uuid.UUID: _uuid}


def _parser(column: Any) -> Any:
    try:
        return _PARSERS.get(column.type.python_type)
    except NotImplementedError:  # types without a Python equivalent (tsvector, ...) are never copied
        return None


def _row(table: Any, item: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The row of `table` an entry's JSON gives: timestamps, dates and ids parsed back by column type."""
    row = {}
    for name in names:
        value = item.get(name)
        parse = _parser(table.c[name]) if isinstance(value, str) else None
        row[name] = parse(value) if parse is not None else value
    return row


def _owner(kind: str, item: dict[str, Any]) -> str | None:
    """The Party owning an entry (None for reference data, revisions, deletions and unowned kinds)."""
    if kind not in snapshot.ENTITY_KINDS:
        return None
    return item.get(registry.get(kind).party_column)


async def apply(session: Any, principal: Principal, kind: str, items: list[dict[str, Any]], *,
                own: frozenset[str] = frozenset()) -> Counter[str]:  # fmt: skip
    """Write one batch of `kind` entries as their source has them; counts of created/updated/unchanged/..."""
    require_mirror(principal)
    handler = _HANDLERS.get(kind, _plain)
    if handler is _plain and kind not in snapshot.ENTITY_KINDS:
        raise ValueError(f"cannot mirror kind {kind!r}")
    counts: Counter[str] = Counter()
    events: list[Event] = []
    keep = [i for i in items if _owner(kind, i) not in own]
    counts["skipped"] += len(items) - len(keep)
    if kind == "deletion" and keep and own:
        keep = await _not_own(session, keep, own, counts)
    if keep:
        await handler(session, kind, keep, counts, events)
    await emit(session, principal, events)
    return counts


async def _not_own(session: Any, items: list[dict[str, Any]], own: frozenset[str], counts: Counter[str]
                   ) -> list[dict[str, Any]]:  # fmt: skip
    """Deletions of entries that belong to an own Party are refused."""
    out = []
    for item in items:
        column = snapshot.owner(item["kind"]) if item["kind"] in snapshot.DELETABLE else None
        if column is not None:
            party = (await session.execute(select(column).where(column.table.c.id == _uuid(item["id"])))).scalar()
            if party in own:
                counts["skipped"] += 1
                continue
        out.append(item)
    return out


async def _parties(session: Any, kind: str, items: Items, counts: Counter[str], events: list[Event]) -> None:
    stmt = pg_insert(PARTY).on_conflict_do_nothing(index_elements=["code"]).returning(PARTY.c.code)
    added = (await session.execute(stmt, [{"code": i["code"], "name": i["name"], "is_party": i["is_party"]}
                                          for i in items])).all()  # fmt: skip
    counts["created"] += len(added)
    counts["unchanged"] += len(items) - len(added)
    if added:
        reset_cache()


async def _terms(session: Any, kind: str, items: Items, counts: Counter[str], events: list[Event]) -> None:
    cols = ("vocabulary", "code", "position", "title", "description", "extra")
    stmt = pg_insert(TERM).on_conflict_do_nothing(index_elements=["vocabulary", "code"]).returning(TERM.c.code)
    added = (await session.execute(stmt, [{c: i.get(c) for c in cols} for i in items])).all()
    counts["created"] += len(added)
    counts["unchanged"] += len(items) - len(added)
    if added:
        reset_cache()


async def _existing(session: Any, columns: Any, table: Any, ids: list[uuid.UUID], to_public: Any) -> dict[Any, Any]:
    rows = await session.execute(select(*columns).where(table.c.id.in_(ids)))
    return {r.id: to_public(r) for r in rows}


async def _records(session: Any, kind: str, items: Items, counts: Counter[str], events: list[Event]) -> None:
    ids = [_uuid(i["id"]) for i in items]
    rows = {r.id: r for r in await session.execute(select(*records.PUBLIC_COLUMNS).where(R.c.id.in_(ids)))}
    # (party, external_id) and (party, serial) held here by other records: those items cannot land
    externals = {i.get("external_id") for i in items if i.get("external_id")}
    serials = {_serial(i["uid"]) for i in items if i.get("uid")}
    ext_rows = await session.execute(select(R.c.party, R.c.external_id)
                                     .where(R.c.external_id.in_(externals), R.c.id.notin_(ids)))  # fmt: skip
    taken_ext = {(r.party, r.external_id) for r in ext_rows}
    serial_rows = await session.execute(
        select(R.c.party, R.c.serial).where(R.c.serial.in_(serials), R.c.id.notin_(ids))
    )
    taken_serial = {(r.party, r.serial) for r in serial_rows}
    heads: list[dict[str, Any]] = []
    revisions: list[dict[str, Any]] = []
    for item in items:
        rid = _uuid(item["id"])
        row = rows.get(rid)
        if not item.get("uid") or (item["party"], _serial(item["uid"])) in taken_serial or \
                (item["party"], item.get("external_id")) in taken_ext:  # fmt: skip
            counts["conflict"] += 1
            continue
        serial = _serial(item["uid"])
        if item["status"] == "withdrawn":
            if row is not None and row.status == "withdrawn" and row.revision == item["revision"]:
                counts["unchanged"] += 1
                continue
            base = dict(row._mapping) if row is not None else {
                "title": {}, "summary": None, "body": None, "languages": [], "links": [], "keywords": [],
                "subjects": [], "gbf_targets": [], "aichi_targets": [], "countries": [], "publication_date": None,
                "external_id": None, "created_at": _ts(item["updated_at"]), "published_at": None}  # fmt: skip
            base.pop("serial", None)
            heads.append({**base, "id": rid, "serial": serial, "party": item["party"], "type": item["type"],
                          "status": "withdrawn", "revision": item["revision"],
                          "withdrawn_at": _ts(item["withdrawn_at"]),
                          "updated_at": _ts(item["updated_at"])})  # fmt: skip
            events.append(Event("record.mirror", "record", str(rid), item["party"], op="withdraw",
                                before_revision=row.revision if row is not None else None,
                                after_revision=item["revision"], reindex=True))  # fmt: skip
            counts["withdrawn"] += 1
            continue
        if row is not None and _norm(records.to_public(row)) == _norm({**records.to_public(row), **item}):
            counts["unchanged"] += 1
            continue
        values = {k: item.get(k) for k in CONTENT_FIELDS}
        values["publication_date"] = _day(values["publication_date"])
        for key in ("languages", "links", "keywords", "subjects", "gbf_targets", "aichi_targets", "countries"):
            values[key] = values[key] or []
        heads.append({**values, "id": rid, "serial": serial, "party": item["party"], "status": "published",
                      "revision": item["revision"], "external_id": item.get("external_id"),
                      "created_at": _ts(item["created_at"]), "updated_at": _ts(item["updated_at"]),
                      "published_at": _ts(item["published_at"]), "withdrawn_at": None})  # fmt: skip
        content = {k: item.get(k) for k in CONTENT_FIELDS}
        revisions.append({"record_id": rid, "revision": item["revision"], "content": content,
                          "published_at": _ts(item["published_at"]), "published_by": "mirror"})  # fmt: skip
        op = "publish" if row is None or row.revision != item["revision"] or row.status != "published" else "update"
        events.append(Event("record.mirror", "record", str(rid), item["party"], op=op,
                            before_revision=row.revision if row is not None else None,
                            after_revision=item["revision"], reindex=True))  # fmt: skip
        counts["updated" if row is not None else "created"] += 1
    if heads:
        stmt = pg_insert(R)
        columns = [c for c in heads[0] if c != "id"]
        upsert = stmt.on_conflict_do_update(index_elements=["id"], set_={c: stmt.excluded[c] for c in columns})
        await session.execute(upsert, heads)
    if revisions:
        stmt = pg_insert(RR)
        upsert = stmt.on_conflict_do_update(index_elements=["record_id", "revision"],
                                            set_={"content": stmt.excluded.content,
                                                  "published_at": stmt.excluded.published_at})  # fmt: skip
        await session.execute(upsert, revisions)
    if heads:  # new serials here must not collide with mirrored ones
        await session.execute(text("SELECT setval('record_serial_seq', GREATEST((SELECT max(serial) FROM records), "
                                   "(SELECT last_value FROM record_serial_seq)))"))  # fmt: skip


async def _revisions(session: Any, kind: str, items: Items, counts: Counter[str], events: list[Event]) -> None:
    ids = {_uuid(i["record_id"]) for i in items}
    here = {r.id for r in await session.execute(select(R.c.id).where(R.c.id.in_(ids)))}
    rows = [{"record_id": _uuid(i["record_id"]), "revision": i["revision"], "content": i["content"],
             "published_at": _ts(i["published_at"]), "published_by": "mirror"}
            for i in items if _uuid(i["record_id"]) in here]  # fmt: skip
    counts["skipped"] += len(items) - len(rows)
    if rows:
        stmt = pg_insert(RR).on_conflict_do_nothing(index_elements=["record_id", "revision"]).returning(RR.c.revision)
        added = (await session.execute(stmt, rows)).all()
        counts["created"] += len(added)
        counts["unchanged"] += len(rows) - len(added)


async def _upsert_plain(session: Any, kind: str, items: list[dict[str, Any]], counts: Counter[str],
                        events: list[Event], same_children: Any = None) -> list[dict[str, Any]]:  # fmt: skip
    """Upsert rows of a kind without life cycle (its public columns, through its service's column list); returns
    the items that changed (their children follow)."""
    entity = registry.get(kind)
    service = entity.service_module()
    table, columns = entity.table, service.PUBLIC_COLUMNS
    ids = [_uuid(i["id"]) for i in items]
    existing = await _existing(session, columns, table, ids, service.to_public)
    names = [c.name for c in columns]
    changed: list[dict[str, Any]] = []
    for item in items:
        current = existing.get(_uuid(item["id"]))
        if current is not None and (same_children is None or same_children(item)) and \
                _norm(current) == _norm({**current, **{k: item.get(k) for k in names}}):  # fmt: skip
            counts["unchanged"] += 1
            continue
        changed.append(item)
        counts["updated" if current is not None else "created"] += 1
        events.append(Event(f"{kind}.mirror", kind, str(item["id"]), item.get(entity.party_column),
                            op="update" if current is not None else "create", reindex=True))  # fmt: skip
    if changed:
        stmt = pg_insert(table)
        await session.execute(stmt.on_conflict_do_update(
            index_elements=["id"], set_={n: stmt.excluded[n] for n in names if n != "id"}),
            [_row(table, item, names) for item in changed])  # fmt: skip
    return changed


async def _plain(session: Any, kind: str, items: Items, counts: Counter[str], events: list[Event]) -> None:
    """Kinds with no life cycle and no parts (nodes, opportunities, ...): their rows as the source has them."""
    await _upsert_plain(session, kind, items, counts, events)


async def _decisions(session: Any, kind: str, items: Items, counts: Counter[str], events: list[Event]) -> None:
    D, DP = decisions.D, decisions.DP
    ids = [_uuid(i["id"]) for i in items]
    paragraphs = dict(zip(ids, await decisions.paragraphs_for_decisions(session, ids), strict=True))
    taken = {r.code for r in await session.execute(select(D.c.code).where(
        D.c.code.in_([i["code"] for i in items]), D.c.id.notin_(ids)))}  # fmt: skip
    ok = [i for i in items if i["code"] not in taken]
    counts["conflict"] += len(items) - len(ok)
    changed = await _upsert_plain(
        session,
        kind,
        ok,
        counts,
        events,
        same_children=lambda i: _norm(paragraphs.get(_uuid(i["id"])) or []) == _norm(i.get("paragraphs") or []),
    )
    if changed:
        await session.execute(delete(DP).where(DP.c.decision_id.in_([_uuid(i["id"]) for i in changed])))
        rows = [{"decision_id": _uuid(i["id"]), "position": n, **{k: p.get(k) for k in
                 ("number", "section", "type", "text", "actors", "status")}}
                for i in changed for n, p in enumerate(i.get("paragraphs") or [], start=1)]  # fmt: skip
        if rows:
            await session.execute(pg_insert(DP), rows)


async def _requests(session: Any, kind: str, items: Items, counts: Counter[str], events: list[Event]) -> None:
    CO = cooperation.CO
    ids = [_uuid(i["id"]) for i in items]
    offers = dict(zip(ids, await cooperation.offers_for_requests(session, ids), strict=True))
    changed = await _upsert_plain(
        session,
        kind,
        items,
        counts,
        events,
        same_children=lambda i: _norm(offers.get(_uuid(i["id"])) or []) == _norm(i.get("offers") or []),
    )
    if changed:
        await session.execute(delete(CO).where(CO.c.request_id.in_([_uuid(i["id"]) for i in changed])))
        rows = []
        for item in changed:
            for o in item.get("offers") or []:
                row = _row(CO, o, [c.name for c in cooperation.OFFER_COLUMNS])
                row["request_id"] = _uuid(item["id"])
                rows.append(row)
        if rows:
            await session.execute(pg_insert(CO), rows)


async def _deletions(session: Any, kind: str, items: Items, counts: Counter[str], events: list[Event]) -> None:
    for item in items:
        table = snapshot.DELETABLE.get(item["kind"])
        if table is None:
            counts["skipped"] += 1
            continue
        party_col = snapshot.owner(item["kind"])
        stmt = delete(table).where(table.c.id == _uuid(item["id"]))
        gone = (await session.execute(stmt.returning(party_col if party_col is not None else table.c.id))).first()
        if gone is None:
            counts["unchanged"] += 1
            continue
        counts["deleted"] += 1
        party = gone[0] if party_col is not None else None
        events.append(Event(f"{item['kind']}.mirror", item["kind"], str(item["id"]), party, op="delete", reindex=True))


# Kinds with rules of their own; every other entity kind of snapshot.ENTITY_KINDS is `_plain`.
_HANDLERS = {
    "party": _parties, "vocabulary-term": _terms, "record": _records, "record-revision": _revisions,
    "decision": _decisions, "cooperation-request": _requests, "deletion": _deletions,
}  # fmt: skip
