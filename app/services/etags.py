"""Representation ETags, shared by reads (ETag / If-None-Match) and writes (If-Match → 412)."""

from __future__ import annotations

import hashlib
import uuid
from functools import lru_cache
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter

from app.errors import PreconditionFailed


@lru_cache(maxsize=64)
def adapter(model: type[BaseModel]) -> TypeAdapter[Any]:
    """A cached TypeAdapter for a response model."""
    return TypeAdapter(model)


def render(model: type[BaseModel], data: Any, *, trusted: bool = False) -> bytes:
    """Validate `data` against `model` and serialize it in pydantic-core.

    `trusted`: `data` already has exactly the model's shape (a service built it field by field, as
    `records.to_public` does), so serialize it without the validation pass, with orjson (about twice as fast
    as pydantic-core on plain dicts; `OPT_UTC_Z` writes UTC datetimes as pydantic does) — the hot list path."""
    if trusted:
        return orjson.dumps(data, default=_as_str, option=orjson.OPT_UTC_Z)
    ad = adapter(model)
    return ad.dump_json(ad.validate_python(data))


def _as_str(value: Any) -> str:
    # asyncpg's own UUID type subclasses uuid.UUID, which orjson only takes exactly
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def etag_of(body: bytes) -> str:
    """A strong ETag for a representation."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def weak_etag_of(body: bytes) -> str:
    """A weak ETag for a list page: SHA-1 (hardware-accelerated, ~2.5x faster than BLAKE2 on a 90 KB page);
    weak validators only promise semantic equivalence and are never used for If-Match."""
    return 'W/"' + hashlib.sha1(body, usedforsecurity=False).hexdigest()[:24] + '"'


def etag(model: type[BaseModel], data: Any) -> str:
    """The ETag a reader got for `data` rendered as `model`."""
    return etag_of(render(model, data))


def matches(header: str | None, current: str) -> bool:
    """True when an If-Match / If-None-Match header lists `current` (or is `*`)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    return current in (t.strip().removeprefix("W/") for t in header.split(","))


def check_if_match(if_match: str | None, model: type[BaseModel], current: Any) -> None:
    """Raise PreconditionFailed when `If-Match` was sent and names another representation."""
    if if_match is not None and not matches(if_match, etag(model, current)):
        raise PreconditionFailed("the resource changed since you read it (If-Match is stale); GET it again")
