"""National node queries and mutations over services.nodes."""

from __future__ import annotations

import uuid

from app import db
from app.graphql.context import Info
from app.graphql.errors import validated
from app.graphql.inputs import data_of
from app.graphql.limits import DEFAULT_FIRST
from app.graphql.types.common import Connection, list_connection
from app.graphql.types.nodes import NationalNode, NodeFilter, NodeInput, NodePatch, NodeSort
from app.models.node import NodeCreate, NodeUpdate
from app.services import nodes as nodes_service


async def national_node(info: Info, id: uuid.UUID) -> NationalNode:
    """One national node."""
    async with info.context.read() as conn:
        return await nodes_service.get_node(conn, info.context.principal, id)  # type: ignore[return-value]


async def national_nodes(
    info: Info,
    filter: NodeFilter | None = None,
    sort: NodeSort | None = None,
    first: int = DEFAULT_FIRST,
    after: str | None = None,
) -> Connection[NationalNode]:
    """National CHM nodes, newest change first by default."""
    return await list_connection(
        info, nodes_service.list_nodes, nodes_service.LISTING, filter=filter, sort=sort, first=first, after=after
    )


async def create_node(info: Info, input: NodeInput) -> NationalNode:
    """Needs `nodes:write`; `party` defaults to the token's Party (only the Secretariat names another)."""
    data = validated(NodeCreate, data_of(input))
    async with db.transaction() as session:
        return await nodes_service.create_node(session, info.context.principal, data=data)  # type: ignore[return-value]


async def update_node(info: Info, id: uuid.UUID, input: NodePatch, if_match: str | None = None) -> NationalNode:
    """Change the fields sent (PATCH)."""
    data = validated(NodeUpdate, data_of(input))
    async with db.transaction() as session:
        return await nodes_service.update_node(session, info.context.principal, id, data=data, if_match=if_match)  # type: ignore[return-value]


async def replace_node(info: Info, id: uuid.UUID, input: NodeInput, if_match: str | None = None) -> NationalNode:
    """Replace every field (PUT)."""
    data = validated(NodeCreate, data_of(input))
    async with db.transaction() as session:
        return await nodes_service.update_node(session, info.context.principal, id, data=data, if_match=if_match)  # type: ignore[return-value]


async def delete_node(info: Info, id: uuid.UUID, if_match: str | None = None) -> uuid.UUID:
    """Delete a node of your Party; answers its id."""
    async with db.transaction() as session:
        await nodes_service.delete_node(session, info.context.principal, id, if_match=if_match)
    return id
