"""Set-based writes: many rows of one table in one statement, whatever the batch size.

The rows travel as one JSON array that PostgreSQL expands with `jsonb_populate_recordset` (the table's own row
type converts every value: uuids, timestamps, dates, text[] and jsonb columns). One bind parameter and one round
trip per table and batch, against SQLAlchemy's executemany (a statement per row, each with its own parameter
processing) or a multi-VALUES insert (tens of thousands of bind parameters for a batch of 1,000 records).
Columns left out of the rows get their defaults (identities, sequences, `now()`).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Table, text


def _json(rows: list[dict[str, Any]]) -> str:
    # `default=str`: asyncpg's own UUID type (ids read back from the database), Decimal
    return orjson.dumps(rows, default=str, option=orjson.OPT_NAIVE_UTC).decode()


def _columns(table: Table, rows: list[dict[str, Any]]) -> list[str]:
    names = list(rows[0])
    known = set(table.c.keys())
    if unknown := [n for n in names if n not in known]:
        raise ValueError(f"no column(s) {unknown} in {table.name}")
    return names


def _with_defaults(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with the Python-side column defaults SQLAlchemy would fill in (the database knows only its own)."""
    missing = [c for c in table.c if c.name not in rows[0] and c.default is not None and not c.server_default]
    if not missing:
        return rows
    values: dict[str, Any] = {}
    for c in missing:
        default: Any = c.default
        values[c.name] = default.arg if default.is_scalar else default.arg(None)
    return [{**r, **values} for r in rows]


async def insert_rows(session: Any, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT `rows` (dicts with the same keys, all of them columns of `table`) in one statement."""
    if not rows:
        return
    rows = _with_defaults(table, rows)
    cols = ", ".join(f'"{c}"' for c in _columns(table, rows))
    sql = (f'INSERT INTO {table.name} ({cols}) SELECT {cols} '
           f'FROM jsonb_populate_recordset(NULL::"{table.name}", CAST(:rows AS jsonb))')  # fmt: skip
    await session.execute(text(sql), {"rows": _json(rows)})


async def update_rows(session: Any, table: Table, rows: list[dict[str, Any]], *, key: str = "id",
                      set_sql: dict[str, str] | None = None) -> int:  # fmt: skip
    """UPDATE the rows of `table` whose `key` is in `rows`, setting every other column of the rows from them (and
    the columns in `set_sql` to SQL expressions over `t`, the row before, and `x`, its new values); one statement.
    Returns how many rows changed."""
    if not rows:
        return 0
    cols = [c for c in _columns(table, rows) if c != key]
    sets = [f'"{c}" = x."{c}"' for c in cols] + [f'"{c}" = {expr}' for c, expr in (set_sql or {}).items()]
    sql = (f'UPDATE {table.name} AS t SET {", ".join(sets)} '
           f'FROM jsonb_populate_recordset(NULL::"{table.name}", CAST(:rows AS jsonb)) AS x '
           f'WHERE t."{key}" = x."{key}"')  # fmt: skip
    result = await session.execute(text(sql), {"rows": _json(rows)})
    return int(result.rowcount)
