"""The search-engine interface shared by the Meilisearch and PostgreSQL backends."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

FACETS: tuple[str, ...] = ("type", "party", "kind", "subjects", "gbf_targets")
MAX_FACET_VALUES = 100

Document = dict[str, Any]


class EngineError(Exception):
    """The engine refused an operation (a bad document, a failed task): retrying the same input will not help."""


class EngineUnavailable(EngineError):
    """The engine could not be reached or answered 5xx: retry later, the documents are not at fault."""


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A validated search request; every filter value is known to exist."""

    q: str = ""
    kind: str | None = None
    party: str | None = None
    type: str | None = None
    subject: str | None = None
    gbf_target: str | None = None
    lang: str | None = None
    facets: tuple[str, ...] = ()
    limit: int = 20
    offset: int = 0


@dataclass(slots=True)
class SearchResult:
    """Hits in the API's shape plus facet counts; `estimated_total` may be a lower bound on huge result sets."""

    hits: list[dict[str, Any]]
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    estimated_total: int = 0


class SearchBackend(ABC):
    """One search engine. Documents come from `app.search.documents`; `key` is the primary key."""

    name: str

    @abstractmethod
    async def ensure_ready(self) -> None:
        """Create the index and apply its settings (idempotent)."""

    @abstractmethod
    async def upsert(self, documents: list[Document]) -> None:
        """Add or replace whole documents; return only once the engine has applied them."""

    @abstractmethod
    async def delete(self, keys: list[str]) -> None:
        """Remove documents by key (missing keys are fine); return only once applied."""

    @abstractmethod
    async def search(self, query: SearchQuery, *, conn: AsyncConnection | None = None) -> SearchResult:
        """Run a query with filters, facets and highlights."""

    @abstractmethod
    async def stats(self) -> dict[str, Any]:
        """Engine-side figures (document count, index name)."""

    @abstractmethod
    async def build_and_swap(self, batches: AsyncIterator[list[Document]]) -> int:
        """Fill a fresh index from `batches`, then swap it in atomically; returns the document count."""

    @abstractmethod
    async def get_document(self, key: str) -> Document | None:
        """One stored document (for checks and tests)."""

    @abstractmethod
    async def keys(self) -> set[str]:
        """Every stored document key (for consistency checks)."""

    async def apply(self, upserts: list[Document], deletes: list[str]) -> None:
        """Upsert then delete; both confirmed before returning."""
        if upserts:
            await self.upsert(upserts)
        if deletes:
            await self.delete(deletes)

    async def close(self) -> None:  # noqa: B027 - optional hook, a no-op for backends without connections
        """Release connections."""
