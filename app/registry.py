"""The entity registry: every entity kind of the API, written once.

One `Entity` per kind says what the rest of the code needs to know about it: the kind name (as the change
feed, the search index and the outbox spell it), its table, its public schema, the scopes that write it,
the service module that holds its rules, and — when its public state is searchable — how to read that state
into a search document. The change log, the outbox worker, search, the GraphQL loaders and the docs read
this module instead of keeping their own lists.

The API (small on purpose)::

    ENTITIES                   every Entity, keyed by kind, in the change feed's documented order
    get(kind) -> Entity        the entry for a kind (KeyError when unknown)
    FEED_KINDS                 kinds that appear in the change feed (`?kind=` of /changes)
    SEARCH_KINDS               kinds with their own search documents (`?kind=` of /search)
    HARVEST_KINDS              kinds that are items of their own in OAI-PMH, Atom, the dumps and offline
                               bundles (app/services/snapshot.py exports and mirrors exactly these)
    searchable(kind) -> Entity | None
                               the entity whose document a change of `kind` touches: itself, its
                               `reindexes` parent (an offer reindexes its cooperation request), or None

Adding an entity kind: add one `Entity(...)` to `_ENTITIES` below (the table model, the public schema, the
write scopes, the service module; a `SearchSource` when it is searchable, `reindexes=` when its changes
show through a parent's document). A write then emits `events.Event(kind=<kind>, ...)`. Kinds that are not
entities (webhook deliveries, tokens, audit-only events) are not registered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Table
from sqlmodel import SQLModel

from app.auth.principal import SCOPES
from app.models.cooperation import CooperationOffer, CooperationRequest, OfferPublic, RequestPublic
from app.models.decision import Decision, DecisionParagraph, DecisionPublic
from app.models.matching import AnnouncedMatch, CooperationMatch
from app.models.node import NationalNode, NodePublic
from app.models.opportunity import Opportunity, OpportunityPublic
from app.models.record import Record, RecordPublic
from app.search import documents
from app.search.backend import Document

DocumentFn = Callable[[Mapping[Any, Any], Sequence[Mapping[Any, Any]]], Document]


def table_of(model: type[SQLModel]) -> Table:
    """The SQLAlchemy table of a SQLModel table model."""
    return model.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Children:
    """Child rows whose text is part of the parent's search document (decision paragraphs, offers)."""

    model: type[SQLModel]
    parent: str  # the column holding the parent's id
    columns: tuple[str, ...]  # what the document function reads
    order_by: tuple[str, ...]  # after the parent column

    @property
    def table(self) -> Table:
        return table_of(self.model)


@dataclass(frozen=True, slots=True)
class SearchSource:
    """How the public state of an entity becomes a search document."""

    document: DocumentFn  # (row, children) -> document; see app.search.documents
    columns: tuple[str, ...] | None = None  # the columns `document` reads (None: every column)
    public: Callable[[Table], ColumnElement[bool]] | None = None  # rows the public sees (None: all of them)
    children: Children | None = None


@dataclass(frozen=True, slots=True)
class Entity:
    """One entity kind."""

    kind: str  # lower-case, URL-safe: the change feed's, the outbox's and the search index's `kind`
    model: type[SQLModel]  # the table model (the head row)
    public: type[BaseModel]  # what readers see (REST response schema; GraphQL output parity)
    scopes: tuple[str, ...]  # token scopes that write it (a subset of app.auth.principal.SCOPES)
    service: str  # module with its business rules (reads, writes, `*_for_parties` loaders)
    search: SearchSource | None = None  # None: no document of its own
    reindexes: tuple[str, str] | None = None  # (parent kind, column with the parent id): changes show there
    in_feed: bool = True  # writes appear in the change feed
    harvest: bool = True  # an item of its own in OAI-PMH, feeds, dumps and bundles (services/harvest.py, snapshot.py)
    party_column: str = "party"  # the column naming the Party that owns an entry (bundles' --party, mirror --own)
    # (field, service function (conn, ids) -> one list per id): child rows of the full representation
    parts: tuple[str, str] | None = None
    description: str = ""  # one line for docs and the `kind` parameter

    @property
    def table(self) -> Table:
        return table_of(self.model)

    @property
    def owner(self) -> Any:
        """The column of the owning Party, or None for a kind no Party owns (decisions)."""
        return self.table.c.get(self.party_column)

    def service_module(self) -> ModuleType:
        """The service module (imported on first use: services import this registry)."""
        import importlib

        return importlib.import_module(self.service)


_ENTITIES: tuple[Entity, ...] = (
    Entity(
        kind="record",
        model=Record,
        public=RecordPublic,
        scopes=("records:write", "records:publish"),
        service="app.services.records",
        search=SearchSource(
            document=documents.record_document,
            columns=(
                "id",
                "serial",
                "party",
                "type",
                "revision",
                "title",
                "summary",
                "body",
                "languages",
                "keywords",
                "subjects",
                "gbf_targets",
                "publication_date",
                "published_at",
                "updated_at",
            ),
            # The public sees a record's head row only while published; drafts live in record_drafts.
            public=lambda t: t.c.status == "published",
        ),
        description="a CHM record (published revisions; withdrawals leave a tombstone)",
    ),
    Entity(
        kind="node",
        model=NationalNode,
        public=NodePublic,
        scopes=("nodes:write",),
        service="app.services.nodes",
        search=SearchSource(document=documents.node_document),
        description="a national CHM node",
    ),
    Entity(
        kind="decision",
        model=Decision,
        public=DecisionPublic,
        scopes=("decisions:write",),
        service="app.services.decisions",
        search=SearchSource(
            document=documents.decision_document,
            children=Children(DecisionParagraph, "decision_id", ("text",), ("position",)),
        ),
        parts=("paragraphs", "paragraphs_for_decisions"),
        description="a COP / CP-MOP / NP-MOP decision",
    ),
    Entity(
        kind="cooperation-request",
        model=CooperationRequest,
        public=RequestPublic,
        scopes=("cooperation:write",),
        service="app.services.cooperation",
        search=SearchSource(
            document=documents.request_document,
            children=Children(CooperationOffer, "request_id", ("description",), ("created_at", "id")),
        ),
        parts=("offers", "offers_for_requests"),
        description="a scientific and technical cooperation request",
    ),
    Entity(
        kind="offer",
        model=CooperationOffer,
        public=OfferPublic,
        scopes=("cooperation:write",),
        service="app.services.cooperation",
        reindexes=("cooperation-request", "request_id"),
        harvest=False,  # harvested as part of its request
        description="an offer on a cooperation request (searchable as part of its request)",
    ),
    Entity(
        kind="opportunity",
        model=Opportunity,
        public=OpportunityPublic,
        scopes=("cooperation:write",),
        service="app.services.opportunities",
        search=SearchSource(document=documents.opportunity_document, columns=tuple(OpportunityPublic.model_fields)),
        party_column="provider_party",
        description="support on offer, not yet tied to a request (a Bio-Bridge opportunity)",
    ),
    Entity(
        kind="cooperation-match",
        model=CooperationMatch,
        public=AnnouncedMatch,
        scopes=("cooperation:write",),  # written by publishing an opportunity
        service="app.services.matchmaking",
        harvest=False,  # an announcement about an opportunity, not an item of its own
        description="a match announced when an opportunity was published (webhook event cooperation.match)",
    ),
)

ENTITIES: dict[str, Entity] = {e.kind: e for e in _ENTITIES}
FEED_KINDS: tuple[str, ...] = tuple(e.kind for e in _ENTITIES if e.in_feed)
SEARCH_KINDS: tuple[str, ...] = tuple(e.kind for e in _ENTITIES if e.search is not None)
HARVEST_KINDS: tuple[str, ...] = tuple(e.kind for e in _ENTITIES if e.harvest and e.in_feed)


def get(kind: str) -> Entity:
    """The entity of `kind` (KeyError when no such kind is registered)."""
    return ENTITIES[kind]


def searchable(kind: str) -> Entity | None:
    """The entity whose search document a change of `kind` touches (itself or its parent), or None."""
    entity = ENTITIES.get(kind)
    if entity is None:
        return None
    if entity.search is not None:
        return entity
    if entity.reindexes is not None:
        return searchable(entity.reindexes[0])
    return None


def _check() -> None:
    for e in _ENTITIES:
        unknown = set(e.scopes) - set(SCOPES)
        if unknown:
            raise RuntimeError(f"entity {e.kind!r}: unknown scopes {sorted(unknown)}")
        if e.reindexes is not None and (e.reindexes[0] not in ENTITIES or e.reindexes[1] not in e.table.c):
            raise RuntimeError(f"entity {e.kind!r}: bad reindexes={e.reindexes!r}")
        if e.party_column != "party" and e.party_column not in e.table.c:
            raise RuntimeError(f"entity {e.kind!r}: no party column {e.party_column!r}")
    if len(ENTITIES) != len(_ENTITIES):
        raise RuntimeError("an entity kind is registered twice")


_check()
