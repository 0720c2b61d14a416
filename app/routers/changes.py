"""REST: /api/v1/changes, the harvesters' feed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from app import registry
from app.auth.dependencies import PrincipalDep, ReadConnDep
from app.models.common import INT64_MAX
from app.routers import http
from app.routers.params import DEFAULT, Limit, PartyQ
from app.services import changes as changes_service
from app.services.etags import render

router = APIRouter(prefix="/api/v1", tags=["changes"])


class ChangePublic(BaseModel):
    seq: int
    kind: str
    id: str
    party: str | None
    op: str
    revision: int | None
    at: datetime


class ChangeFeed(BaseModel):
    items: list[ChangePublic]
    next_since: int


@router.get("/changes", response_model=ChangeFeed, summary="The change feed")
async def list_changes(
    request: Request,
    conn: ReadConnDep,
    principal: PrincipalDep,
    since: Annotated[
        int, Query(ge=0, le=INT64_MAX, description="Return changes with seq > since (0 = from the start)")
    ] = 0,
    limit: Limit = DEFAULT,
    kind: Annotated[str | None, Query(description=", ".join(registry.FEED_KINDS))] = None,
    party: PartyQ = None,
) -> Response:
    """Every create, update, publish and withdraw visible to the caller, `seq` strictly increasing.

    Poll with `since=next_since`. Anonymous callers see public changes only (publish, withdraw, and writes
    to always-public kinds). A full page carries `Link: <...since=next_since>; rel="next"`; a page without
    it means the caller has caught up (poll the same `next_since` later)."""
    feed = await changes_service.list_changes(conn, principal, since=since, limit=limit, kind=kind, party=party)
    headers = {}
    if len(feed["items"]) == limit:
        headers["Link"] = f'<{request.url.include_query_params(since=feed["next_since"])}>; rel="next"'
    return Response(render(ChangeFeed, feed), media_type=http.JSON, headers=headers)
