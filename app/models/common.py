"""Shared field types: lstrings, term lists, column helpers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl
from sqlalchemy import Column, DateTime, Text, TypeDecorator, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

LANGS: tuple[str, ...] = ("ar", "en", "es", "fr", "ru", "zh")
_LANGSET = frozenset(LANGS)


def utcnow() -> datetime:
    """Aware UTC now."""
    return datetime.now(UTC)


def _check_lstring(value: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(value) - _LANGSET)
    if unknown:
        raise ValueError(f"unknown language key(s) {', '.join(unknown)}; use {', '.join(LANGS)}")
    cleaned = {k: v.strip() for k, v in value.items() if isinstance(v, str) and v.strip()}
    if not cleaned:
        raise ValueError("at least one language is required")
    return {k: cleaned[k] for k in LANGS if k in cleaned}


LString = Annotated[
    dict[str, Annotated[str, Field(max_length=100_000)]],
    AfterValidator(_check_lstring),
    Field(json_schema_extra={"example": {"en": "National report", "fr": "Rapport national"}}),
]
"""Text people read, keyed by UN language: at least one of ar en es fr ru zh."""


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
