"""The demo data set (`chm seed --demo`, `make run`): real decisions, national nodes, cooperation requests
and a few hundred published records, written through the same services as any client. Idempotent."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import select

from app.auth.principal import Principal
from app.reference import load_demo, load_parties

SECRETARIAT = Principal(kind="secretariat", scopes=frozenset({"admin"}))
DEMO_PARTIES = ("BR", "FR", "BE", "DE", "CN", "IN", "MX", "CO", "ZA", "CA", "JP", "KE", "EU", "ES", "PE", "AR",
                "CL", "BJ", "SN", "MA", "EG", "ET", "UG", "TZ", "ID", "PH", "VN", "LA", "FJ", "AU", "NZ", "NO",
                "SE", "FI", "IT", "PT", "CR", "EC", "BO", "CM")  # fmt: skip
RECORDS = 320


def demo_records(count: int = RECORDS, seed: int = 20221219) -> list[dict[str, Any]]:
    """Deterministic, realistic record bodies (same input, same output: seeding twice changes nothing)."""
    data = load_demo()["record_templates"]
    names = {p["code"]: p["name"] for p in load_parties()}
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    types = list(data["types"])
    out = []
    for n in range(count):
        party = DEMO_PARTIES[n % len(DEMO_PARTIES)]
        rtype = types[rng.randrange(len(types))]
        tpl = data["types"][rtype]
        t_idx = rng.randrange(len(data["topics"]))
        topic, tags = data["topics"][t_idx], data["topic_tags"][t_idx]
        year = 2018 + rng.randrange(8)  # 2018-2025: no publication dates in the future
        title_tpl = tpl["titles"][rng.randrange(len(tpl["titles"]))]
        summary_tpl = tpl["summaries"][rng.randrange(len(tpl["summaries"]))]
        langs = [lang for lang in ("en", "fr", "es") if lang in title_tpl and (lang == "en" or rng.random() < 0.6)]

        def fill(text: str, lang: str, party: str = party, topic: dict = topic, year: int = year) -> str:
            country = names[party].get(lang) or names[party]["en"]
            return text.format(country=country, topic=topic.get(lang) or topic["en"], year=year)

        title = {lang: fill(title_tpl[lang], lang) for lang in langs}
        summary = {lang: fill(summary_tpl.get(lang) or summary_tpl["en"], lang) for lang in langs}
        out.append({
            "external_id": f"demo-{n:04d}",
            "party": party,
            "type": rtype,
            "title": title,
            "summary": summary,
            "languages": langs,
            "keywords": rng.sample(data["keywords"], 3),
            "subjects": tags["subjects"],
            "gbf_targets": tags["gbf_targets"],
            "countries": [party] if party != "EU" else [],
            "publication_date": f"{year}-{1 + rng.randrange(12):02d}-{1 + rng.randrange(28):02d}",
            "links": [{"url": f"https://chm.example.org/{party.lower()}/{n}", "name": "Source", "language": "en"}],
        })  # fmt: skip
    return out


def _as(party: str | None) -> Principal:
    """The demo writes as each Party (or the Secretariat), through the same permission checks."""
    return SECRETARIAT if party is None else Principal(kind="party", party=party, scopes=frozenset({"admin"}))


async def _seed_decisions(session: Any) -> int:
    from app.models.decision import DecisionCreate
    from app.services import decisions

    demo = load_demo()["decisions"]
    conn = await session.connection()
    existing = await decisions.get_many_by_code(conn, SECRETARIAT, [d["code"] for d in demo])
    created = 0
    for item, found in zip(demo, existing, strict=True):
        if found is None:
            await decisions.create_decision(session, SECRETARIAT, data=DecisionCreate.model_validate(item))
            created += 1
    return created


async def _seed_nodes(session: Any) -> int:
    from app.models.node import NodeCreate
    from app.services import nodes

    demo = load_demo()["nodes"]
    stmt = select(nodes.N.c.party, nodes.N.c.url).where(nodes.N.c.party.in_({n["party"] for n in demo}))
    have = {(r.party, r.url.rstrip("/")) for r in await session.execute(stmt)}
    created = 0
    for item in demo:
        if (item["party"], item["url"].rstrip("/")) not in have:
            await nodes.create_node(session, _as(item["party"]), data=NodeCreate.model_validate(item))
            created += 1
    return created


async def _seed_requests(session: Any) -> int:
    from app.models.cooperation import OfferCreate, OfferDecision, RequestCreate, RequestUpdate
    from app.services import cooperation

    demo = load_demo()["cooperation_requests"]
    CR = cooperation.CR
    stmt = select(CR.c.party, CR.c.title).where(CR.c.party.in_({r["party"] for r in demo}))
    have = {(r.party, r.title.get("en")) for r in await session.execute(stmt)}
    created = 0
    for item in demo:
        if (item["party"], item["title"]["en"]) in have:
            continue
        requester = _as(item["party"])
        body = {k: v for k, v in item.items() if k not in ("offers", "status")}
        request = await cooperation.create_request(session, requester, data=RequestCreate.model_validate(body))
        made = []
        for offer in item.get("offers", []):  # all offers first: accepting one matches the request
            provider = _as(offer.get("provider_party"))
            fields = {k: v for k, v in offer.items() if k not in ("provider_party", "status")}
            body_in = OfferCreate.model_validate(fields)
            made.append((offer, await cooperation.create_offer(session, provider, request["id"], data=body_in)))
        for offer, row in made:
            if offer.get("status") in ("accepted", "declined"):
                await cooperation.decide_offer(session, requester, request["id"], row["id"],
                                               data=OfferDecision(status=offer["status"]))  # fmt: skip
        current = await cooperation.get_request(session, requester, request["id"])
        if current["status"] != item.get("status", "open"):
            await cooperation.update_request(session, requester, request["id"],
                                             data=RequestUpdate(status=item["status"]))  # fmt: skip
        created += 1
    return created


async def seed(session: Any) -> dict[str, int]:
    """Load the demo set; returns how many items were created or changed per kind."""
    from app.services import record_writes

    results = await record_writes.bulk_upsert(session, SECRETARIAT, demo_records(), publish=True)
    errors = [r for r in results if r["status"] == "error"]
    if errors:
        raise RuntimeError(f"demo records failed validation: {errors[:3]}")
    return {
        "records": sum(r["status"] != "unchanged" for r in results),
        "decisions": await _seed_decisions(session),
        "nodes": await _seed_nodes(session),
        "cooperation_requests": await _seed_requests(session),
    }
