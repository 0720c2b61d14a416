"""GraphQL types of reference data: Parties (with their records, nodes and requests) and vocabularies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from strawberry.scalars import JSON

from app.graphql.context import Info
from app.graphql.limits import DEFAULT_FIRST
from app.graphql.types.common import Connection, Row, connection, i18n, lstring
from app.graphql.types.cooperation import CooperationRequest
from app.graphql.types.nodes import NationalNode
from app.graphql.types.opportunities import Opportunity
from app.graphql.types.records import Record
from app.services import cooperation as cooperation_service
from app.services import nodes as nodes_service
from app.services import opportunities as opportunities_service
from app.services import paging
from app.services import records as records_service
from app.services.paging import Page


def _party_list(loader: str, list_page: Callable[..., Awaitable[Page]], listing: paging.Listing[Any]) -> Any:
    """The resolver of a Party's nested list: the first page through a DataLoader (one query for every Party
    of the response), later pages (`after`) through the REST list's service call with the Party filter."""

    async def resolve(root: Row, info: Info, first: int = DEFAULT_FIRST, after: str | None = None) -> Any:
        if after is None:
            page = await getattr(info.context.loaders, loader).load((root["code"], first))
        else:
            async with info.context.read() as conn:
                page = await list_page(
                    conn, info.context.principal, filters=listing.filter(party=root["code"]), cursor=after, limit=first
                )
        return connection(page, listing.sort_key(None), after=after)

    return resolve


@strawberry.type(description="A Party to the Convention (ISO 3166-1 alpha-2 code; EU for the European Union)")
class Party:
    code: str
    name: JSON = i18n("name")
    name_text: str = lstring("name", required=True)
    is_party: bool
    records: Connection[Record] = strawberry.field(
        resolver=_party_list("party_records", records_service.list_records, records_service.LISTING),
        description="The Party's records the caller may see, newest change first",
    )
    nodes: Connection[NationalNode] = strawberry.field(
        resolver=_party_list("party_nodes", nodes_service.list_nodes, nodes_service.LISTING),
        description="National nodes, newest change first",
    )
    cooperation_requests: Connection[CooperationRequest] = strawberry.field(
        resolver=_party_list("party_requests", cooperation_service.list_requests, cooperation_service.LISTING),
        description="Cooperation requests, newest change first",
    )
    opportunities: Connection[Opportunity] = strawberry.field(
        resolver=_party_list(
            "party_opportunities", opportunities_service.list_opportunities, opportunities_service.LISTING
        ),
        description="Opportunities the Party provides, newest change first",
    )


@strawberry.type(description="A term of a controlled vocabulary")
class Term:
    code: str
    title: JSON = i18n("title")
    title_text: str = lstring("title", required=True)
    description: JSON | None = i18n("description")
    description_text: str | None = lstring("description")
    broader: list[str] = strawberry.field(description="Codes of the terms directly above this one")
    narrower: list[str] = strawberry.field(description="Codes of the terms directly below this one")
    extra: JSON | None


@strawberry.type(description="A controlled vocabulary with its terms in their defined order")
class Vocabulary:
    name: str
    terms: list[Term]
