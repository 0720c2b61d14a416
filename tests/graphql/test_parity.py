"""GraphQL types and inputs carry exactly the fields of the pydantic schemas they mirror.

Strawberry's pydantic integration cannot take `Literal` or `dict[str, str]`, so the GraphQL types are written
by hand; this test keeps them honest. A field added on one side only fails here, naming the field and the file.
"""

from __future__ import annotations

import inspect

import pytest
from pydantic import BaseModel

from app.graphql.types import cooperation, decisions, nodes, records
from app.graphql.types import search as graphql_search
from app.models import cooperation as m_cooperation
from app.models import decision as m_decision
from app.models import node as m_node
from app.models import record as m_record
from app.search import schemas as rest_search

# GraphQL-only fields, each derived from a pydantic field: lstrings in one language (`lang:` with fallback)
# and references resolved through a DataLoader. The one explicit rename map; everything else matches by name.
DERIVED = {
    "title_text": "title",
    "summary_text": "summary",
    "body_text": "body",
    "name_text": "name",
    "description_text": "description",
    "problem_text": "problem",
    "objectives_text": "objectives",
    "party_ref": "party",
    "provider_party_ref": "provider_party",
}

# GraphQL-only nested lists that REST serves as a sub-resource of the same entity.
SUBRESOURCES = {("CooperationRequest", "matches"): "/api/v1/cooperation-requests/{id}/matches"}

PAIRS = [
    (records.Record, m_record.RecordPublic),
    (records.RecordInput, m_record.RecordCreate),
    (records.RecordPatch, m_record.RecordUpdate),
    (nodes.NationalNode, m_node.NodePublic),
    (nodes.NodeInput, m_node.NodeCreate),
    (nodes.NodePatch, m_node.NodeUpdate),
    (decisions.Decision, m_decision.DecisionPublic),
    (decisions.DecisionInput, m_decision.DecisionCreate),
    (decisions.DecisionPatch, m_decision.DecisionUpdate),
    (cooperation.CooperationRequest, m_cooperation.RequestPublic),
    (cooperation.RequestInput, m_cooperation.RequestCreate),
    (cooperation.RequestPatch, m_cooperation.RequestUpdate),
    (cooperation.Offer, m_cooperation.OfferPublic),
    (cooperation.OfferInput, m_cooperation.OfferCreate),
    (cooperation.OfferPatch, m_cooperation.OfferUpdate),
    (graphql_search.SearchHit, rest_search.SearchHit),
]


def _graphql_fields(graphql_type: type) -> set[str]:
    return {f.python_name for f in graphql_type.__strawberry_definition__.fields}  # type: ignore[attr-defined]


@pytest.mark.parametrize(("graphql_type", "schema"), PAIRS, ids=lambda t: t.__name__)
def test_graphql_and_pydantic_fields_match(graphql_type: type, schema: type[BaseModel]) -> None:
    graphql = _graphql_fields(graphql_type)
    pydantic = set(schema.model_fields)
    graphql -= {f for (t, f) in SUBRESOURCES if t == graphql_type.__name__}
    derived = {g for g in graphql if g in DERIVED}
    assert all(DERIVED[g] in pydantic for g in derived), f"{graphql_type.__name__}: derived from a missing field"
    missing = sorted(pydantic - (graphql - derived))
    extra = sorted(graphql - derived - pydantic)
    assert not missing, (
        f"{schema.__name__} has {missing} but GraphQL {graphql_type.__name__} "
        f"({inspect.getfile(graphql_type)}) lacks them"
    )
    assert not extra, (
        f"GraphQL {graphql_type.__name__} has {extra} but {schema.__name__} "
        f"({inspect.getfile(schema)}) lacks them (or add them to DERIVED in {__file__})"
    )
