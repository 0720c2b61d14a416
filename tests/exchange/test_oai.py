"""OAI-PMH 2.0 with real harvesters (sickle, oaipmh-scythe) over a live socket, and every protocol error."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import pytest
from lxml import etree
from oaipmh_scythe import Scythe
from sickle import Sickle
from sickle.oaiexceptions import NoRecordsMatch
from sqlalchemy import text

from app import db
from app.auth.principal import Principal
from app.models.decision import DecisionCreate
from app.models.node import NodeCreate
from app.services import decisions, nodes, record_writes, signing
from app.settings import get_settings
from tests.exchange.harvesting import ADMIN, BR, content, create, edit, withdraw

pytestmark = pytest.mark.asyncio

OAI = "{http://www.openarchives.org/OAI/2.0/}"
DC = "{http://purl.org/dc/elements/1.1/}"
CHM = "{urn:x-chm-api:oai:native:1.0}"
FR = Principal(kind="party", party="FR", scopes=frozenset({"records:write", "records:publish"}), token_name="fr")


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(get_settings(), "oai_page_size", 4)
    return 4


def oai_id(record: dict[str, Any]) -> str:
    return f"oai:{get_settings().oai_repository_id}:{record['uid'].rsplit('-', 1)[0]}"


def harvest(url: str, **args: Any) -> list[Any]:
    """Everything sickle yields for ListRecords (headers of deleted records included)."""
    try:
        return list(Sickle(url + "/oai").ListRecords(ignore_deleted=False, **args))
    except NoRecordsMatch:
        return []


async def public_ids(client: Any) -> set[str]:
    """The public set as REST lists it, as OAI identifiers."""
    out: set[str] = set()
    url: str | None = "/api/v1/records?limit=200"
    while url:
        page = (await client.get(url)).json()
        out |= {oai_id(r) for r in page["items"]}
        url = f"/api/v1/records?limit=200&cursor={page['next_cursor']}" if page["next_cursor"] else None
    return out


async def hidden_records() -> list[dict[str, Any]]:
    """A draft, a pending record, a never-published one of another Party: no harvester may see them."""
    draft = await create(publish=False, **content(900, title={"en": "SECRET draft"}))
    pending = await create(publish=False, **content(901, title={"en": "SECRET pending"}))
    async with db.transaction() as s:
        await record_writes.submit(s, BR, pending["id"])
    other = await create(FR, publish=False, **content(902, title={"en": "SECRET french draft"}))
    return [draft, pending, other]


async def backdate_change_log() -> str:
    """Move every change so far an hour back and return a `from=` that selects only later ones."""
    async with db.transaction() as s:
        await s.execute(text("UPDATE changes SET at = at - interval '1 hour'"))
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_sickle_full_then_incremental_harvest(live: str, client: Any, small_pages: int) -> None:
    published = [await create(**content(i)) for i in range(10)]
    hidden = await hidden_records()
    assert await asyncio.to_thread(lambda: list(Sickle(live + "/oai").ListSets()))

    full = await asyncio.to_thread(harvest, live, metadataPrefix="oai_dc")
    assert len(full) == 10 and not any(r.deleted for r in full)
    harvested = {r.header.identifier: r for r in full}
    assert set(harvested) == await public_ids(client) == {oai_id(r) for r in published}
    sample = harvested[oai_id(published[3])].metadata
    assert sample["title"] == ["Wetland guide 3", "Guide des zones humides 3"]
    assert "GBF-TARGET-02" in sample["subject"] and sample["coverage"] == ["BR"]
    assert any(u.endswith(f"/api/v1/records/{published[3]['id']}") for u in sample["identifier"])

    since = await backdate_change_log()
    await edit(published[0]["id"], title={"en": "Working draft only"})  # not public: not a change to harvest
    republished = await edit(published[1]["id"], publish=True, title={"en": "Second revision"})
    await withdraw(published[2]["id"])
    fresh = await create(**content(50))
    await create(publish=False, **content(51))

    delta = await asyncio.to_thread(harvest, live, metadataPrefix="oai_dc", **{"from": since})
    by_id = {r.header.identifier: r for r in delta}
    assert len(delta) == len(by_id) == 3
    assert set(by_id) == {oai_id(published[1]), oai_id(published[2]), oai_id(fresh)}
    assert oai_id(republished) == oai_id(published[1])  # a new revision keeps the identifier
    assert by_id[oai_id(published[1])].metadata["title"] == ["Second revision"]
    assert by_id[oai_id(published[2])].deleted and not hasattr(by_id[oai_id(published[2])], "metadata")
    for record in delta:
        assert record.header.datestamp >= since

    for identifier, record in by_id.items():  # the harvester applies the delta
        if record.deleted:
            harvested.pop(identifier)
        else:
            harvested[identifier] = record
    assert set(harvested) == await public_ids(client)

    # The second harvester reads the same
    def scythe_ids() -> tuple[set[str], set[str]]:
        with Scythe(live + "/oai") as scythe:
            items = list(scythe.list_records(metadata_prefix="oai_dc"))
        return {r.header.identifier for r in items if not r.deleted}, {r.header.identifier for r in items if r.deleted}

    live_ids, deleted_ids = await asyncio.to_thread(scythe_ids)
    assert live_ids == set(harvested) and deleted_ids == {oai_id(published[2])}

    everything = await asyncio.to_thread(harvest, live, metadataPrefix="chm")
    blob = b"".join(etree.tostring(r.xml) for r in everything)
    assert b"SECRET" not in blob and b"Working draft only" not in blob
    assert not {str(h["id"]) for h in hidden} & {r.xml.find(f".//{CHM}entity").get("id") for r in everything
                                                 if not r.deleted}  # fmt: skip


async def test_harvest_while_records_change_loses_and_repeats_nothing(live: str, client: Any, small_pages: int) -> None:
    records = [await create(**content(i)) for i in range(14)]
    sickle = Sickle(live + "/oai")
    it: Iterator[Any] = await asyncio.to_thread(lambda: sickle.ListRecords(metadataPrefix="chm", ignore_deleted=False))
    seen: list[tuple[str, str | None]] = []

    def take() -> Any:
        return next(it, None)

    for _ in range(6):  # into the second page
        rec = await asyncio.to_thread(take)
        seen.append((rec.header.identifier, None if rec.deleted else rec.xml.findtext(f".//{CHM}revision")))
    harvested_first = {i for i, _ in seen}
    ahead = [r for r in records if oai_id(r) not in harvested_first]
    # Meanwhile: a harvested record gets a new revision, one ahead too, one ahead is withdrawn, one is new
    await edit(records[0]["id"], publish=True, title={"en": "rev 2 of an already harvested record"})
    await edit(ahead[-1]["id"], publish=True, title={"en": "rev 2 of a record not harvested yet"})
    await withdraw(ahead[0]["id"])
    fresh = await create(**content(99))
    while (rec := await asyncio.to_thread(take)) is not None:
        seen.append((rec.header.identifier, None if rec.deleted else rec.xml.findtext(f".//{CHM}revision")))

    assert len(seen) == len(set(seen)), "a version was delivered twice"
    final: dict[str, str | None] = {}
    for identifier, revision in seen:
        final[identifier] = revision
    assert {i for i, r in final.items() if r is not None} == await public_ids(client)
    assert final[oai_id(records[0])] == "2" and final[oai_id(ahead[-1])] == "2" and final[oai_id(ahead[0])] is None
    assert final[oai_id(fresh)] == "1"
    untouched = {oai_id(r) for r in records} - {oai_id(records[0]), oai_id(ahead[-1]), oai_id(ahead[0])}
    assert all(sum(1 for i, _ in seen if i == u) == 1 for u in untouched)


async def oai(client: Any, method: str = "GET", **args: Any) -> etree._Element:
    if method == "POST":
        resp = await client.post("/oai", data=args)
    else:
        resp = await client.get("/oai", params=args)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/xml")
    return etree.fromstring(resp.content)


def error_code(doc: etree._Element) -> str | None:
    err = doc.find(f"{OAI}error")
    return None if err is None else err.get("code")


async def test_every_verb(client: Any, small_pages: int) -> None:
    recs = [await create(**content(i)) for i in range(6)]
    await hidden_records()
    async with db.transaction() as s:
        decision = await decisions.create_decision(s, ADMIN, data=DecisionCreate.model_validate({
            "code": "COP-15-4", "symbol": "CBD/COP/DEC/15/4", "body": "COP", "session": 15, "number": 4,
            "title": {"en": "Kunming-Montreal Global Biodiversity Framework"}, "gbf_targets": ["GBF-TARGET-02"],
            "paragraphs": [{"number": "1", "type": "operative", "text": {"en": "Adopts the framework"}}]}))  # fmt: skip
        node = await nodes.create_node(
            s,
            ADMIN,
            data=NodeCreate.model_validate(
                {"party": "BR", "name": {"en": "Brazil CHM"}, "url": "https://chm.example.br/"}
            ),
        )
    await withdraw(recs[5]["id"])
    repo = get_settings().oai_repository_id

    ident = await oai(client, verb="Identify")
    node_el = ident.find(f"{OAI}Identify")
    assert node_el.findtext(f"{OAI}deletedRecord") == "persistent"
    assert node_el.findtext(f"{OAI}granularity") == "YYYY-MM-DDThh:mm:ssZ"
    assert node_el.findtext(f"{OAI}protocolVersion") == "2.0"
    assert node_el.findtext(".//{http://www.openarchives.org/OAI/2.0/oai-identifier}repositoryIdentifier") == repo

    formats = await oai(client, "POST", verb="ListMetadataFormats")
    prefixes = {f.findtext(f"{OAI}metadataPrefix"): f for f in formats.iter(f"{OAI}metadataFormat")}
    assert set(prefixes) == {"oai_dc", "chm"}
    assert prefixes["chm"].findtext(f"{OAI}schema").endswith("/oai/chm.xsd")
    assert prefixes["chm"].findtext(f"{OAI}metadataNamespace") == "urn:x-chm-api:oai:native:1.0"
    assert error_code(await oai(client, verb="ListMetadataFormats", identifier=oai_id(recs[0]))) is None

    sets = {s.findtext(f"{OAI}setSpec") for s in (await oai(client, verb="ListSets")).iter(f"{OAI}set")}
    assert {"party", "party:BR", "type:resource", "kind:decision", "gbf-target:GBF-TARGET-02"} <= sets

    ids = await oai(client, verb="ListIdentifiers", metadataPrefix="oai_dc")
    token = ids.find(f".//{OAI}resumptionToken")
    assert token.get("completeListSize") == "8" and token.get("cursor") == "0" and token.text
    rest = await oai(client, verb="ListIdentifiers", resumptionToken=token.text)
    last = rest.find(f".//{OAI}resumptionToken")
    assert last.get("cursor") == "4" and not last.text  # the final page: an empty token
    headers = [*ids.iter(f"{OAI}header"), *rest.iter(f"{OAI}header")]
    assert len(headers) == 8 and sum(h.get("status") == "deleted" for h in headers) == 1

    async def listed(set_spec: str) -> set[str]:
        out: set[str] = set()
        doc = await oai(client, verb="ListIdentifiers", metadataPrefix="oai_dc", set=set_spec)
        while True:
            out |= {h.findtext(f"{OAI}identifier") for h in doc.iter(f"{OAI}header")}
            token = doc.findtext(f".//{OAI}resumptionToken")
            if not token:
                return out
            doc = await oai(client, verb="ListIdentifiers", resumptionToken=token)

    dec_id, node_id = f"oai:{repo}:decision/{decision['id']}", f"oai:{repo}:node/{node['id']}"
    assert await listed("kind:decision") == {dec_id}
    assert await listed("gbf-target:GBF-TARGET-02") == {dec_id, *(oai_id(r) for r in recs if r["gbf_targets"])}
    assert await listed("party:BR") == {node_id, *(oai_id(r) for r in recs)}
    assert await listed("party") == {node_id, *(oai_id(r) for r in recs)}
    assert await listed("type") == await listed("kind:record") == {oai_id(r) for r in recs}
    assert await listed("kind") == {dec_id, node_id, *(oai_id(r) for r in recs)}

    got = await oai(client, verb="GetRecord", identifier=oai_id(recs[1]), metadataPrefix="oai_dc")
    assert got.findtext(f".//{DC}title") == "Wetland guide 1"
    dec = await oai(client, verb="GetRecord", identifier=f"oai:{repo}:decision/{decision['id']}", metadataPrefix="chm")
    entity = dec.find(f".//{CHM}entity")
    assert entity.get("kind") == "decision" and entity.findtext(f".//{CHM}paragraphs/{CHM}item/{CHM}number") == "1"
    schema = etree.XMLSchema(etree.parse(str(files("app.exchange") / "chm.xsd")))
    for doc in (dec, await oai(client, verb="ListRecords", metadataPrefix="chm")):
        for el in doc.iter(f"{CHM}entity"):
            schema.assertValid(el)
    gone = await oai(client, verb="GetRecord", identifier=oai_id(recs[5]), metadataPrefix="oai_dc")
    assert gone.find(f".//{OAI}header").get("status") == "deleted" and gone.find(f".//{OAI}metadata") is None
    assert (await client.get("/oai/chm.xsd")).status_code == 200


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ({}, "badVerb"),
        ({"verb": "Harvest"}, "badVerb"),
        ({"verb": "ListRecords"}, "badArgument"),
        ({"verb": "Identify", "extra": "1"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2026-13-01"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2026-01-01T00:00:00"}, "badArgument"),
        (
            {"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2026-01-01", "until": "2026-01-02T00:00:00Z"},
            "badArgument",
        ),
        (
            {"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2026-02-01", "until": "2026-01-01"},
            "badArgument",
        ),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "set": "colour:red"}, "badArgument"),
        ({"verb": "ListRecords", "resumptionToken": "x", "metadataPrefix": "oai_dc"}, "badArgument"),
        ({"verb": "GetRecord", "identifier": "oai:x:y"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "marc21"}, "cannotDisseminateFormat"),
        (
            {"verb": "GetRecord", "identifier": "oai:elsewhere.org:CHM-RES-BR-000001", "metadataPrefix": "oai_dc"},
            "idDoesNotExist",
        ),
        ({"verb": "GetRecord", "identifier": "{repo}:CHM-RES-BR-999999", "metadataPrefix": "oai_dc"}, "idDoesNotExist"),
        ({"verb": "GetRecord", "identifier": "{repo}:node/not-a-uuid", "metadataPrefix": "oai_dc"}, "idDoesNotExist"),
        ({"verb": "ListMetadataFormats", "identifier": "{repo}:CHM-RES-BR-999999"}, "idDoesNotExist"),
        ({"verb": "ListRecords", "resumptionToken": "not-a-token"}, "badResumptionToken"),
        ({"verb": "ListSets", "resumptionToken": "x"}, "badResumptionToken"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "set": "party:ZZ"}, "noRecordsMatch"),
        ({"verb": "ListIdentifiers", "metadataPrefix": "oai_dc", "from": "2999-01-01"}, "noRecordsMatch"),
    ],
)
async def test_protocol_errors(client: Any, args: dict[str, str], code: str) -> None:
    await create(**content(1))
    repo = f"oai:{get_settings().oai_repository_id}"
    args = {k: v.replace("{repo}", repo) for k, v in args.items()}
    doc = await oai(client, **args)
    assert error_code(doc) == code
    request = doc.find(f"{OAI}request")
    if code in ("badVerb", "badArgument"):
        assert request.attrib == {}  # the spec: no attributes echoed for these two
    assert request.text.endswith("/oai")


async def test_repeated_arguments_and_tampered_tokens(client: Any, small_pages: int) -> None:
    drafts = [await create(publish=False, **content(i)) for i in range(3)]
    for i in range(6):
        await create(**content(10 + i))
    assert error_code(etree.fromstring((await client.get("/oai?verb=Identify&verb=Identify")).content)) == "badVerb"
    assert error_code(etree.fromstring((await client.get(
        "/oai?verb=ListRecords&metadataPrefix=oai_dc&metadataPrefix=chm")).content)) == "badArgument"  # fmt: skip

    first = await oai(client, verb="ListRecords", metadataPrefix="oai_dc")
    token = first.find(f".//{OAI}resumptionToken").text
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    assert error_code(await oai(client, verb="ListRecords", resumptionToken=flipped)) == "badResumptionToken"
    assert error_code(await oai(client, verb="ListIdentifiers", resumptionToken=token)) == "badResumptionToken"
    # A well-signed token for another purpose, or with forged contents, never passes either
    forged = signing.dumps({"v": 1, "verb": "ListRecords", "q": {"metadataPrefix": "oai_dc"}, "a": 0, "c": 0, "n": 9},
                           purpose="something-else")  # fmt: skip
    assert error_code(await oai(client, verb="ListRecords", resumptionToken=forged)) == "badResumptionToken"
    # The genuine token still works (it never expires) and its page holds no draft
    second = await oai(client, verb="ListRecords", resumptionToken=token)
    assert error_code(second) is None
    assert not {str(d["id"]) for d in drafts} & {e.text.rsplit("/", 1)[-1] for e in second.iter(f"{DC}identifier")}
