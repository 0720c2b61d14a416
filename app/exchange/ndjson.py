"""NDJSON dumps: one JSON object a line, streamed batch by batch (constant memory), gzip when accepted."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from typing import Any

import orjson

MEDIA_TYPE = "application/x-ndjson"
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE  # times as the JSON API writes them ("...Z")


def lines(batch: list[dict[str, Any]]) -> bytes:
    """One batch as NDJSON."""
    # default=str: asyncpg hands UUIDs as its own type, which orjson does not know
    return b"".join(orjson.dumps(item, default=str, option=_OPTIONS) for item in batch)


async def encode(batches: AsyncIterator[list[dict[str, Any]]], *, gzip: bool) -> AsyncIterator[bytes]:
    """The byte stream of a dump (a gzip member when `gzip`)."""
    packer = zlib.compressobj(4, zlib.DEFLATED, 31) if gzip else None
    async for batch in batches:
        chunk = lines(batch)
        if packer is not None:
            chunk = packer.compress(chunk) + packer.flush(zlib.Z_SYNC_FLUSH)
        if chunk:
            yield chunk
    if packer is not None:
        yield packer.flush()


def accepts_gzip(header: str | None) -> bool:
    """`Accept-Encoding` allows gzip (q > 0)."""
    for part in (header or "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().removeprefix("q=")
            try:
                return not params or float(q) > 0
            except ValueError:
                return False
    return False
