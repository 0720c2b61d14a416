"""Keyset paging: opaque cursors over a sort key that always ends with the primary key."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from sqlalchemy import Column, ColumnElement, Select, Table, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from app import db
from app.errors import BadRequest
from app.models.common import check_date, check_datetime, check_int, check_text
from app.services import reference, signing

if TYPE_CHECKING:
    from app.auth.principal import Principal

MAX_LIMIT = 200
STATEMENT_CACHE_SIZE = 512  # per Listing
DEFAULT_LIMIT = 50
CURSOR_PURPOSE = "keyset-cursor"


@dataclass(frozen=True)
class SortKey:
    """A named sort: columns in order (all in one direction so a row comparison uses the index)."""

    name: str
    columns: tuple[Any, ...]
    types: tuple[type, ...]
    descending: bool = False
    nullable: bool = False  # the leading column may be NULL: such rows are left out of this sort...
    null_value: Any = None  # ...unless NULL sorts as this value (e.g. date.min: last in a descending sort)

    def exprs(self) -> tuple[Any, ...]:
        """The columns as sorted (NULL replaced by `null_value` where one is given)."""
        if self.null_value is None:
            return self.columns
        return (func.coalesce(self.columns[0], self.null_value), *self.columns[1:])


def _bad_cursor(reason: str) -> BadRequest:
    return BadRequest.param("cursor", reason, f"invalid cursor: {reason}; use the next_cursor of a previous page")


def _dump(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _load(value: Any, kind: type) -> Any:
    """A cursor value re-validated as its column's type and range (a signed cursor is still only as safe as
    the rules it was checked against when it was made)."""
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError("wrong value type")
    if kind is datetime and isinstance(value, str):
        return check_datetime(datetime.fromisoformat(value))
    if kind is date and isinstance(value, str):
        return check_date(date.fromisoformat(value))
    if kind is uuid.UUID and isinstance(value, str):
        return uuid.UUID(value)
    if kind is int and isinstance(value, int):
        return check_int(value)
    if kind is str and isinstance(value, str):
        return check_text(value)
    raise ValueError("wrong value type")


def resolve_sort(sorts: dict[str, SortKey], sort: str | None, default: str) -> SortKey:
    """The SortKey a `sort` parameter names (the default when absent), or a 400 listing the choices."""
    key = sorts.get(sort or default)
    if key is None:
        raise BadRequest.choice("sort", sort, sorts)
    return key


async def fetch(
    conn: Any, stmt: Select[Any], sort: SortKey, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """Run `stmt` as one keyset page: rows and the cursor of the next page (sort columns read by name)."""
    rows = (await conn.execute(apply(stmt, sort, cursor, limit))).all()
    return page(rows, sort, limit, lambda r: tuple(getattr(r, c.name) for c in sort.columns))


def encode_cursor(sort: SortKey, values: tuple[Any, ...]) -> str:
    """An opaque, URL-safe, signed cursor for the row after which the next page starts."""
    return signing.dumps([sort.name, *(_dump(v) for v in values)], purpose=CURSOR_PURPOSE)


def decode_cursor(sort: SortKey, cursor: str) -> tuple[Any, ...]:
    """The values of a cursor made by `encode_cursor` for the same sort, re-validated; else BadRequest."""
    if len(cursor) > 1024:
        raise _bad_cursor("too long")
    try:
        data = signing.loads(cursor, purpose=CURSOR_PURPOSE)
    except ValueError:
        raise _bad_cursor("not a cursor issued by this API") from None
    if not isinstance(data, list) or len(data) != len(sort.columns) + 1:
        raise _bad_cursor("not a cursor issued by this API")
    if data[0] != sort.name:
        raise _bad_cursor(f"issued for sort '{data[0]}', not '{sort.name}'")
    try:
        return tuple(_load(v, t) for v, t in zip(data[1:], sort.types, strict=True))
    except (ValueError, TypeError):
        raise _bad_cursor("not a cursor issued by this API") from None


def after(sort: SortKey, values: tuple[Any, ...]) -> ColumnElement[bool]:
    """The WHERE clause for rows after `values` in `sort` order: one row comparison, which an index on the
    sort columns answers with a range scan."""
    if any(v is None for v in values):
        raise _bad_cursor("not a cursor issued by this API")
    left, right = tuple_(*sort.exprs()), tuple_(*values)
    return left < right if sort.descending else left > right


def apply(stmt: Select[Any], sort: SortKey, cursor: str | None, limit: int) -> Select[Any]:
    """Order `stmt` by `sort`, start after `cursor`, fetch one extra row to know if a page follows.

    No NULLS FIRST/LAST: a plain ASC/DESC lets PostgreSQL walk the (status, col, id) index either way.
    A sort on a nullable column leaves out the rows where it is NULL (e.g. never-published drafts when
    sorting by publication time).
    """
    if sort.nullable and sort.null_value is None:
        stmt = stmt.where(sort.columns[0].isnot(None))
    if cursor:
        stmt = stmt.where(after(sort, decode_cursor(sort, cursor)))
    order = [c.desc() if sort.descending else c.asc() for c in sort.exprs()]
    return stmt.order_by(*order).limit(limit + 1)


def page(rows: list[Any], sort: SortKey, limit: int, key: Any) -> tuple[list[Any], str | None]:
    """Cut the extra row and build `next_cursor` from the last row kept (`key(row)` gives its sort values)."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    values = tuple(key(rows[-1]))
    if sort.null_value is not None and values[0] is None:
        values = (sort.null_value, *values[1:])
    return rows, encode_cursor(sort, values)


def check_limit(limit: int) -> int:
    """Validate a page size."""
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest.param(
            "limit", f"must be between 1 and {MAX_LIMIT}", f"limit must be between 1 and {MAX_LIMIT}"
        )
    return limit


def parse_datetime(value: str | None, name: str) -> datetime | None:
    """Parse an ISO date or datetime query parameter (naive means UTC)."""
    if value is None:
        return None
    try:
        # An unencoded "+02:00" in a query string arrives as " 02:00".
        text = value.strip().replace("Z", "+00:00")
        if len(text) > 19 and text[-6] == " ":
            text = text[:-6] + "+" + text[-5:]
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        except ValueError:
            raise BadRequest.param(
                name,
                "expected an ISO 8601 date or date-time",
                f"{name} is not an ISO 8601 date or date-time: '{value}'",
            ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return check_datetime(parsed)
    except ValueError as exc:
        raise BadRequest.param(name, str(exc), f"{name}: {exc}") from None


@dataclass(frozen=True)
class Filter:
    """Base of the documented list filters. `parse` builds one from raw parameters (REST query parameters or a
    GraphQL filter input with the same field names), so both doors parse dates the same way."""

    updated_since: datetime | None = None

    @classmethod
    def parse(cls, source: object | None = None, **raw: Any) -> Self:
        """From `source`'s attributes (missing ones are unset) and/or keywords; `*_since` strings are ISO dates."""
        names = [f.name for f in fields(cls)]
        values = {n: getattr(source, n) for n in names if source is not None and hasattr(source, n)} | raw
        values = {k: v.value if isinstance(v, enum.Enum) else v for k, v in values.items()}  # GraphQL enums
        return cls(
            **{k: parse_datetime(v, k) if k.endswith("_since") and isinstance(v, str) else v for k, v in values.items()}
        )


F = TypeVar("F", bound=Filter)
Page = tuple[list[dict[str, Any]], str | None]
TERM_FILTERS = {"subject": "subjects", "gbf_target": "gbf_targets"}  # filter -> array column (with narrower terms)


def as_dict(row: Any) -> dict[str, Any]:
    """A row (SQLAlchemy's, or an asyncpg record from `db.cursor_batches`) as a plain dict (the public shape when
    the selected columns are the *Public schema's)."""
    return dict(db.row_mapping(row))


@dataclass(frozen=True)
class Listing(Generic[F]):
    """How one entity kind is listed, written once: its columns, sorts and filter rules. REST and GraphQL
    lists, the Party loaders and the dumps all read it.

    Filter fields map to conditions by name: `updated_since` → `updated_at >=`; `subject` / `gbf_target` →
    overlap of the array column with the term and its narrower terms; `party` → the `party` column (its
    name given by `party`); any other → equality on the column of that name. `choices` lists the allowed
    values of a field (a 400 names them); `visible` adds the caller's visibility conditions."""

    table: Table
    columns: tuple[Column[Any], ...]
    sorts: dict[str, SortKey]
    default_sort: str
    filter: type[F]
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    upper: tuple[str, ...] = ()  # fields matched in upper case (`body=cop` is COP)
    party: str = "party"  # the column the `party` filter matches
    visible: Callable[[Principal, F], list[ColumnElement[bool]]] | None = None
    to_public: Callable[[Any], dict[str, Any]] = as_dict
    _conds: tuple[tuple[str, Callable[[Any], ColumnElement[bool]]], ...] = field(init=False, repr=False)
    # Built statements of anonymous pages, by (filters, sort, cursor, limit): building a SQL expression tree
    # costs more than the rest of a page's Python work, and a few URLs are most of the traffic.
    _statements: OrderedDict[Any, Select[Any]] = field(default_factory=OrderedDict, init=False, repr=False,
                                                       compare=False, hash=False)  # fmt: skip

    def __post_init__(self) -> None:
        object.__setattr__(self, "_conds", tuple((f.name, self._condition(f.name)) for f in fields(self.filter)))

    def _condition(self, name: str) -> Callable[[Any], ColumnElement[bool]]:
        c = self.table.c
        if name == "updated_since":
            return lambda v: c.updated_at >= v
        if name in TERM_FILTERS:
            column = c[TERM_FILTERS[name]]
            return lambda v: column.overlap(reference.with_narrower(name, v))
        column = c[self.party if name == "party" else name]
        return lambda v: column == v

    def sort_key(self, sort: str | None) -> SortKey:
        """Resolve a `sort` parameter (the default when absent), or a 400 listing the choices."""
        return resolve_sort(self.sorts, sort, self.default_sort)

    async def validate(self, conn: AsyncConnection, f: F) -> F:
        """Normalise the filters (Party codes, term aliases, upper-case fields) and reject unknown values with a
        400 that names them."""
        changes: dict[str, Any] = {}
        for name in self.upper:
            value = getattr(f, name)
            if value is not None and value != value.upper():
                changes[name] = value.upper()
        for name, allowed in self.choices.items():
            value = changes.get(name, getattr(f, name))
            if value is not None and value not in allowed:
                raise BadRequest.choice(name, getattr(f, name), allowed)
        if getattr(f, "party", None) is not None:
            changes["party"] = await reference.check_party_filter(conn, f.party)  # type: ignore[attr-defined]
        for name in TERM_FILTERS:
            if getattr(f, name, None) is not None:
                changes[name] = await reference.check_term_filter(conn, name, getattr(f, name))
        return dataclasses.replace(f, **changes) if changes else f

    def where(self, principal: Principal, f: F) -> list[ColumnElement[bool]]:
        """The WHERE conditions of a validated filter, visibility first."""
        conds = self.visible(principal, f) if self.visible is not None else []
        for name, condition in self._conds:
            value = getattr(f, name)
            if value is not None:
                conds.append(condition(value))
        return conds

    async def page(
        self,
        conn: AsyncConnection,
        principal: Principal,
        *,
        filters: F,
        sort: str | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page:
        """A keyset page of what the caller may see: (items in the public shape, next_cursor)."""
        check_limit(limit)
        key = self.sort_key(sort)
        filters = await self.validate(conn, filters)
        rows = (await conn.execute(self.statement(principal, filters, key, cursor, limit))).all()
        rows, next_cursor = page(rows, key, limit, lambda r: tuple(getattr(r, c.name) for c in key.columns))
        to_public = self.to_public
        return [to_public(r) for r in rows], next_cursor

    def statement(self, principal: Principal, f: F, sort: SortKey, cursor: str | None, limit: int) -> Select[Any]:
        """The page's SELECT (one extra row); an anonymous caller's is built once per distinct request. Term
        filters are left out of that cache: their narrower terms come from the vocabularies."""
        cacheable = principal.is_anonymous and all(getattr(f, n, None) is None for n in TERM_FILTERS)
        ck = (f, sort.name, cursor, limit)
        if cacheable:
            stmt = self._statements.get(ck)
            if stmt is not None:
                self._statements.move_to_end(ck)
                return stmt
        stmt = apply(select(*self.columns).where(*self.where(principal, f)), sort, cursor, limit)
        if cacheable:
            self._statements[ck] = stmt
            if len(self._statements) > STATEMENT_CACHE_SIZE:
                self._statements.popitem(last=False)
        return stmt

    async def party_pages(
        self, conn: AsyncConnection, principal: Principal, parties: list[str], *, limit: int
    ) -> list[Page]:
        """The first page (default sort) of each Party's rows the caller may see, one page per given code, in
        one query; for DataLoaders (a Party's nested list)."""
        where = self.visible(principal, self.filter()) if self.visible is not None else []
        group = self.table.c[self.party]
        pages = await first_pages(conn, self.columns, group, parties, self.sort_key(None), limit, *where)
        to_public = self.to_public
        return [([to_public(r) for r in pages[p][0]], pages[p][1]) if p in pages else ([], None) for p in parties]


async def first_pages(
    conn: AsyncConnection,
    columns: tuple[Column[Any], ...],
    group: Column[Any],
    keys: list[Any],
    sort: SortKey,
    limit: int,
    *where: ColumnElement[bool],
) -> dict[Any, tuple[list[Any], str | None]]:
    """The first page (in `sort` order) of the rows of each `group` value in `keys`, in one query (a window
    function ranks the rows of each group); for DataLoaders. Groups without rows are left out."""
    check_limit(limit)
    if not keys:
        return {}
    if sort.nullable and sort.null_value is None:
        where = (*where, sort.columns[0].isnot(None))
    order = [c.desc() if sort.descending else c.asc() for c in sort.exprs()]
    rank = func.row_number().over(partition_by=group, order_by=order).label("_rank")
    sub = select(*columns, rank).where(group.in_(set(keys)), *where).subquery()
    stmt = select(*(sub.c[c.name] for c in columns)).where(sub.c._rank <= limit + 1)
    grouped: dict[Any, list[Any]] = {}
    for row in (await conn.execute(stmt.order_by(sub.c[group.name], sub.c._rank))).all():
        grouped.setdefault(getattr(row, group.name), []).append(row)
    names = [c.name for c in sort.columns]
    return {k: page(rows, sort, limit, lambda r: tuple(getattr(r, n) for n in names)) for k, rows in grouped.items()}
