"""Shared field types: edge-safe text, integers and dates; lstrings, term lists, column helpers.

Edge rules (every input schema uses these types, so REST, GraphQL, bulk, import and the CLI share them):
text never holds a NUL byte or an unpaired surrogate (PostgreSQL and UTF-8 cannot store them); integers fit
their column (`Int32`, `Int64`); dates and date-times lie in 1900-01-01 .. 2200-12-31 (no `±infinity`, no
overflow when converted to UTC).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetJsonSchemaHandler, HttpUrl, StrictInt
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from sqlalchemy import Column, DateTime, TypeDecorator, func
from sqlalchemy import Text as SQLText
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

LANGS: tuple[str, ...] = ("ar", "en", "es", "fr", "ru", "zh")
_LANGSET = frozenset(LANGS)


def utcnow() -> datetime:
    """Aware UTC now."""
    return datetime.now(UTC)


def iso_z(value: datetime) -> str:
    """An aware datetime as RFC 3339 in UTC with `Z`, the way every timestamp in the API reads."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- edge rules ------------------------------------------------------------------------------------------

_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MIN_DATE, MAX_DATE = date(1900, 1, 1), date(2200, 12, 31)
MIN_DATETIME = datetime.combine(MIN_DATE, time.min, UTC)
MAX_DATETIME = datetime.combine(MAX_DATE, time.max, UTC)


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text (a NUL byte, an unpaired surrogate), or None."""
    bad = _BAD_TEXT.search(value)
    if bad is None:
        return None
    if bad.group() == "\x00":
        return "must not contain NUL bytes (\\u0000)"
    return "must be valid Unicode (an unpaired surrogate such as \\ud800 is not)"


def check_text(value: str) -> str:
    """`value` if it can be stored as text, else ValueError."""
    reason = text_problem(value)
    if reason:
        raise ValueError(reason)
    return value


def check_date(value: date) -> date:
    """`value` if within MIN_DATE..MAX_DATE, else ValueError."""
    day = value.date() if isinstance(value, datetime) else value
    if not MIN_DATE <= day <= MAX_DATE:
        raise ValueError(f"must be between {MIN_DATE.isoformat()} and {MAX_DATE.isoformat()}")
    return value


def check_datetime(value: datetime) -> datetime:
    """`value` (naive means UTC) as an aware date-time within the range, else ValueError."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not MIN_DATETIME <= in_utc <= MAX_DATETIME:
        raise ValueError(f"must be between {MIN_DATE.isoformat()} and {MAX_DATE.isoformat()} (UTC)")
    return value


def check_int(value: int, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """`value` if low <= value <= high, else ValueError."""
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}")
    return value


MAX_ECHO_CHARS = 200


def echo(value: Any) -> str | int | float | None:
    """`value` as an error may quote it back (short, encodable scalars only), else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_ECHO_CHARS and text_problem(value) is None else None
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def encodable(value: Any) -> Any:
    """`value` with every string, key and number made JSON-encodable (NUL kept as an escape, unpaired
    surrogates and over-long integers replaced): the last guard before an error body is serialized."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8") if text_problem(value) else value
    if isinstance(value, dict):
        return {encodable(str(k)): encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encodable(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return encodable(str(value))


SafeStr = Annotated[str, AfterValidator(check_text)]
"""A string PostgreSQL can store: no NUL byte, no unpaired surrogate. Bounded, write the bounds *before* the check,
`Annotated[str, Field(max_length=...), AfterValidator(check_text)]`: pydantic-core then checks them itself, where
bounds after an AfterValidator (`Annotated[SafeStr, Field(...)]`) run as one Python call per bound and value (a bulk
batch of 1,000 records validates ~13,000 strings; 25 → 18 ms). Same JSON Schema either way."""
Int32 = Annotated[StrictInt, Field(ge=INT32_MIN, le=INT32_MAX)]
"""An integer for an `integer` column (strict: `true` and `"1"` are refused)."""
Int64 = Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)]
"""An integer for a `bigint` column (strict)."""
BoundedDate = Annotated[date, AfterValidator(check_date)]
"""A calendar date within 1900-01-01 .. 2200-12-31."""
BoundedDateTime = Annotated[datetime, AfterValidator(check_datetime)]
"""An aware date-time (naive means UTC) within 1900-01-01 .. 2200-12-31 UTC."""
Term = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(check_text)]
"""A vocabulary identifier (checked against its vocabulary by the services)."""


def _check_lstring(value: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(value) - _LANGSET)
    if unknown:
        shown = ", ".join(k if text_problem(k) is None else ascii(k) for k in unknown)
        raise ValueError(f"unknown language key(s) {shown}; use {', '.join(LANGS)}")
    cleaned = {k: v.strip() for k, v in value.items() if isinstance(v, str) and v.strip()}
    if not cleaned:
        raise ValueError("at least one language is required")
    return {k: cleaned[k] for k in LANGS if k in cleaned}


LSTRING_MARK = "x-chm-lstring"
"""Marks an lstring in generated JSON Schema; app/openapi.py folds every marked schema into one `LString`."""


class _LStringSchema:
    """JSON Schema of an lstring: an object keyed by UN language, at least one key."""

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {
            "type": "object",
            "description": "Text people read, keyed by UN language (ar en es fr ru zh); at least one language.",
            "properties": {lang: {"type": "string", "maxLength": 100_000} for lang in LANGS},
            "additionalProperties": False,
            "minProperties": 1,
            "example": {"en": "National report", "fr": "Rapport national"},
            LSTRING_MARK: True,
        }


LString = Annotated[
    dict[str, Annotated[str, Field(max_length=100_000), AfterValidator(check_text)]],
    AfterValidator(_check_lstring),
    _LStringSchema(),
]
"""SafeStr people read, keyed by UN language: at least one of ar en es fr ru zh."""

LStringOut = Annotated[dict[str, str], _LStringSchema()]
"""An lstring in a response (stored values were validated as `LString` on the way in)."""


def _check_lang(value: str) -> str:
    if value not in _LANGSET:
        raise ValueError(f"unknown language {value!a}; use {', '.join(LANGS)}")
    return value


Lang = Annotated[str, AfterValidator(_check_lang)]

_CODE = re.compile(r"^[A-Z]{2}$")


def _check_country(value: str) -> str:
    value = value.upper()
    if not _CODE.match(value):
        raise ValueError("a country is an ISO 3166-1 alpha-2 code, e.g. BR")
    return value


CountryCode = Annotated[str, AfterValidator(_check_country)]
Keyword = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_text)]


class Link(BaseModel):
    """A link from a record to a web resource."""

    model_config = ConfigDict(extra="forbid")
    url: HttpUrl
    name: SafeStr | None = Field(default=None, max_length=500)
    language: Lang | None = None


class Contact(BaseModel):
    """A person or office to contact."""

    model_config = ConfigDict(extra="forbid")
    name: SafeStr | None = Field(default=None, max_length=300)
    email: SafeStr | None = Field(default=None, max_length=300, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    organization: SafeStr | None = Field(default=None, max_length=500)


def jsonb(nullable: bool = False, **kw: Any) -> Any:
    """A JSONB column."""
    return Column(JSONB, nullable=nullable, **kw)


class TextArray(TypeDecorator[list[str]]):
    """text[] that hands asyncpg's lists through untouched (SQLAlchemy's per-item result processing
    costs about a millisecond on a 50-record page)."""

    impl = ARRAY(SQLText)
    cache_ok = True

    def result_processor(self, dialect: Any, coltype: Any) -> None:
        return None


# GIN indexes that matchmaking reads are updated in place (no pending list for every scan to read until VACUUM
# merges it; migration 0112).
GIN_IN_PLACE: dict[str, str] = {"fastupdate": "off"}


def text_array(**kw: Any) -> Any:
    """A text[] column that is never NULL."""
    return Column(TextArray(), nullable=False, server_default="{}", **kw)


def created_col() -> Any:
    return Column(DateTime(timezone=True), nullable=False, server_default=func.now())


def ts_col(nullable: bool = True, **kw: Any) -> Any:
    return Column(DateTime(timezone=True), nullable=nullable, **kw)


def pick_lang(value: dict[str, str] | None, lang: str | None) -> str | None:
    """The text in `lang`, else English, else any language (the SPEC's fallback)."""
    if not value:
        return None
    if lang and lang in value:
        return value[lang]
    if "en" in value:
        return value["en"]
    return next(iter(value.values()))
