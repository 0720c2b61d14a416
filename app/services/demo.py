"""The demo data set (`chm seed --demo`, `make run`): real decisions, national nodes, cooperation requests
and a few hundred published records, written through the same services as any client. Idempotent."""

from __future__ import annotations

import random
from typing import Any

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
        year = 2019 + rng.randrange(8)
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


async def seed(session: Any) -> dict[str, int]:
    """Load the demo set; returns how many items were created or changed per kind."""
    from app.services import record_writes

    counts: dict[str, int] = {}
    items = demo_records()
    results = await record_writes.bulk_upsert(session, SECRETARIAT, items, publish=True)
    errors = [r for r in results if r["status"] == "error"]
    if errors:
        raise RuntimeError(f"demo records failed validation: {errors[:3]}")
    counts["records"] = sum(r["status"] != "unchanged" for r in results)
    for name, fn in _EXTRA_SEEDERS:
        counts[name] = await fn(session)
    return counts


# Seeders for the other aggregates register here (nodes, decisions, cooperation requests).
_EXTRA_SEEDERS: list[tuple[str, Any]] = []
