"""Record queries and mutations: thin adapters over services.records and services.record_writes."""

from __future__ import annotations

import uuid
from typing import Any

from app import db
from app.errors import BadRequest
from app.graphql.context import Info
from app.graphql.errors import validated, with_paths
from app.graphql.inputs import data_of
from app.graphql.limits import DEFAULT_FIRST
from app.graphql.types.common import Connection, connection, list_connection
from app.graphql.types.records import (
    BulkItemResult,
    Record,
    RecordFilter,
    RecordInput,
    RecordPatch,
    RecordRevision,
    RecordSort,
)
from app.models.record import RecordCreate, RecordUpdate
from app.services import paging, record_writes
from app.services import records as records_service

REVISION_KEY = paging.SortKey("-revision", (records_service.RR.c.revision,), (int,), True)  # as list_revisions


async def record(info: Info, id: uuid.UUID | None = None, uid: str | None = None) -> Record:
    """One record by `id` or by public `uid` (with a revision suffix: that published revision)."""
    if (id is None) == (uid is None):
        raise BadRequest("give exactly one of id or uid")
    async with info.context.read() as conn:
        if id is not None:
            return await records_service.get_record(conn, info.context.principal, id)  # type: ignore[return-value]
        return await records_service.get_by_uid(conn, info.context.principal, uid or "")  # type: ignore[return-value]


async def records(
    info: Info,
    filter: RecordFilter | None = None,
    sort: RecordSort | None = None,
    first: int = DEFAULT_FIRST,
    after: str | None = None,
) -> Connection[Record]:
    """Records visible to the caller (anonymous: published only), newest change first by default."""
    return await list_connection(
        info, records_service.list_records, records_service.LISTING, filter=filter, sort=sort, first=first, after=after
    )


async def record_draft(info: Info, id: uuid.UUID) -> Record:
    """The owner's working copy (draft over a published record, or the unpublished record)."""
    async with info.context.read() as conn:
        return await records_service.get_working(conn, info.context.principal, id)  # type: ignore[return-value]


async def record_revisions(
    info: Info, id: uuid.UUID, first: int = DEFAULT_FIRST, after: str | None = None
) -> Connection[RecordRevision]:
    """Every published revision of a record, newest first."""
    async with info.context.read() as conn:
        page = await records_service.list_revisions(conn, info.context.principal, id, cursor=after, limit=first)
    return connection(page, REVISION_KEY, after=after)


# --- mutations: each one transaction, the same service calls as REST ---------------------------------------


async def create_record(info: Info, input: RecordInput) -> Record:
    """A new draft for the token's Party (scope `records:write`)."""
    data = validated(RecordCreate, data_of(input))
    async with db.transaction() as session:
        return await record_writes.create(session, info.context.principal, data)  # type: ignore[return-value]


async def update_record(info: Info, id: uuid.UUID, input: RecordPatch, if_match: str | None = None) -> Record:
    """Change the fields sent (PATCH); on a published record this edits its working draft."""
    data = validated(RecordUpdate, data_of(input))
    async with db.transaction() as session:
        return await record_writes.update(session, info.context.principal, id, data, partial=True, if_match=if_match)  # type: ignore[return-value]


async def replace_record(info: Info, id: uuid.UUID, input: RecordInput, if_match: str | None = None) -> Record:
    """Replace the content (PUT); on a published record this edits its working draft."""
    data = validated(RecordCreate, data_of(input))
    async with db.transaction() as session:
        return await record_writes.update(session, info.context.principal, id, data, partial=False, if_match=if_match)  # type: ignore[return-value]


async def submit_record(info: Info, id: uuid.UUID) -> Record:
    """draft → pending (scope `records:write`)."""
    async with db.transaction() as session:
        return await record_writes.submit(session, info.context.principal, id)  # type: ignore[return-value]


async def publish_record(info: Info, id: uuid.UUID) -> Record:
    """Publish the record or its working draft as a new revision (scope `records:publish`)."""
    async with db.transaction() as session:
        return await record_writes.publish(session, info.context.principal, id)  # type: ignore[return-value]


async def withdraw_record(info: Info, id: uuid.UUID) -> Record:
    """Take a published record out of public view; a tombstone remains (scope `records:publish`)."""
    async with db.transaction() as session:
        return await record_writes.withdraw(session, info.context.principal, id)  # type: ignore[return-value]


async def bulk_upsert_records(info: Info, items: list[RecordInput], publish: bool = False) -> list[BulkItemResult]:
    """Upsert up to 1,000 records by `externalId`; one result per item in input order."""
    raw: list[Any] = [data_of(i) for i in items]
    async with db.transaction() as session:
        results = await record_writes.bulk_upsert(session, info.context.principal, raw, publish=publish)
    return [BulkItemResult(**{**r, "error": with_paths(r["error"])}) for r in results]
