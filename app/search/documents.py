"""Pure functions: one published entity (a row mapping) → one search document.

A document is flat and engine-neutral: `key` (primary key, `{kind}-{id}`), `kind`, `id`, `uid`, `party`, `type`,
`revision`, `title`/`summary`/`text` (lstrings), `keywords`, `subjects`, `gbf_targets`, `languages`, `date`
(ISO date) and `updated_at` (ISO date-time).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from app.models.common import LANGS
from app.models.record import make_uid
from app.search.backend import Document

# Long bodies are cut: ranking and highlights need the opening, and engines cap indexed positions anyway.
MAX_TEXT_CHARS = 10_000


def doc_key(kind: str, entity_id: Any) -> str:
    """The primary key of an entity's document (Meilisearch allows [A-Za-z0-9_-])."""
    return f"{kind}-{entity_id}"


def _lstring(value: Mapping[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (value or {}).items() if k in LANGS and isinstance(v, str) and v.strip()}


def _join(parts: Iterable[Mapping[str, str] | None], limit: int = MAX_TEXT_CHARS) -> dict[str, str]:
    """Concatenate several lstrings language by language, cut at `limit` characters."""
    out: dict[str, list[str]] = {}
    for part in parts:
        for lang, text in _lstring(part).items():
            out.setdefault(lang, []).append(text)
    return {lang: "\n\n".join(texts)[:limit] for lang, texts in out.items()}


def _iso(value: date | datetime | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _day(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    return (value.date() if isinstance(value, datetime) else value).isoformat()


def _base(kind: str, row: Mapping[Any, Any]) -> Document:
    return {"key": doc_key(kind, row["id"]), "kind": kind, "id": str(row["id"]), "uid": None,
            "party": row.get("party"), "type": None, "revision": None, "title": {}, "summary": {}, "text": {},
            "keywords": [], "subjects": list(row.get("subjects") or []),
            "gbf_targets": list(row.get("gbf_targets") or []), "languages": [], "date": None,
            "updated_at": _iso(row.get("updated_at"))}  # fmt: skip


def _languages(doc: Document, declared: Iterable[str] | None = None) -> list[str]:
    present = set(doc["title"]) | set(doc["summary"]) | set(doc["text"]) | set(declared or ())
    return [lang for lang in LANGS if lang in present]


def record_document(row: Mapping[Any, Any], children: Iterable[Mapping[Any, Any]] = ()) -> Document:
    """A published record head row (the public content)."""
    doc = _base("record", row)
    doc.update(
        uid=make_uid(row["type"], row["party"], row["serial"], row["revision"]),
        type=row["type"],
        revision=row["revision"],
        title=_lstring(row["title"]),
        summary=_join([row.get("summary")]),
        text=_join([row.get("body")]),
        keywords=list(row.get("keywords") or []),
        date=_day(row.get("publication_date") or row.get("published_at")),
    )
    doc["languages"] = _languages(doc, row.get("languages"))
    return doc


def node_document(row: Mapping[Any, Any], children: Iterable[Mapping[Any, Any]] = ()) -> Document:
    """A national CHM node."""
    doc = _base("node", row)
    doc.update(
        title=_lstring(row["name"]),
        summary=_join([row.get("description")]),
        keywords=[k for k in (row.get("platform"), row.get("url")) if k],
        date=_day(row.get("created_at")),
    )
    doc["languages"] = _languages(doc, row.get("languages"))
    return doc


def decision_document(row: Mapping[Any, Any], paragraphs: Iterable[Mapping[Any, Any]] = ()) -> Document:
    """A COP / CP-MOP / NP-MOP decision with its paragraphs as text; `type` is the body."""
    doc = _base("decision", row)
    doc.update(
        uid=row["code"],
        party=None,
        type=row["body"],
        title=_lstring(row["title"]),
        text=_join(p.get("text") for p in paragraphs),
        keywords=[row["code"], row["symbol"]],
        date=_day(row.get("adopted_on")),
    )
    doc["languages"] = _languages(doc)
    return doc


def request_document(row: Mapping[Any, Any], offers: Iterable[Mapping[Any, Any]] = ()) -> Document:
    """A cooperation request; its offers' descriptions are part of its text."""
    doc = _base("cooperation-request", row)
    doc.update(
        title=_lstring(row["title"]),
        summary=_join([row.get("problem")]),
        text=_join([row.get("objectives"), *(o.get("description") for o in offers)]),
        keywords=list(row.get("assistance_types") or []),
        date=_day(row.get("start_date") or row.get("created_at")),
    )
    doc["languages"] = _languages(doc)
    return doc
