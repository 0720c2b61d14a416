"""REST: /api/v1/search and /api/v1/search/status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth.dependencies import PrincipalDep, ReadConnDep
from app.models.decision import DecisionBody
from app.models.derive import one_of
from app.routers.params import GbfTargetQ, PartyQ, SubjectQ
from app.search.schemas import SearchResponse, SearchStatus
from app.services import search as search_service
from app.services.etags import render

router = APIRouter(prefix="/api/v1/search", tags=["search"])
JSON = "application/json"


@router.get("", response_model=SearchResponse, summary="Search published content",
            responses={400: {"description": "Unknown filter value, or offset beyond 1,000"}})  # fmt: skip
async def search(
    conn: ReadConnDep,
    principal: PrincipalDep,
    q: Annotated[str | None, Query(description='Words to find; typo tolerant; "quotes", OR and -not work')] = None,
    kind: Annotated[str | None, Query(description="record, node, decision or cooperation-request")] = None,
    party: PartyQ = None,
    type: Annotated[str | None, Query(description=f"Record type, or a decision body ({one_of(DecisionBody)})")] = None,
    subject: SubjectQ = None,
    gbf_target: GbfTargetQ = None,
    lang: Annotated[str | None, Query(description="Language of titles and highlights: ar en es fr ru zh")] = None,
    facets: Annotated[str | None, Query(description="Comma list of type, party, kind, subjects, gbf_targets")] = None,
    limit: Annotated[int, Query(description="1–100")] = search_service.DEFAULT_LIMIT,
    offset: Annotated[int, Query(description="0–1,000; walk everything with the list endpoints instead")] = 0,
) -> Response:
    """Records, national nodes, decisions and cooperation requests, best match first; filters combine."""
    result = await search_service.search(conn, principal, q=q, kind=kind, party=party, type=type, subject=subject,
                                         gbf_target=gbf_target, lang=lang, facets=facets, limit=limit,
                                         offset=offset)  # fmt: skip
    return Response(render(SearchResponse, result), media_type=JSON)


@router.get("/status", response_model=SearchStatus, summary="Search sync status")
async def status(conn: ReadConnDep, principal: PrincipalDep) -> Response:
    """Engine in use, outbox backlog, age of the oldest pending change, parked rows; error texts for the
    Secretariat only."""
    return Response(render(SearchStatus, await search_service.status(conn, principal)), media_type=JSON)
