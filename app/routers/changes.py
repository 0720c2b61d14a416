"""REST: /api/v1/changes, the harvesters' feed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from app import registry
from app.auth.dependencies import PrincipalDep, ReadConnDep
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
    conn: ReadConnDep,
    principal: PrincipalDep,
    since: Annotated[int, Query(ge=0, description="Return changes with seq > since (0 = from the start)")] = 0,
    limit: Limit = DEFAULT,
    kind: Annotated[str | None, Query(description=", ".join(registry.FEED_KINDS))] = None,
    party: PartyQ = None,
) -> Response:
    """Every create, update, publish and withdraw visible to the caller, `seq` strictly increasing.

    Poll with `since=next_since`. Anonymous callers see public changes only (publish, withdraw, and writes
    to always-public kinds)."""
    feed = await changes_service.list_changes(conn, principal, since=since, limit=limit, kind=kind, party=party)
    return Response(render(ChangeFeed, feed), media_type=http.JSON)
