"""Build facts from the one place they are written: enum values from a `Literal`, check constraints and
descriptions from those values, column lists from a `*Public` schema, list caps from a vocabulary's size."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel
from sqlalchemy import CheckConstraint, Column, Table


def values(enum: Any) -> tuple[str, ...]:
    """The values of a `Literal[...]` type, in their written order."""
    found = get_args(enum)
    if not found or not all(isinstance(v, str) for v in found):
        raise TypeError(f"{enum!r} is not a Literal of strings")
    return found


def check_in(column: str, enum: Any, name: str) -> CheckConstraint:
    """`CHECK (column IN (...))` over the values of `enum` (the same SQL text the migrations wrote)."""
    quoted = ",".join(f"'{v}'" for v in values(enum))
    return CheckConstraint(f"{column} IN ({quoted})", name=name)


def term_cap(vocabulary: str) -> int:
    """The most terms a list drawn from `vocabulary` can name: the vocabulary's size, read from the reference data
    the package ships (and loads into `vocabulary_terms`), so adding a term raises every cap drawn from it."""
    from app.reference import load_vocabularies

    return len(load_vocabularies()[vocabulary])


def one_of(enum: Any, sep: str = ", ") -> str:
    """The values of `enum` joined for a description or an error message ("a, b, c")."""
    return sep.join(values(enum))


def columns(table: Table, schema: type[BaseModel], *extra: str) -> tuple[Column[Any], ...]:
    """The columns of `table` that `schema` shows (in the schema's field order), plus `extra` columns that
    computed fields need; fields that are not columns (computed or nested) are skipped."""
    names = [f for f in schema.model_fields if f in table.c]
    names += [e for e in extra if e not in names]
    return tuple(table.c[n] for n in names)
