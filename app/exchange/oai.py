"""OAI-PMH 2.0: the six verbs over the change log's heads (app/services/harvest.py), XML built with lxml.

Items are published records, decisions, national nodes and cooperation requests. Identifiers are stable
across revisions (`oai:{repository}:CHM-RES-BR-000123` for a record, `oai:{repository}:{kind}/{uuid}` for
the others); the datestamp is the entity's last public change; a withdrawal or a delete leaves a
persistent `<header status="deleted">`. Resumption tokens are stateless and signed: they carry the
request's arguments and the seq the walk stopped at, never expire, and survive concurrent writes.
"""

from __future__ import annotations

import dataclasses
import re
import types
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from lxml import etree
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.common import LANGS
from app.models.record import RECORD_TYPE_ABBR
from app.reference import load_vocabularies
from app.services import harvest, records, reference, signing
from app.services.harvest import HarvestFilter, Head

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
OAI_XSD = "http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd"
OAI_DC_NS = "http://www.openarchives.org/OAI/2.0/oai_dc/"
OAI_DC_XSD = "http://www.openarchives.org/OAI/2.0/oai_dc.xsd"
DC_NS = "http://purl.org/dc/elements/1.1/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ID_NS = "http://www.openarchives.org/OAI/2.0/oai-identifier"
ID_XSD = "http://www.openarchives.org/OAI/2.0/oai-identifier.xsd"
# The native format: the full public representation of an entity (schema served at /oai/chm.xsd).
CHM_NS = "urn:x-chm-api:oai:native:1.0"
CHM_PREFIX = "chm"
SCHEMA_PATH = "/oai/chm.xsd"

VERBS = ("Identify", "ListMetadataFormats", "ListSets", "ListIdentifiers", "ListRecords", "GetRecord")
_LIST_ARGS = {"metadataPrefix", "from", "until", "set"}
ARGS: dict[str, tuple[set[str], set[str]]] = {  # verb -> (required, optional) when no resumptionToken
    "Identify": (set(), set()),
    "ListMetadataFormats": (set(), {"identifier"}),
    "ListSets": (set(), set()),
    "ListIdentifiers": ({"metadataPrefix"}, {"from", "until", "set"}),
    "ListRecords": ({"metadataPrefix"}, {"from", "until", "set"}),
    "GetRecord": ({"identifier", "metadataPrefix"}, set()),
}
RESUMABLE = {"ListSets", "ListIdentifiers", "ListRecords"}
TOKEN_PURPOSE = "oai-resumption"  # noqa: S105 (a signing purpose, not a secret)
SET_FAMILIES = ("party", "type", "kind", "gbf-target")

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SECOND = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
# Characters XML 1.0 cannot carry; stored text may hold them (e.g. a vertical tab pasted from a word processor).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class OAIError(Exception):
    """A protocol error: answered as `<error code=...>` with HTTP 200."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Repository:
    """What Identify says and how URLs are built."""

    base_url: str  # the OAI-PMH endpoint, e.g. https://chm.example.org/oai
    site_url: str  # where /api/v1 lives
    identifier: str  # repositoryIdentifier (a domain name)
    name: str
    admin_email: str
    rights: str
    page_size: int = 500


@dataclass(frozen=True)
class Format:
    prefix: str
    schema: str
    namespace: str


def formats(repo: Repository) -> list[Format]:
    return [
        Format("oai_dc", OAI_DC_XSD, OAI_DC_NS),
        Format(CHM_PREFIX, repo.site_url + SCHEMA_PATH, CHM_NS),
    ]


# --- small helpers ---------------------------------------------------------------------------------------
# A ListRecords page is ~25 elements a record; these helpers are its hot path (bench/harvest.py). Tags are
# built once, elements are created in place under their parent (never detached and moved, which makes lxml
# reconcile the namespaces of the whole subtree), and plain ASCII text is handed to lxml as it is.

_SubElement = etree.SubElement


def _clean(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _text(parent: etree._Element, tag: str, value: Any, attrib: dict[str, str] | None = None) -> etree._Element:
    """A child element holding `value` as text (None: empty)."""
    el = _SubElement(parent, tag, attrib) if attrib else _SubElement(parent, tag)
    if value is not None:
        if type(value) is str and value.isascii():
            # lxml refuses exactly the ASCII characters _NOT_XML removes (controls but tab, LF, CR)
            try:
                el.text = value
                return el
            except ValueError:
                pass
        el.text = _clean(value)
    return el


def _sub(parent: etree._Element, tag: str, text: Any = None, **attrib: str) -> etree._Element:
    return _text(parent, tag, text, attrib)


def datestamp(at: datetime) -> str:
    """Seconds granularity, UTC."""
    return at.astimezone(UTC).isoformat(timespec="seconds")[:19] + "Z"  # isoformat: ~4x cheaper than strftime


def parse_datestamp(value: str, name: str, *, until: bool) -> datetime:
    """YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ; a day `until` means its last second."""
    try:
        if _DAY.match(value):
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
            return day.replace(hour=23, minute=59, second=59) if until else day
        if _SECOND.match(value):
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        pass
    raise OAIError("badArgument", f"{name} must be YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ (UTC), not '{value}'")


def identifier(repo: Repository, head: Head) -> str:
    return f"oai:{repo.identifier}:{local_id(head)}"


def local_id(head: Head) -> str:
    if head.kind == "record" and head.ref:
        return head.ref["uid"]
    return f"{head.kind}/{head.entity_id}"


def set_specs(head: Head) -> list[str]:
    specs = [f"kind:{head.kind}"]
    party = head.party or (head.ref or {}).get("party")
    if party:
        specs.append(f"party:{party}")
    if head.kind == "record" and head.ref:
        specs.append(f"type:{head.ref['type']}")
    if head.data:
        specs.extend(f"gbf-target:{t}" for t in head.data.get("gbf_targets") or ())
    return specs


# --- metadata ---------------------------------------------------------------------------------------------


def _lstring(parent: etree._Element, tag: str, value: dict[str, str] | None) -> None:
    if value:
        for lang, text in value.items():
            _text(parent, tag, text, {XML_LANG: lang})


def _urls(repo: Repository, head: Head) -> list[str]:
    api = repo.site_url + "/api/v1"
    data = head.data or {}
    if head.kind == "record":
        return [f"{api}/records/{head.entity_id}"]
    if head.kind == "decision":
        own = [data["url"]] if data.get("url") else []
        return [f"{api}/decisions/{data.get('code', head.entity_id)}", *own]
    if head.kind == "node":
        return (
            [str(data["url"]), f"{api}/nodes/{head.entity_id}"]
            if data.get("url")
            else [f"{api}/nodes/{head.entity_id}"]
        )
    return [f"{api}/{COLLECTIONS.get(head.kind, head.kind + 's')}/{head.entity_id}"]


DC_TYPES = {"node": "InteractiveResource"}  # DCMI type; everything else is Text
COLLECTIONS = {"cooperation-request": "cooperation-requests", "opportunity": "opportunities"}  # REST path of a kind
_DC_ROOT = f"{{{OAI_DC_NS}}}dc"
_DC_NSMAP = {"oai_dc": OAI_DC_NS, "dc": DC_NS, "xsi": XSI_NS}
_DC_ATTRIB = {f"{{{XSI_NS}}}schemaLocation": f"{OAI_DC_NS} {OAI_DC_XSD}"}
DC = types.SimpleNamespace(**{t: f"{{{DC_NS}}}{t}" for t in (
    "title", "description", "publisher", "subject", "date", "type", "language", "coverage", "identifier", "relation",
    "rights")})  # fmt: skip
_DC_SUBJECTS = ("subjects", "gbf_targets", "aichi_targets", "keywords", "assistance_types")


def oai_dc(parent: etree._Element, repo: Repository, head: Head) -> None:
    """Dublin Core: every language of titles and descriptions, subjects and targets, coverage, rights, URL."""
    data = head.data or {}
    kind = head.kind
    root = _SubElement(parent, _DC_ROOT, _DC_ATTRIB, nsmap=_DC_NSMAP)
    _lstring(root, DC.title, data.get("title") or data.get("name"))
    if kind == "record":
        _lstring(root, DC.description, data.get("summary"))
    elif kind == "node":
        _lstring(root, DC.description, data.get("description"))
    elif kind == "cooperation-request":
        _lstring(root, DC.description, data.get("problem"))
        _lstring(root, DC.description, data.get("objectives"))
    party = data.get("party")
    if party:
        _text(root, DC.publisher, party)
    if kind == "decision":
        _text(root, DC.publisher, data.get("body"))
    for field in _DC_SUBJECTS:
        for term in data.get(field) or ():
            _text(root, DC.subject, term)
    when = data.get("publication_date") or data.get("adopted_on") or data.get("published_at") or head.at
    _text(root, DC.date, when.date() if isinstance(when, datetime) else when)
    _text(root, DC.type, DC_TYPES.get(kind, "Text"))
    _text(root, DC.type, data.get("type") if kind == "record" else kind)
    for lang in data.get("languages") or ():
        _text(root, DC.language, lang)
    for country in data.get("countries") or ():
        _text(root, DC.coverage, country)
    for url in _urls(repo, head):
        _text(root, DC.identifier, url)
    if data.get("uid"):
        _text(root, DC.identifier, data["uid"])
    if data.get("symbol"):
        _text(root, DC.identifier, data["symbol"])
    for link in data.get("links") or ():
        _text(root, DC.relation, link.get("url"))
    _text(root, DC.rights, repo.rights)


def _is_lstring(value: dict[str, Any]) -> bool:
    return bool(value) and all(k in LANGS and isinstance(v, str) for k, v in value.items())


_CHM_TAGS: dict[str, str] = {}


def _native_value(parent: etree._Element, name: str, value: Any) -> None:
    if value is None:
        return
    tag = _CHM_TAGS.get(name)
    if tag is None:
        tag = _CHM_TAGS.setdefault(name, f"{{{CHM_NS}}}{name}")
    if isinstance(value, dict):
        if _is_lstring(value):
            _lstring(parent, tag, value)
            return
        el = _SubElement(parent, tag)
        for k, v in value.items():
            _native_value(el, k, v)
    elif isinstance(value, list | tuple):
        el = _SubElement(parent, tag)
        for item in value:
            _native_value(el, "item", item)
    else:
        _text(parent, tag, value)


_CHM_ROOT = f"{{{CHM_NS}}}entity"
_CHM_NSMAP = {CHM_PREFIX: CHM_NS, "xsi": XSI_NS}


def native(parent: etree._Element, repo: Repository, head: Head) -> None:
    """The full public representation: each field an element, lstrings one element per language."""
    root = _SubElement(parent, _CHM_ROOT, {f"{{{XSI_NS}}}schemaLocation": f"{CHM_NS} {repo.site_url}{SCHEMA_PATH}",
                                            "kind": head.kind, "id": head.entity_id}, nsmap=_CHM_NSMAP)  # fmt: skip
    for key, value in (head.data or {}).items():
        _native_value(root, key, value)


# (the <metadata> element to fill, repository, head)
SERIALIZERS: dict[str, Callable[[etree._Element, Repository, Head], None]] = {"oai_dc": oai_dc, CHM_PREFIX: native}


# --- sets -------------------------------------------------------------------------------------------------


async def _set_filter(conn: AsyncConnection, spec: str | None) -> HarvestFilter | None:
    """The filter a setSpec selects; None when the set is well-formed but cannot hold anything."""
    if spec is None:
        return HarvestFilter()
    family, _, value = spec.partition(":")
    if family not in SET_FAMILIES or (not value and ":" in spec):
        raise OAIError("badArgument", f"unknown set '{spec}'; ListSets names them ({', '.join(SET_FAMILIES)})")
    if not value:
        return {"party": HarvestFilter(with_party=True),
                "type": HarvestFilter(kinds=("record",)),
                "kind": HarvestFilter(),
                "gbf-target": HarvestFilter(targeted=True)}[family]  # fmt: skip
    if family == "party":
        return HarvestFilter(party=value) if value in await reference.party_codes(conn) else None
    if family == "type":
        return HarvestFilter(type=value) if value in RECORD_TYPE_ABBR else None
    if family == "kind":
        return HarvestFilter(kinds=(value,)) if value in harvest.KINDS else None
    return HarvestFilter(gbf_target=value) if value in await reference.term_codes(conn, "gbf-targets") else None


def _sets() -> Iterable[tuple[str, str, dict[str, str] | None]]:
    vocab = load_vocabularies()
    yield "kind", "By kind of entity", None
    for kind in harvest.KINDS:
        yield f"kind:{kind}", kind.replace("-", " ").capitalize() + "s", None
    yield "party", "By Party (publisher)", None
    from app.reference import load_parties

    for party in load_parties():
        yield f"party:{party['code']}", party["name"].get("en") or party["code"], party["name"]
    yield "type", "Records by type", None
    for term in vocab["record-types"]:
        yield f"type:{term['code']}", term["title"].get("en", term["code"]), term["title"]
    yield "gbf-target", "By Kunming-Montreal Global Biodiversity Framework target", None
    for term in vocab["gbf-targets"]:
        yield f"gbf-target:{term['code']}", f"{term['code']}: {term['title'].get('en', '')}", term.get("description")


# --- the verbs --------------------------------------------------------------------------------------------


def _parse(params: list[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    seen: dict[str, str] = {}
    for key, value in params:
        if key in seen:
            if key == "verb":
                raise OAIError("badVerb", "the verb argument is repeated")
            raise OAIError("badArgument", f"the argument '{key}' is repeated")
        seen[key] = value
    verb = seen.pop("verb", None)
    if verb is None:
        raise OAIError("badVerb", "the verb argument is missing")
    if verb not in VERBS:
        raise OAIError("badVerb", f"'{verb}' is not an OAI-PMH verb ({', '.join(VERBS)})")
    if "resumptionToken" in seen:
        if verb not in RESUMABLE:
            raise OAIError("badArgument", f"{verb} takes no resumptionToken")
        if len(seen) > 1:
            raise OAIError("badArgument", "resumptionToken is an exclusive argument")
        return verb, seen
    required, optional = ARGS[verb]
    unknown = sorted(set(seen) - required - optional)
    if unknown:
        raise OAIError("badArgument", f"{verb} does not take {', '.join(unknown)}")
    missing = sorted(required - set(seen))
    if missing:
        raise OAIError("badArgument", f"{verb} needs {', '.join(missing)}")
    return verb, seen


class Response:
    """One OAI-PMH response document."""

    def __init__(self, repo: Repository, now: datetime) -> None:
        self.repo = repo
        self.root = etree.Element(f"{{{OAI_NS}}}OAI-PMH", nsmap={None: OAI_NS, "xsi": XSI_NS})  # type: ignore[dict-item]
        self.root.set(f"{{{XSI_NS}}}schemaLocation", f"{OAI_NS} {OAI_XSD}")
        _sub(self.root, f"{{{OAI_NS}}}responseDate", datestamp(now))
        self.request = _sub(self.root, f"{{{OAI_NS}}}request", repo.base_url)

    def el(self, parent: etree._Element, tag: str, text: Any = None, **attrib: str) -> etree._Element:
        return _sub(parent, f"{{{OAI_NS}}}{tag}", text, **attrib)

    def error(self, err: OAIError) -> None:
        self.el(self.root, "error", err.message, code=err.code)

    def bytes(self) -> bytes:
        return etree.tostring(self.root, xml_declaration=True, encoding="UTF-8")


async def respond(conn: AsyncConnection, repo: Repository, params: list[tuple[str, str]]) -> bytes:
    """Answer one OAI-PMH request (GET query or POST form arguments) with the response document."""
    out = Response(repo, datetime.now(UTC))
    try:
        verb, args = _parse(params)
    except OAIError as err:  # badVerb / badArgument: the request element carries no attributes
        out.error(err)
        return out.bytes()
    out.request.set("verb", verb)
    for key, value in args.items():
        out.request.set(key, value)
    try:
        await HANDLERS[verb](conn, out, args)
    except OAIError as err:
        if err.code == "badArgument":
            out.request.attrib.clear()
        out.error(err)
    return out.bytes()


async def _identify(conn: AsyncConnection, out: Response, args: dict[str, str]) -> None:
    repo = out.repo
    node = out.el(out.root, "Identify")
    out.el(node, "repositoryName", repo.name)
    out.el(node, "baseURL", repo.base_url)
    out.el(node, "protocolVersion", "2.0")
    out.el(node, "adminEmail", repo.admin_email)
    first = await harvest.earliest(conn)
    out.el(node, "earliestDatestamp", datestamp(first) if first else "1970-01-01T00:00:00Z")
    out.el(node, "deletedRecord", "persistent")
    out.el(node, "granularity", "YYYY-MM-DDThh:mm:ssZ")
    desc = out.el(node, "description")
    ident = etree.SubElement(desc, f"{{{ID_NS}}}oai-identifier", nsmap={None: ID_NS})  # type: ignore[dict-item]
    ident.set(f"{{{XSI_NS}}}schemaLocation", f"{ID_NS} {ID_XSD}")
    for tag, text in (("scheme", "oai"), ("repositoryIdentifier", repo.identifier), ("delimiter", ":"),
                      ("sampleIdentifier", f"oai:{repo.identifier}:CHM-RES-BR-000123")):  # fmt: skip
        _sub(ident, f"{{{ID_NS}}}{tag}", text)


async def _resolve(conn: AsyncConnection, repo: Repository, oai_id: str) -> Head:
    prefix = f"oai:{repo.identifier}:"
    missing = OAIError("idDoesNotExist", f"'{oai_id}' is not an identifier of this repository")
    if not oai_id.startswith(prefix):
        raise missing
    local = oai_id[len(prefix) :]
    head: Head | None = None
    if local.startswith("CHM-"):
        parts = local.split("-")
        if len(parts) == 4 and parts[1] in RECORD_TYPE_ABBR.values() and parts[3].isdigit():
            row = (await conn.execute(select(records.R.c.id).where(records.R.c.serial == int(parts[3]),
                                                                   records.R.c.party == parts[2]))).first()  # fmt: skip
            if row is not None:
                head = await harvest.head_of(conn, "record", str(row.id))
    else:
        kind, _, ident = local.partition("/")
        if kind in harvest.KINDS and kind != "record":
            try:
                head = await harvest.head_of(conn, kind, str(uuid.UUID(ident)))
            except ValueError:
                head = None
    if head is None or local_id(head) != local:
        raise missing
    return head


async def _list_formats(conn: AsyncConnection, out: Response, args: dict[str, str]) -> None:
    if "identifier" in args:
        await _resolve(conn, out.repo, args["identifier"])
    node = out.el(out.root, "ListMetadataFormats")
    for fmt in formats(out.repo):
        f = out.el(node, "metadataFormat")
        out.el(f, "metadataPrefix", fmt.prefix)
        out.el(f, "schema", fmt.schema)
        out.el(f, "metadataNamespace", fmt.namespace)


async def _list_sets(conn: AsyncConnection, out: Response, args: dict[str, str]) -> None:
    if "resumptionToken" in args:
        raise OAIError("badResumptionToken", "ListSets answers in one response; this token was not issued by it")
    node = out.el(out.root, "ListSets")
    for spec, name, description in _sets():
        s = out.el(node, "set")
        out.el(s, "setSpec", spec)
        out.el(s, "setName", name)
        if description:
            desc = out.el(s, "setDescription")
            dc = etree.SubElement(desc, f"{{{OAI_DC_NS}}}dc", nsmap={"oai_dc": OAI_DC_NS, "dc": DC_NS})
            _lstring(dc, f"{{{DC_NS}}}description", description)


_O = types.SimpleNamespace(**{t: f"{{{OAI_NS}}}{t}" for t in ("record", "header", "identifier", "datestamp",
                                                                 "setSpec", "metadata")})  # fmt: skip
_DELETED = {"status": "deleted"}


def _header(out: Response, parent: etree._Element, head: Head) -> None:
    h = _SubElement(parent, _O.header, _DELETED) if head.deleted else _SubElement(parent, _O.header)
    _text(h, _O.identifier, identifier(out.repo, head))
    _text(h, _O.datestamp, datestamp(head.at))
    for spec in set_specs(head):
        _text(h, _O.setSpec, spec)


def _record(out: Response, parent: etree._Element, head: Head, prefix: str) -> None:
    rec = _SubElement(parent, _O.record)
    _header(out, rec, head)
    if not head.deleted:
        SERIALIZERS[prefix](_SubElement(rec, _O.metadata), out.repo, head)


def _check_prefix(repo: Repository, prefix: str) -> None:
    if prefix not in SERIALIZERS:
        raise OAIError("cannotDisseminateFormat", f"no metadata format '{prefix}' (ListMetadataFormats names them)")


async def _get_record(conn: AsyncConnection, out: Response, args: dict[str, str]) -> None:
    _check_prefix(out.repo, args["metadataPrefix"])
    head = await _resolve(conn, out.repo, args["identifier"])
    _record(out, out.el(out.root, "GetRecord"), head, args["metadataPrefix"])


def _token_args(args: dict[str, str]) -> dict[str, Any]:
    try:
        state = signing.loads(args["resumptionToken"], purpose=TOKEN_PURPOSE)
        if not (isinstance(state, dict) and state.get("v") == 1 and isinstance(state.get("a"), int)
                and isinstance(state.get("c"), int) and isinstance(state.get("n"), int)
                and isinstance(state.get("q"), dict)):  # fmt: skip
            raise ValueError
        return state
    except ValueError:
        raise OAIError("badResumptionToken", "the resumptionToken is not one this repository issued") from None


async def _list(conn: AsyncConnection, out: Response, args: dict[str, str], verb: str) -> None:
    if "resumptionToken" in args:
        state = _token_args(args)
        if state.get("verb") != verb:
            raise OAIError("badResumptionToken", f"this resumptionToken was issued for {state.get('verb')}")
        query, after, cursor, size = state["q"], state["a"], state["c"], state["n"]
    else:
        query, after, cursor, size = dict(args), 0, 0, -1
    prefix = query["metadataPrefix"]
    _check_prefix(out.repo, prefix)
    since = parse_datestamp(query["from"], "from", until=False) if "from" in query else None
    until = parse_datestamp(query["until"], "until", until=True) if "until" in query else None
    if "from" in query and "until" in query and len(query["from"]) != len(query["until"]):
        raise OAIError("badArgument", "from and until must have the same granularity")
    if since and until and since > until:
        raise OAIError("badArgument", "from is later than until")
    base = await _set_filter(conn, query.get("set"))
    if base is None:
        raise OAIError("noRecordsMatch", f"the set '{query.get('set')}' holds no items")
    f = dataclasses.replace(base, since=since, until=until)
    limit = out.repo.page_size
    page = await harvest.heads(conn, f, after=after, limit=limit + 1, with_detail=verb == "ListRecords")
    if size < 0:
        if not page:
            raise OAIError("noRecordsMatch", "no items match these arguments")
        size = len(page) if len(page) <= limit else await harvest.count(conn, f)
    more = len(page) > limit
    page = page[:limit]
    node = out.el(out.root, verb)
    for head in page:
        if verb == "ListRecords":
            _record(out, node, head, prefix)
        else:
            _header(out, node, head)
    if more or cursor:
        attrs = {"completeListSize": str(max(size, cursor + len(page))), "cursor": str(cursor)}
        token = ""
        if more:
            token = signing.dumps({"v": 1, "verb": verb, "q": query, "a": page[-1].seq, "c": cursor + len(page),
                                   "n": size}, purpose=TOKEN_PURPOSE)  # fmt: skip
        out.el(node, "resumptionToken", token or None, **attrs)


async def _list_identifiers(conn: AsyncConnection, out: Response, args: dict[str, str]) -> None:
    await _list(conn, out, args, "ListIdentifiers")


async def _list_records(conn: AsyncConnection, out: Response, args: dict[str, str]) -> None:
    await _list(conn, out, args, "ListRecords")


HANDLERS = {
    "Identify": _identify,
    "ListMetadataFormats": _list_formats,
    "ListSets": _list_sets,
    "ListIdentifiers": _list_identifiers,
    "ListRecords": _list_records,
    "GetRecord": _get_record,
}
