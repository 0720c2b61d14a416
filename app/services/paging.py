"""Keyset paging: opaque cursors over a sort key that always ends with the primary key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, tuple_

from app.errors import BadRequest
from app.models.common import check_date, check_datetime, check_int, check_text
from app.services import signing

MAX_LIMIT = 200
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
    return BadRequest(
        f"invalid cursor: {reason}; use the next_cursor of a previous page",
        errors=[{"loc": ["query", "cursor"], "msg": reason, "type": "value_error"}],
    )


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


def bad_param(name: str, value: object, allowed: tuple[str, ...] | list[str]) -> BadRequest:
    """A 400 naming a query parameter whose value is not one of `allowed`."""
    return BadRequest(f"unknown {name} '{value}'", errors=[{"loc": ["query", name], "type": "value_error",
                      "msg": f"must be one of {', '.join(allowed)}"}])  # fmt: skip


def resolve_sort(sorts: dict[str, SortKey], sort: str | None, default: str) -> SortKey:
    """The SortKey a `sort` parameter names (the default when absent), or a 400 listing the choices."""
    key = sorts.get(sort or default)
    if key is None:
        raise bad_param("sort", sort, tuple(sorts))
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
        raise BadRequest(
            f"limit must be between 1 and {MAX_LIMIT}",
            errors=[
                {
                    "loc": ["query", "limit"],
                    "msg": f"must be between 1 and {MAX_LIMIT}",
                    "type": "value_error",
                }
            ],
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
            raise BadRequest(f"{name} is not an ISO 8601 date or date-time: '{value}'",
                             errors=[{"loc": ["query", name], "type": "value_error",
                                      "msg": "expected an ISO 8601 date or date-time"}]) from None  # fmt: skip
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return check_datetime(parsed)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}", errors=[{"loc": ["query", name], "type": "value_error",
                                                    "msg": str(exc)}]) from None  # fmt: skip
