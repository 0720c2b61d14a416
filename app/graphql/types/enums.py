"""GraphQL enums of the model `Literal`s (one list of values each, written in app/models).

Member names are the values in upper case with `-` as `_` (`in-development` → `IN_DEVELOPMENT`); services
receive and return the values. Fields keep `str` as their Python type and name the enum as `graphql_type`, so
resolvers pass service dicts through unchanged."""

from __future__ import annotations

import enum
from typing import Any

import strawberry

from app.models import cooperation, decision, node, opportunity, record
from app.models.derive import values


def enum_of(name: str, literal: Any, description: str) -> Any:
    """A Strawberry enum whose values are those of `literal`."""
    members = {v.upper().replace("-", "_"): v for v in values(literal)}
    cls: Any = enum.Enum(name, members)  # type: ignore[misc]  # a functional enum with a computed name
    return strawberry.enum(cls, description=description)


def value_of(member: Any) -> Any:
    """An enum argument as the value the services take (None and plain values pass through)."""
    return member.value if isinstance(member, enum.Enum) else member


RecordType = enum_of("RecordType", record.RecordType, "A CHM record type (vocabulary record-types)")
RecordStatus = enum_of("RecordStatus", record.RecordStatus, "Where a record is in the CHM life cycle")
DraftStatus = enum_of("DraftStatus", record.DraftStatus, "The status of a working draft over a published record")
NodeStatus = enum_of("NodeStatus", node.NodeStatus, "The state of a national node")
DecisionStatus = enum_of("DecisionStatus", decision.DecisionStatus, "Whether a decision is in force")
RequestStatus = enum_of("RequestStatus", cooperation.RequestStatus, "Where a cooperation request stands")
OfferStatus = enum_of("OfferStatus", cooperation.OfferStatus, "Where an offer stands")
OfferAnswer = enum_of("OfferAnswer", cooperation.OfferAnswer, "The requester's answer to an offer")
OpportunityStatus = enum_of("OpportunityStatus", opportunity.OpportunityStatus, "Whether an opportunity is open")
