"""GraphQL types of reference data: Parties (with their records, nodes and requests) and vocabularies."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from app.graphql.context import Info
from app.graphql.limits import DEFAULT_FIRST
from app.graphql.types.common import Connection, Row, connection, i18n, lstring
from app.graphql.types.cooperation import CooperationRequest
from app.graphql.types.nodes import NationalNode
from app.graphql.types.opportunities import Opportunity
from app.graphql.types.records import Record
from app.services import records as records_service


async def _records(root: Row, info: Info, first: int = DEFAULT_FIRST, after: str | None = None) -> Connection[Record]:
    """The Party's records the caller may see, newest change first."""
    if after is None:
        page = await info.context.loaders.party_records.load((root["code"], first))
    else:
        async with info.context.read() as conn:
            page = await records_service.list_records(
                conn, info.context.principal, filters=records_service.RecordFilter(party=root["code"]),
                cursor=after, limit=first,
            )  # fmt: skip
    return connection(page, records_service.SORTS[records_service.DEFAULT_SORT])


async def _nodes(root: Row, info: Info) -> list[NationalNode]:
    return await info.context.loaders.party_nodes.load(root["code"])  # type: ignore[return-value]


async def _requests(root: Row, info: Info) -> list[CooperationRequest]:
    return await info.context.loaders.party_requests.load(root["code"])  # type: ignore[return-value]


async def _opportunities(root: Row, info: Info) -> list[Opportunity]:
    return await info.context.loaders.party_opportunities.load(root["code"])  # type: ignore[return-value]


@strawberry.type(description="A Party to the Convention (ISO 3166-1 alpha-2 code; EU for the European Union)")
class Party:
    code: str
    name: JSON = i18n("name")
    name_text: str = lstring("name", required=True)
    is_party: bool
    records: Connection[Record] = strawberry.field(resolver=_records)
    nodes: list[NationalNode] = strawberry.field(resolver=_nodes, description="National nodes, newest change first")
    cooperation_requests: list[CooperationRequest] = strawberry.field(
        resolver=_requests, description="Cooperation requests, newest change first"
    )
    opportunities: list[Opportunity] = strawberry.field(
        resolver=_opportunities, description="Opportunities the Party provides, newest change first"
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
