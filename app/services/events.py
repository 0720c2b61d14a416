"""What every write leaves behind, in the writer's transaction: an audit event, a change-log entry
(harvesters' feed) and, when public content changed, a search-outbox row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text

from app.auth.principal import Principal
from app.models import AuditEvent, Change, OutboxEntry
from app.services.rows import insert_rows

AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
CHANGES = Change.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxEntry.__table__  # type: ignore[attr-defined]

# Serialises change-log appends until commit, so `seq` order is commit order (a harvester that read up
# to seq N never later finds a smaller seq appear).
CHANGE_LOG_LOCK = 0x43484D01
OUTBOX_CHANNEL = "chm_outbox"
# NOTIFY on every change-log append, payload the newest seq (delivered at commit): the webhook worker, response
# caches and anything else that follows the change log listen here. The one notification path for changes.
CHANGES_CHANNEL = "chm_changes"
# Set in `session.info` when this transaction appended to the change log: the response caches of the writer's
# own process clear at its commit (app/cache.py), before the NOTIFY comes back.
CHANGED_INFO_KEY = "chm_changed"


@dataclass(frozen=True, slots=True)
class Event:
    """One successful write."""

    action: str  # e.g. record.create, record.publish, node.update, token.revoke
    kind: str  # record | node | decision | cooperation-request | offer | token
    entity_id: str
    party: str | None
    op: str | None = None  # change-log op: create | update | publish | withdraw | delete; None = audit only
    before_revision: int | None = None
    after_revision: int | None = None
    public: bool = True  # the change is visible to anonymous readers (change feed filters on it)
    reindex: bool = False  # what the public sees changed: sync the search index
    detail: dict[str, Any] | None = None


def of_row(kind: str, op: str, row: dict[str, Any], *, party: str | None, action: str | None = None,
           reindex: bool = True, detail: dict[str, Any] | None = None) -> Event:  # fmt: skip
    """The event of a public write to one entity row: action `{kind}.{op}` unless named, the row's id."""
    return Event(action=action or f"{kind}.{op}", kind=kind, entity_id=str(row["id"]), party=party, op=op,
                 reindex=reindex, detail=detail)  # fmt: skip


async def emit(session: Any, principal: Principal, events: list[Event]) -> None:
    """Append audit, change-log and outbox rows for `events` in the current transaction."""
    if not events:
        return
    await insert_rows(
        session,
        AUDIT,
        [{"token_id": principal.token_id, "principal": principal.label, "action": e.action, "kind": e.kind,
          "entity_id": e.entity_id, "party": e.party, "before_revision": e.before_revision,
          "after_revision": e.after_revision, "detail": e.detail} for e in events],
    )  # fmt: skip
    changes = [e for e in events if e.op]
    if changes:
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHANGE_LOG_LOCK})
        await insert_rows(
            session,
            CHANGES,
            [{"kind": e.kind, "entity_id": e.entity_id, "party": e.party, "op": e.op,
              "revision": e.after_revision, "public": e.public} for e in changes],
        )  # fmt: skip
        # Under CHANGE_LOG_LOCK no one else appends, so max(seq) is this transaction's last entry (an index lookup).
        await session.execute(
            text("SELECT pg_notify(:c, (SELECT max(seq) FROM changes)::text)"), {"c": CHANGES_CHANNEL}
        )
        session.info[CHANGED_INFO_KEY] = True
    outbox = [e for e in events if e.reindex]
    if outbox:
        await insert_rows(session, OUTBOX, [{"kind": e.kind, "entity_id": e.entity_id} for e in outbox])
        await session.execute(text("SELECT pg_notify(:c, '')"), {"c": OUTBOX_CHANNEL})


async def now(session: Any) -> Any:
    """The transaction's clock (clock_timestamp, so successive writes in one transaction still order)."""
    return (await session.execute(select(func.clock_timestamp()))).scalar_one()
