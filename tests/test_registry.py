"""The entity registry and the derived enums stay consistent with the code that reads them."""

from __future__ import annotations

import pytest

from app import registry
from app.models.cooperation import OfferStatus, RequestStatus
from app.models.decision import DecisionBody, DecisionStatus
from app.models.derive import values
from app.models.node import NodeStatus
from app.models.record import RecordStatus, RecordType
from app.reference import load_vocabularies
from app.search import documents


@pytest.mark.parametrize("entity", list(registry.ENTITIES.values()), ids=lambda e: e.kind)
def test_entity_entry_resolves(entity: registry.Entity) -> None:
    assert entity.service_module().__name__ == entity.service
    assert "id" in entity.table.c and set(entity.public.model_fields) & set(entity.table.c.keys())
    if entity.search is not None:
        cols = entity.search.columns or ()
        assert all(c in entity.table.c for c in cols), entity.kind
        child = entity.search.children
        if child is not None:
            assert {child.parent, *child.columns, *child.order_by} <= set(child.table.c.keys())


def test_kind_lists_come_from_the_registry() -> None:
    assert registry.FEED_KINDS == ("record", "node", "decision", "cooperation-request", "offer")
    assert registry.SEARCH_KINDS == ("record", "node", "decision", "cooperation-request")
    offer = registry.searchable("offer")
    assert offer is not None and offer.kind == "cooperation-request"
    assert registry.searchable("token") is None
    assert documents.doc_key("offer", "x") == "offer-x"


@pytest.mark.parametrize(
    ("vocabulary", "enum"),
    [
        ("record-types", RecordType),
        ("record-statuses", RecordStatus),
        ("node-statuses", NodeStatus),
        ("decision-statuses", DecisionStatus),
        ("decision-bodies", DecisionBody),
        ("request-statuses", RequestStatus),
        ("offer-statuses", OfferStatus),
    ],
)
def test_vocabularies_match_their_enums(vocabulary: str, enum: object) -> None:
    assert tuple(t["code"] for t in load_vocabularies()[vocabulary]) == values(enum)
