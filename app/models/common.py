"""Shared field types: lstrings, term lists, column helpers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetJsonSchemaHandler, HttpUrl
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from sqlalchemy import Column, DateTime, Text, TypeDecorator, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

LANGS: tuple[str, ...] = ("ar", "en", "es", "fr", "ru", "zh")
_LANGSET = frozenset(LANGS)


def utcnow() -> datetime:
    """Aware UTC now."""
    return datetime.now(UTC)


def iso_z(value: datetime) -> str:
    """An aware datetime as RFC 3339 in UTC with `Z`, the way every timestamp in the API reads."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _check_lstring(value: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(value) - _LANGSET)
    if unknown:
        raise ValueError(f"unknown language key(s) {', '.join(unknown)}; use {', '.join(LANGS)}")
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
    dict[str, Annotated[str, Field(max_length=100_000)]],
    AfterValidator(_check_lstring),
    _LStringSchema(),
]
"""Text people read, keyed by UN language: at least one of ar en es fr ru zh."""

LStringOut = Annotated[dict[str, str], _LStringSchema()]
"""An lstring in a response (stored values were validated as `LString` on the way in)."""


def _check_lang(value: str) -> str:
    if value not in _LANGSET:
        raise ValueError(f"unknown language {value!r}; use {', '.join(LANGS)}")
    return value


Lang = Annotated[str, AfterValidator(_check_lang)]

_CODE = re.compile(r"^[A-Z]{2}$")


def _check_country(value: str) -> str:
    value = value.upper()
    if not _CODE.match(value):
        raise ValueError("a country is an ISO 3166-1 alpha-2 code, e.g. BR")
    return value


CountryCode = Annotated[str, AfterValidator(_check_country)]
Keyword = Annotated[str, Field(min_length=1, max_length=200)]


class Link(BaseModel):
    """A link from a record to a web resource."""

    model_config = ConfigDict(extra="forbid")
    url: HttpUrl
    name: str | None = Field(default=None, max_length=500)
    language: Lang | None = None


class Contact(BaseModel):
    """A person or office to contact."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=300)
    email: str | None = Field(default=None, max_length=300, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    organization: str | None = Field(default=None, max_length=500)


def jsonb(nullable: bool = False, **kw: Any) -> Any:
    """A JSONB column."""
    return Column(JSONB, nullable=nullable, **kw)


class TextArray(TypeDecorator[list[str]]):
    """text[] that hands asyncpg's lists through untouched (SQLAlchemy's per-item result processing
    costs about a millisecond on a 50-record page)."""

    impl = ARRAY(Text)
    cache_ok = True

    def result_processor(self, dialect: Any, coltype: Any) -> None:
        return None


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
