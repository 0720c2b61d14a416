"""REST: /api/v1/nodes (national CHM nodes)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.auth.dependencies import PrincipalDep, ReadConnDep, SessionDep
from app.models.derive import one_of
from app.models.node import NodeCreate, NodeList, NodePublic, NodeStatus, NodeUpdate
from app.routers import http
from app.routers.params import DEFAULT, Cursor, IfMatch, Limit, PartyQ, UpdatedSince
from app.services import nodes as nodes_service
from app.services.paging import parse_datetime

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])


@router.get("", response_model=NodeList, summary="List national nodes")
async def list_nodes(
    request: Request,
    conn: ReadConnDep,
    principal: PrincipalDep,
    limit: Limit = DEFAULT,
    cursor: Cursor = None,
    party: PartyQ = None,
    status: Annotated[str | None, Query(description=one_of(NodeStatus))] = None,
    updated_since: UpdatedSince = None,
    sort: Annotated[str | None, Query(description=f"One of {', '.join(nodes_service.SORTS)}")] = None,
) -> Response:
    """National CHM nodes, keyset paged, newest change first."""
    filters = nodes_service.NodeFilter(party=party, status=status,
                                       updated_since=parse_datetime(updated_since, "updated_since"))  # fmt: skip
    items, next_cursor = await nodes_service.list_nodes(
        conn, principal, filters=filters, sort=sort, cursor=cursor, limit=limit
    )
    return http.listing(request, NodeList, items, next_cursor)


@router.get("/{node_id}", response_model=NodePublic, summary="Get a national node")
async def get_node(request: Request, node_id: uuid.UUID, conn: ReadConnDep, principal: PrincipalDep) -> Response:
    """One national node, with an ETag."""
    return http.single(request, NodePublic, await nodes_service.get_node(conn, principal, node_id))


@router.post("", response_model=NodePublic, status_code=201, summary="Create a national node")
async def create_node(request: Request, body: NodeCreate, session: SessionDep, principal: PrincipalDep) -> Response:
    """Needs `nodes:write`; `party` defaults to the token's Party (only the Secretariat names another)."""
    node = await nodes_service.create_node(session, principal, data=body)
    response = http.single(request, NodePublic, node, status_code=201)
    response.headers["Location"] = f"{router.prefix}/{node['id']}"
    return response


@router.put("/{node_id}", response_model=NodePublic, summary="Replace a national node")
async def replace_node(
    request: Request, node_id: uuid.UUID, body: NodeCreate, session: SessionDep, principal: PrincipalDep,
    if_match: IfMatch = None,
) -> Response:  # fmt: skip
    """Replace every field; send `If-Match` with the ETag you read."""
    node = await nodes_service.update_node(session, principal, node_id, data=body, if_match=if_match)
    return http.single(request, NodePublic, node)


@router.patch("/{node_id}", response_model=NodePublic, summary="Update a national node")
async def update_node(
    request: Request, node_id: uuid.UUID, body: NodeUpdate, session: SessionDep, principal: PrincipalDep,
    if_match: IfMatch = None,
) -> Response:  # fmt: skip
    """Change the fields sent; send `If-Match` with the ETag you read."""
    node = await nodes_service.update_node(session, principal, node_id, data=body, if_match=if_match)
    return http.single(request, NodePublic, node)


@router.delete("/{node_id}", status_code=204, summary="Delete a national node")
async def delete_node(node_id: uuid.UUID, session: SessionDep, principal: PrincipalDep,
                      if_match: IfMatch = None) -> Response:  # fmt: skip
    """Delete a node of your Party."""
    await nodes_service.delete_node(session, principal, node_id, if_match=if_match)
    return Response(status_code=204)
