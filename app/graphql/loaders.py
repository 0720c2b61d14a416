"""Per-request DataLoaders: every nested reference or list batches through one service call."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from strawberry.dataloader import DataLoader

from app.errors import AppError
from app.services import cooperation, decisions, matchmaking, nodes, opportunities, records, reference

if TYPE_CHECKING:
    from app.graphql.context import Context

K = TypeVar("K")
Row = dict[str, Any]
Page = tuple[list[Row], str | None]


class Loaders:
    """Built on first use, so a query that needs none pays nothing."""

    def __init__(self, context: Context) -> None:
        self._context = context

    def _loader(self, fetch: Callable[[Any, list[Any]], Awaitable[list[Any]]]) -> DataLoader[Any, Any]:
        async def load(keys: list[Any]) -> list[Any]:
            async with self._context.read() as conn:
                return await fetch(conn, keys)

        return DataLoader(load_fn=load)

    @cached_property
    def party(self) -> DataLoader[str, Row | None]:
        return self._loader(reference.get_parties)

    def _pages(self, fetch: Callable[..., Awaitable[list[Page]]]) -> DataLoader[tuple[Any, int], Page]:
        """Key (parent, first): the first page of a parent's nested list, one `fetch` per page size asked."""
        principal = self._context.principal

        async def load(conn: Any, keys: list[tuple[Any, int]]) -> list[Page]:
            found: dict[tuple[Any, int], Page] = {}
            for size in {k[1] for k in keys}:
                parents = [k[0] for k in keys if k[1] == size]
                pages = await fetch(conn, principal, parents, limit=size)
                found.update(((p, size), page) for p, page in zip(parents, pages, strict=True))
            return [found[k] for k in keys]

        return self._loader(load)

    @cached_property
    def party_records(self) -> DataLoader[tuple[str, int], Page]:
        return self._pages(records.records_for_parties)

    @cached_property
    def party_nodes(self) -> DataLoader[tuple[str, int], Page]:
        return self._pages(nodes.nodes_for_parties)

    @cached_property
    def party_requests(self) -> DataLoader[tuple[str, int], Page]:
        return self._pages(cooperation.requests_for_parties)

    @cached_property
    def party_opportunities(self) -> DataLoader[tuple[str, int], Page]:
        return self._pages(opportunities.opportunities_for_parties)

    @cached_property
    def request_offers(self) -> DataLoader[tuple[uuid.UUID, int], Page]:
        return self._pages(lambda conn, principal, ids, *, limit: cooperation.offer_pages(conn, ids, limit=limit))

    @cached_property
    def request_matches(self) -> DataLoader[tuple[uuid.UUID, int, tuple[str, ...] | None], list[Row]]:
        """Key (request id, first, kinds): a list of requests asking each for its matches ranks them in one
        service call per (first, kinds), which refuses more than matchmaking.BATCH_MAX requests."""
        principal = self._context.principal

        async def fetch(conn: Any, keys: list[tuple[uuid.UUID, int, tuple[str, ...] | None]]) -> list[Any]:
            found: dict[tuple[uuid.UUID, int, tuple[str, ...] | None], Any] = {}
            for first, kinds in dict.fromkeys((k[1], k[2]) for k in keys):
                ids = [k[0] for k in keys if (k[1], k[2]) == (first, kinds)]
                try:
                    ranked: list[Any] = await matchmaking.matches_for_requests(conn, principal, ids, limit=first,
                                                                               kinds=kinds)  # fmt: skip
                except AppError as exc:  # the DataLoader hands it to each of these keys' fields
                    ranked = [exc] * len(ids)
                found.update(((i, first, kinds), m) for i, m in zip(ids, ranked, strict=True))
            return [found[k] for k in keys]

        return self._loader(fetch)

    @cached_property
    def opportunity_matches(self) -> DataLoader[tuple[uuid.UUID, int], list[Row]]:
        """Key (opportunity id, first): a list of opportunities asking each for its matches ranks them in one
        service call per `first`, which refuses more than matchmaking.BATCH_MAX opportunities."""
        principal = self._context.principal

        async def fetch(conn: Any, keys: list[tuple[uuid.UUID, int]]) -> list[Any]:
            found: dict[tuple[uuid.UUID, int], Any] = {}
            for first in dict.fromkeys(k[1] for k in keys):
                ids = [k[0] for k in keys if k[1] == first]
                try:
                    ranked: list[Any] = await matchmaking.matches_for_opportunities(conn, principal, ids, limit=first)
                except AppError as exc:  # the DataLoader hands it to each of these keys' fields
                    ranked = [exc] * len(ids)
                found.update(((i, first), m) for i, m in zip(ids, ranked, strict=True))
            return [found[k] for k in keys]

        return self._loader(fetch)

    @cached_property
    def decision_paragraphs(self) -> DataLoader[uuid.UUID, list[Row]]:
        return self._loader(decisions.paragraphs_for_decisions)
