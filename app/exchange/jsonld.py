"""JSON-LD (schema.org) for records, decisions, national nodes and Parties.

The `@context` is inline (schema.org as `@vocab`), so a processor expands a document without fetching
anything. Text people read becomes language-tagged values (`{"@value": ..., "@language": "fr"}`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from app.models.decision import DecisionPublic
from app.models.node import NodePublic
from app.models.party import PartyPublic
from app.models.record import RecordPublic

MEDIA_TYPE = "application/ld+json"
SCHEMA = "https://schema.org/"
CONTEXT: dict[str, Any] = {
    "@vocab": SCHEMA,
    "url": {"@type": "@id"},
    "sameAs": {"@type": "@id"},
    "relatedLink": {"@type": "@id"},
    "additionalType": {"@type": "@id"},
    "inDefinedTermSet": {"@type": "@id"},
}

# schema.org type of each record type
RECORD_TYPES: dict[str, str] = {
    "resource": "CreativeWork",
    "news": "NewsArticle",
    "event": "Event",
    "case-study": "Article",
    "project": "Project",
    "national-report": "Report",
    "nbsap": "Report",
    "national-target": "CreativeWork",
    "organization": "Organization",
    "expert": "Person",
}
LEGAL_FORCE = {"active": "InForce", "elapsed": "NotInForce", "superseded": "NotInForce", "retired": "NotInForce"}
TERM_SETS = {"GBF-TARGET": "gbf-targets", "AICHI-TARGET": "aichi-targets", "CBD-SUBJECT": "cbd-subjects"}


def lang_values(value: dict[str, str] | None) -> list[dict[str, str]] | None:
    """An lstring as language-tagged values."""
    if not value:
        return None
    return [{"@value": text, "@language": lang} for lang, text in value.items()]


def _when(value: Any) -> str | None:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _terms(site: str, codes: list[str] | None) -> list[dict[str, Any]]:
    out = []
    for code in codes or ():
        vocab = next((v for prefix, v in TERM_SETS.items() if code.startswith(prefix)), None)
        term: dict[str, Any] = {"@type": "DefinedTerm", "termCode": code, "name": code}
        if vocab:
            term["inDefinedTermSet"] = f"{site}/api/v1/vocabularies/{vocab}"
        out.append(term)
    return out


def _party(site: str, code: str | None) -> dict[str, Any] | None:
    if not code:
        return None
    return {"@id": f"{site}/api/v1/parties/{code}", "@type": "Organization" if code == "EU" else "Country",
            "identifier": code}  # fmt: skip


def _compact(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v not in (None, [], {})}


def record(site: str, data: dict[str, Any]) -> dict[str, Any]:
    url = f"{site}/api/v1/records/{data['id']}"
    return _compact({
        "@context": CONTEXT, "@id": url, "@type": RECORD_TYPES.get(data["type"], "CreativeWork"),
        "additionalType": f"{site}/api/v1/vocabularies/record-types#{data['type']}",
        "identifier": data.get("uid") or str(data["id"]), "url": url,
        "name": lang_values(data.get("title")), "description": lang_values(data.get("summary")),
        "text": lang_values(data.get("body")), "inLanguage": data.get("languages"), "keywords": data.get("keywords"),
        "about": _terms(site, [*(data.get("subjects") or ()), *(data.get("gbf_targets") or ()),
                               *(data.get("aichi_targets") or ())]),
        "spatialCoverage": [{"@type": "Country", "identifier": c} for c in data.get("countries") or ()],
        "publisher": _party(site, data.get("party")), "version": data.get("revision") or None,
        "datePublished": _when(data.get("publication_date") or data.get("published_at")),
        "dateCreated": _when(data.get("created_at")), "dateModified": _when(data.get("updated_at")),
        "relatedLink": [link["url"] for link in data.get("links") or () if link.get("url")],
    })  # fmt: skip


def decision(site: str, data: dict[str, Any]) -> dict[str, Any]:
    url = f"{site}/api/v1/decisions/{data['code']}"
    meeting = data.get("meeting") or {}
    parts = [
        _compact({"@type": "Legislation", "@id": f"{url}#para-{i}", "position": i,
                  "legislationIdentifier": f"{data['symbol']}, para. {p['number']}" if p.get("number") else None,
                  "identifier": p.get("number"), "name": p.get("section"), "genre": p.get("type"),
                  "text": lang_values(p.get("text")), "legislationLegalForce": p.get("status")})
        for i, p in enumerate(data.get("paragraphs") or (), start=1)
    ]  # fmt: skip
    return _compact({
        "@context": CONTEXT, "@id": url, "@type": "Legislation", "url": data.get("url") or url,
        "identifier": data["code"], "legislationIdentifier": data["symbol"], "name": lang_values(data.get("title")),
        "legislationType": "decision", "legislationDate": _when(data.get("adopted_on")),
        "legislationLegalForce": LEGAL_FORCE.get(data.get("status") or ""),
        "legislationPassedBy": {"@type": "Organization", "name": data["body"]},
        "recordedAt": _compact({"@type": "Event", "identifier": meeting.get("code"), "location": meeting.get("place"),
                                "startDate": meeting.get("start"), "endDate": meeting.get("end")}) or None,
        "about": _terms(site, [*(data.get("subjects") or ()), *(data.get("gbf_targets") or ()),
                               *(data.get("aichi_targets") or ())]),
        "hasPart": parts, "dateModified": _when(data.get("updated_at")),
    })  # fmt: skip


def node(site: str, data: dict[str, Any]) -> dict[str, Any]:
    url = f"{site}/api/v1/nodes/{data['id']}"
    focal = data.get("focal_point") or {}
    publisher = _party(site, data.get("party")) or {}
    return _compact({
        "@context": CONTEXT, "@id": url, "@type": "WebSite", "url": str(data["url"]), "sameAs": url,
        "name": lang_values(data.get("name")), "description": lang_values(data.get("description")),
        "inLanguage": data.get("languages"), "dateCreated": _when(data.get("created_at")),
        "dateModified": _when(data.get("updated_at")),
        "publisher": _compact({
            "@type": "GovernmentOrganization", "name": f"{data.get('party')} national clearing-house mechanism",
            "areaServed": publisher or None,
            "contactPoint": _compact({"@type": "ContactPoint", "name": focal.get("name"), "email": focal.get("email"),
                                      "contactType": focal.get("organization")}) if focal else None,
        }),
    })  # fmt: skip


def party(site: str, data: dict[str, Any]) -> dict[str, Any]:
    ref = _party(site, data["code"]) or {}
    return _compact({"@context": CONTEXT, **ref, "name": lang_values(data.get("name")),
                     "url": f"{site}/api/v1/parties/{data['code']}"})  # fmt: skip


SERIALIZERS: dict[type[BaseModel], Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    RecordPublic: record,
    DecisionPublic: decision,
    NodePublic: node,
    PartyPublic: party,
}


def item_list(site: str, url: str, docs: list[dict[str, Any]], next_url: str | None) -> dict[str, Any]:
    """A page of a list as a schema:ItemList (each item keeps its own @id and @type)."""
    items = [{"@type": "ListItem", "position": i, "item": {k: v for k, v in d.items() if k != "@context"}}
             for i, d in enumerate(docs, start=1)]  # fmt: skip
    return _compact({"@context": CONTEXT, "@id": url, "@type": "ItemList", "numberOfItems": len(items),
                     "itemListElement": items, "relatedLink": next_url})  # fmt: skip
