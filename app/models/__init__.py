"""SQLModel tables and API schemas, one module per aggregate."""

from sqlmodel import SQLModel

from app.models.change import Change, OutboxEntry
from app.models.cooperation import CooperationOffer, CooperationRequest
from app.models.decision import Decision, DecisionParagraph
from app.models.matching import CooperationMatch
from app.models.node import NationalNode
from app.models.opportunity import Opportunity
from app.models.party import Party, VocabularyTerm
from app.models.ratelimit import RateLimitBucket
from app.models.record import Record, RecordDraft, RecordRevision
from app.models.token import ApiToken, AuditEvent
from app.models.webhook import WebhookDelivery, WebhookSubscription, WebhookWorkerBeat

metadata = SQLModel.metadata

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Change",
    "CooperationMatch",
    "CooperationOffer",
    "CooperationRequest",
    "Decision",
    "DecisionParagraph",
    "NationalNode",
    "Opportunity",
    "OutboxEntry",
    "Party",
    "RateLimitBucket",
    "Record",
    "RecordDraft",
    "RecordRevision",
    "VocabularyTerm",
    "WebhookDelivery",
    "WebhookSubscription",
    "WebhookWorkerBeat",
    "metadata",
]
