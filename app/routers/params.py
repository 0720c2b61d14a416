"""Query parameters shared by list endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query

from app.services.paging import DEFAULT_LIMIT, MAX_LIMIT

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Page size, 1–{MAX_LIMIT}")]
Cursor = Annotated[
    str | None, Query(max_length=1024, description="Opaque cursor: the `next_cursor` of the previous page")
]
PartyQ = Annotated[str | None, Query(min_length=2, max_length=2, description="Party code, e.g. BR", examples=["BR"])]
UpdatedSince = Annotated[str | None, Query(description="ISO 8601 date or date-time; only items updated at or after it")]
SubjectQ = Annotated[str | None, Query(description="A CBD subject code, e.g. CBD-SUBJECT-FORESTS")]
GbfTargetQ = Annotated[str | None, Query(description="A GBF target code, e.g. GBF-TARGET-03")]
DEFAULT = DEFAULT_LIMIT
IfMatch = Annotated[
    str | None, Header(description="The ETag from a previous GET; a stale one answers 412 and nothing changes")
]
