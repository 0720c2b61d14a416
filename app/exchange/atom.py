"""Atom (RFC 4287) feeds of published records, newest public change first, paged by RFC 5005 links, with
withdrawals as RFC 6721 `at:deleted-entry`. Built with lxml over the change log's heads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from app.exchange.oai import _clean  # one definition of the text XML can carry
from app.models.common import pick_lang
from app.services.harvest import Head

MEDIA_TYPE = "application/atom+xml"
ATOM_NS = "http://www.w3.org/2005/Atom"
AT_NS = "http://purl.org/atompub/tombstones/1.0"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
A = f"{{{ATOM_NS}}}"


@dataclass(frozen=True)
class Feed:
    """One page of a feed."""

    self_url: str
    first_url: str
    next_url: str | None
    site_url: str
    title: str
    lang: str | None
    author: str


def _time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_id(head: Head) -> str:
    """Stable across revisions and after a withdrawal."""
    return f"urn:uuid:{head.entity_id}"


def _sub(parent: etree._Element, tag: str, text: Any = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = _clean(text)
    return el


def _lang_of(value: dict[str, str] | None, lang: str | None) -> str | None:
    if not value:
        return None
    if lang and lang in value:
        return lang
    return "en" if "en" in value else next(iter(value))


def render(feed: Feed, heads: list[Head]) -> bytes:
    """The feed document for one page of heads (newest first)."""
    root = etree.Element(A + "feed", nsmap={None: ATOM_NS, "at": AT_NS})  # type: ignore[dict-item]
    if feed.lang:
        root.set(XML_LANG, feed.lang)
    _sub(root, A + "id", feed.first_url)
    _sub(root, A + "title", feed.title)
    newest = max((h.at for h in heads), default=datetime.now(UTC))
    _sub(root, A + "updated", _time(newest))
    author = _sub(root, A + "author")
    _sub(author, A + "name", feed.author)
    _sub(root, A + "link", rel="self", href=feed.self_url, type=MEDIA_TYPE)
    _sub(root, A + "link", rel="first", href=feed.first_url, type=MEDIA_TYPE)
    if feed.next_url:
        _sub(root, A + "link", rel="next", href=feed.next_url, type=MEDIA_TYPE)
    for head in heads:
        if head.deleted:
            gone = _sub(root, f"{{{AT_NS}}}deleted-entry", ref=entry_id(head), when=_time(head.at))
            _sub(gone, f"{{{AT_NS}}}comment", "withdrawn by its publisher")
        else:
            _entry(root, feed, head)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _entry(root: etree._Element, feed: Feed, head: Head) -> None:
    data = head.data or {}
    e = _sub(root, A + "entry")
    _sub(e, A + "id", entry_id(head))
    title_lang = _lang_of(data.get("title"), feed.lang)
    _sub(e, A + "title", pick_lang(data.get("title"), feed.lang) or data.get("uid"), type="text",
         **({XML_LANG: title_lang} if title_lang else {}))  # fmt: skip
    _sub(e, A + "updated", _time(head.at))
    if data.get("published_at"):
        _sub(e, A + "published", _time(data["published_at"]))
    summary = pick_lang(data.get("summary"), feed.lang)
    if summary:
        summary_lang = _lang_of(data.get("summary"), feed.lang) or ""
        _sub(e, A + "summary", summary, type="text", **{XML_LANG: summary_lang})
    author = _sub(e, A + "author")
    _sub(author, A + "name", data.get("party") or feed.author)
    api = f"{feed.site_url}/api/v1/records/{head.entity_id}"
    _sub(e, A + "link", rel="alternate", type="application/json", href=api)
    _sub(e, A + "link", rel="alternate", type="application/ld+json", href=api)
    for link in data.get("links") or ():
        if link.get("url"):
            _sub(
                e,
                A + "link",
                rel="related",
                href=str(link["url"]),
                **({"title": link["name"]} if link.get("name") else {}),
            )
    vocab = f"{feed.site_url}/api/v1/vocabularies/"
    _sub(e, A + "category", term=data["type"], scheme=vocab + "record-types")
    for field, name in (
        ("subjects", "cbd-subjects"),
        ("gbf_targets", "gbf-targets"),
        ("aichi_targets", "aichi-targets"),
    ):
        for term in data.get(field) or ():
            _sub(e, A + "category", term=term, scheme=vocab + name)
