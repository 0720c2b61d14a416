"""Atom feeds: /api/v1/records.atom, filtered by party, type and GBF target, titles in `lang`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.auth.dependencies import ReadConnDep
from app.exchange import atom
from app.routers.http import site_url
from app.routers.params import Cursor, GbfTargetQ, PartyQ
from app.services import harvest
from app.settings import get_settings

router = APIRouter(prefix="/api/v1", tags=["harvesting"])
PAGE = 50


@router.get(
    "/records.atom", summary="Atom feed of published records", response_class=Response, operation_id="recordsAtom",
    responses={200: {"content": {atom.MEDIA_TYPE: {}}, "description": "A feed page (RFC 4287, RFC 5005, RFC 6721)"}},
)  # fmt: skip
async def records_feed(
    request: Request,
    conn: ReadConnDep,
    party: PartyQ = None,
    type: Annotated[str | None, Query(description="Record type (vocabulary record-types)")] = None,
    gbf_target: GbfTargetQ = None,
    lang: Annotated[str | None, Query(description="Language of titles and summaries (fallback: en, then any)")] = None,
    cursor: Cursor = None,
) -> Response:
    """Newest public change first; `rel="next"` pages back in time; withdrawals as `at:deleted-entry`."""
    f, after = await harvest.feed_filter(conn, party=party, type=type, gbf_target=gbf_target, lang=lang, cursor=cursor)
    heads = await harvest.heads(conn, f, after=after, limit=PAGE + 1, descending=True, with_detail=False)
    first = request.url.remove_query_params("cursor")
    next_url = None
    if len(heads) > PAGE:
        heads = heads[:PAGE]
        next_url = str(first.include_query_params(cursor=harvest.feed_cursor(heads[-1].seq)))
    settings = get_settings()
    feed = atom.Feed(self_url=str(request.url), first_url=str(first), next_url=next_url, site_url=site_url(request),
                     title=f"{settings.oai_repository_name}: records", lang=lang,
                     author=settings.oai_repository_name)  # fmt: skip
    return Response(atom.render(feed, heads), media_type=atom.MEDIA_TYPE)
