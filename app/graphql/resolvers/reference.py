"""Party and vocabulary queries over services.reference."""

from __future__ import annotations

from app.graphql.context import Info
from app.graphql.limits import DEFAULT_FIRST
from app.graphql.types.common import Connection, connection
from app.graphql.types.parties import Party, Vocabulary
from app.services import paging
from app.services import reference as reference_service

PARTY_KEY = paging.SortKey("code", (reference_service.PARTY.c.code,), (str,))  # as list_parties


async def party(info: Info, code: str) -> Party:
    """One Party by ISO 3166-1 alpha-2 code (`EU` for the European Union)."""
    async with info.context.read() as conn:
        return await reference_service.get_party(conn, code)  # type: ignore[return-value]


async def parties(info: Info, first: int = DEFAULT_FIRST, after: str | None = None) -> Connection[Party]:
    """The Parties to the Convention, by code."""
    async with info.context.read() as conn:
        page = await reference_service.list_parties(conn, cursor=after, limit=first)
    return connection(page, PARTY_KEY, after=after)


async def vocabulary(info: Info, name: str) -> Vocabulary:
    """All terms of a vocabulary (e.g. gbf-targets, aichi-targets, cbd-subjects, record-types)."""
    async with info.context.read() as conn:
        return await reference_service.get_vocabulary(conn, name)  # type: ignore[return-value]


async def vocabularies(info: Info) -> list[str]:
    """Names of the controlled vocabularies."""
    async with info.context.read() as conn:
        return await reference_service.list_vocabulary_names(conn)
