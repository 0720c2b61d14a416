"""The search query over services.search (the same parameters as GET /api/v1/search)."""

from __future__ import annotations

from app.graphql.context import Info
from app.graphql.types.common import Lang
from app.graphql.types.search import SearchResult
from app.services import search as search_service


async def search(
    info: Info, q: str | None = None, kind: str | None = None, party: str | None = None, type: str | None = None,
    subject: str | None = None, gbf_target: str | None = None, lang: Lang | None = None,
    facets: list[str] | None = None, limit: int = search_service.DEFAULT_LIMIT, offset: int = 0,
) -> SearchResult:  # fmt: skip
    """Records, national nodes, decisions and cooperation requests, best match first; filters combine."""
    async with info.context.read() as conn:
        return await search_service.search(  # type: ignore[return-value]
            conn, info.context.principal, q=q, kind=kind, party=party, type=type, subject=subject,
            gbf_target=gbf_target, lang=lang.value if lang else None, facets=facets, limit=limit, offset=offset,
        )  # fmt: skip
