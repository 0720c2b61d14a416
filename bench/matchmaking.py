"""Matchmaking: ranking quality on the labelled set (with the weights, and with parts of the ranking switched off)
and the latency of one request's matches among 10,000 candidates (SPEC §9: p95 < 50 ms).

Run by hand, never as tests. One throw-away embedded PostgreSQL (or BENCH_DATABASE_URL), migrated.

    .venv/bin/python bench/matchmaking.py                 # quality + latency at 10,000 candidates
    .venv/bin/python bench/matchmaking.py --candidates 50000 --queries 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CHM_LOG_LEVEL", "WARNING")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

TARGET_P95_MS = 50.0
console = Console()

# Words a cooperation request or an offer of help is written with; each theme has its own, all share the common.
THEMES: dict[str, list[str]] = {
    "mangroves": [
        "mangrove",
        "coastal",
        "replanting",
        "nursery",
        "shoreline",
        "blue",
        "carbon",
        "seedlings",
        "estuary",
    ],
    "reefs": ["coral", "reef", "marine", "reserve", "zoning", "fish", "survey", "bleaching", "lagoon"],
    "forests": ["forest", "reforestation", "native", "trees", "landscape", "nursery", "timber", "canopy", "degraded"],
    "invasives": ["invasive", "rats", "eradication", "biosecurity", "predators", "weeds", "islets", "alien"],
    "abs": ["access", "benefit", "sharing", "permits", "consent", "genetic", "resources", "nagoya", "contracts"],
    "taxonomy": [
        "taxonomy",
        "barcoding",
        "specimens",
        "identification",
        "museum",
        "collections",
        "species",
        "inventory",
    ],
    "biosafety": ["biosafety", "laboratory", "detection", "modified", "organisms", "gmo", "testing", "border"],
    "wetlands": ["wetland", "floodplain", "hydrology", "flooding", "delta", "fisheries", "water", "flows"],
    "pollinators": ["pollinators", "bees", "farms", "pesticides", "crops", "agroecology", "hives", "flowers"],
    "finance": ["finance", "expenditure", "subsidies", "budget", "mobilization", "fiscal", "investment", "plan"],
    "cities": ["urban", "city", "parks", "corridors", "green", "infrastructure", "municipal", "planning"],
    "wildlife": ["elephants", "conflict", "livestock", "fences", "tigers", "crop", "raiding", "coexistence"],
}
COMMON = [
    "biodiversity",
    "national",
    "support",
    "capacity",
    "training",
    "conservation",
    "management",
    "monitoring",
    "programme",
]
T = "GBF-TARGET-"
S = "CBD-SUBJECT-"
THEME_TAGS: dict[str, tuple[list[str], list[str]]] = {
    "mangroves": ([f"{T}02", f"{T}08"], [f"{S}MARINE", f"{S}RESTORATION"]),
    "reefs": ([f"{T}03"], [f"{S}MARINE", f"{S}PROTECTED-AREAS"]),
    "forests": ([f"{T}02"], [f"{S}FORESTS"]),
    "invasives": ([f"{T}06"], [f"{S}INVASIVE-SPECIES", f"{S}ISLANDS"]),
    "abs": ([f"{T}13"], [f"{S}ACCESS-BENEFIT-SHARING"]),
    "taxonomy": ([f"{T}21"], [f"{S}GTI"]),
    "biosafety": ([f"{T}17"], [f"{S}BIOSAFETY"]),
    "wetlands": ([f"{T}11"], [f"{S}INLAND-WATERS"]),
    "pollinators": ([f"{T}10"], [f"{S}AGRICULTURE"]),
    "finance": ([f"{T}19"], [f"{S}RESOURCE-MOBILIZATION"]),
    "cities": ([f"{T}12"], [f"{S}CITIES"]),
    "wildlife": ([f"{T}04"], []),
}
ASSIST = ["technical", "scientific", "capacity-building", "technology-transfer", "financial", "training",
          "equipment", "policy-advice"]  # fmt: skip
REGIONS = ["SIDS", "LDC", "LLDC", "002", "019", "142", "009", "202", "419"]


def database(tmp: Path) -> str:
    from app import db

    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        url = db.start_embedded(tmp / "pg", database="chm_bench", cleanup="delete")
    db.migrate(url)
    return url


async def wipe() -> None:
    from sqlalchemy import text

    from app import db

    async with db.get_engine().begin() as conn:
        await conn.execute(text("TRUNCATE cooperation_matches, cooperation_offers, cooperation_requests, "
                                "opportunities, records, record_revisions, record_drafts CASCADE"))  # fmt: skip


# -- quality --------------------------------------------------------------------------------------------------


async def quality() -> dict[str, dict[str, float]]:
    """Mean precision@5 and nDCG@10 over the labelled set, with the weights and with parts switched off."""
    from app import db
    from app.auth.principal import ANONYMOUS
    from app.services import matchmaking
    from tests import matchmaking_set

    await wipe()
    async with db.transaction() as s:
        built = await matchmaking_set.build(s)
    saved = dict(matchmaking.WEIGHTS)
    variants = {
        "as shipped": saved,
        "tags only (no text)": {**saved, "text": 0.0},
        "text only": {k: (v if k == "text" else 0.0) for k, v in saved.items()},
        "no hierarchy credit": saved,
    }
    out: dict[str, dict[str, float]] = {}
    credit = matchmaking.HIERARCHY_CREDIT
    try:
        for name, weights in variants.items():
            matchmaking.WEIGHTS.clear()
            matchmaking.WEIGHTS.update(weights)
            matchmaking.HIERARCHY_CREDIT = 0.0 if name == "no hierarchy credit" else credit
            p5, ndcg = [], []
            async with db.read_connection() as conn:
                for problem, rid in built.requests:
                    ids = [m["id"] for m in await matchmaking.matches_for_request(conn, ANONYMOUS, rid, limit=10)]
                    p5.append(matchmaking_set.precision_at(5, ids, built.relevance[problem]))
                    ndcg.append(matchmaking_set.ndcg_at(10, ids, built.relevance[problem]))
            out[name] = {"precision@5": statistics.fmean(p5), "ndcg@10": statistics.fmean(ndcg),
                         "requests": len(p5)}  # fmt: skip
    finally:
        matchmaking.WEIGHTS.clear()
        matchmaking.WEIGHTS.update(saved)
        matchmaking.HIERARCHY_CREDIT = credit
    return out


# -- latency --------------------------------------------------------------------------------------------------


_SYLLABLES = tuple(
    [
        "ka",
        "lo",
        "mi",
        "ra",
        "tu",
        "se",
        "no",
        "vi",
        "da",
        "pe",
        "gu",
        "ri",
        "sa",
        "mo",
        "te",
        "zu",
        "ba",
        "ne",
        "fi",
        "ko",
    ]
)
# Names of places, species, methods: a long tail (Zipf) as in real text, so that some words are rare.
RARE = ["".join(random.Random(i).choices(_SYLLABLES, k=3 + i % 2)) for i in range(20_000)]
RARE_WEIGHTS = [1.0 / (i + 1) ** 1.1 for i in range(len(RARE))]


def _text(rng: random.Random, theme: str, n: int) -> str:
    words = rng.sample(THEMES[theme], k=min(4, len(THEMES[theme]))) + rng.sample(COMMON, k=3)
    words = words[: max(1, n - 2)] + rng.choices(RARE, weights=RARE_WEIGHTS, k=2)
    rng.shuffle(words)
    return " ".join(words).capitalize()


async def generate(candidates: int, queries: int, seed: int = 12, *, vacuum: bool = True) -> list[uuid.UUID]:
    """`candidates` live candidates across the four kinds (plus the requests the offers are made on) and
    `queries` open requests to rank for; returns the query requests' ids."""
    from sqlalchemy import insert, select

    from app import db
    from app.models import CooperationOffer, CooperationRequest, Opportunity, Party, Record

    rng = random.Random(seed)
    now = datetime.now(UTC)
    async with db.read_connection() as conn:
        parties = list((await conn.execute(select(Party.__table__.c.code))).scalars())  # type: ignore[attr-defined]
    themes = list(THEMES)

    def tags(theme: str) -> dict[str, Any]:
        gbf, subjects = THEME_TAGS[theme]
        extra_t = [f"{T}{rng.randint(1, 23):02d}"] if rng.random() < 0.5 else []
        return {"gbf_targets": list(dict.fromkeys(rng.sample(gbf, k=max(1, len(gbf) - rng.randint(0, 1))) + extra_t)),
                "subjects": rng.sample(subjects, k=len(subjects) - (1 if subjects and rng.random() < 0.3 else 0)),
                "assistance_types": rng.sample(ASSIST, k=rng.randint(1, 3))}  # fmt: skip

    def stamp() -> datetime:
        return now - timedelta(days=rng.uniform(0, 900))

    n_opp, n_rec, n_off, n_past = (int(candidates * f) for f in (0.25, 0.30, 0.25, 0.20))
    opps, recs, hosts, offers, past, query_rows = [], [], [], [], [], []
    for _ in range(n_opp):
        th, at = rng.choice(themes), stamp()
        opps.append({"id": uuid.uuid4(), "provider_party": rng.choice(parties), "title": {"en": _text(rng, th, 5)},
                     "description": {"en": _text(rng, th, 12)}, **tags(th), "status": "open",
                     "eligible_regions": [rng.choice(REGIONS)] if rng.random() < 0.4 else [],
                     "created_at": at, "updated_at": at})  # fmt: skip
    for _ in range(n_rec):
        th, at = rng.choice(themes), stamp()
        t = tags(th)
        t.pop("assistance_types")
        recs.append({"id": uuid.uuid4(), "party": rng.choice(parties), "type": rng.choice(["expert", "organization",
                     "project"]), "status": "published", "revision": 1, "title": {"en": _text(rng, th, 5)},
                     "summary": {"en": _text(rng, th, 12)}, "languages": ["en"], **t, "created_at": at,
                     "updated_at": at, "published_at": at})  # fmt: skip
    for i in range(n_off):
        th, at = rng.choice(themes), stamp()
        if i % 2 == 0:  # two offers per host request
            hosts.append({"id": uuid.uuid4(), "party": rng.choice(parties), "title": {"en": _text(rng, th, 6)},
                          "problem": {"en": _text(rng, th, 12)}, **tags(th), "status": "in-discussion",
                          "created_at": at, "updated_at": at})  # fmt: skip
        offers.append({"id": uuid.uuid4(), "request_id": hosts[-1]["id"], "provider_party": rng.choice(parties),
                       "description": {"en": _text(rng, th, 10)}, "status": "proposed", "created_at": at,
                       "updated_at": at})  # fmt: skip
    for _ in range(n_past):
        th, at = rng.choice(themes), stamp()
        past.append({"id": uuid.uuid4(), "party": rng.choice(parties), "title": {"en": _text(rng, th, 6)},
                     "problem": {"en": _text(rng, th, 12)}, **tags(th), "status": "matched", "created_at": at,
                     "updated_at": at})  # fmt: skip
    for _ in range(queries):
        th, at = rng.choice(themes), stamp()
        query_rows.append({"id": uuid.uuid4(), "party": rng.choice(parties), "title": {"en": _text(rng, th, 7)},
                           "problem": {"en": _text(rng, th, 14)}, **tags(th), "status": "open", "created_at": at,
                           "updated_at": at})  # fmt: skip
    async with db.transaction() as s:
        for model, rows in ((Opportunity, opps), (Record, recs), (CooperationRequest, hosts + past + query_rows),
                            (CooperationOffer, offers)):  # fmt: skip
            for i in range(0, len(rows), 1000):
                await s.execute(insert(model.__table__), rows[i : i + 1000])  # type: ignore[attr-defined]
    from sqlalchemy import text

    # The tables as autovacuum leaves them after such a load (an insert-triggered VACUUM, then ANALYZE), so the
    # figure is the steady state, not autovacuum racing the benchmark; `--no-vacuum` measures the load's wake.
    async with db.get_engine().connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for t in ("opportunities", "records", "cooperation_requests", "cooperation_offers"):
            await conn.execute(text(f"{'VACUUM ' if vacuum else ''}ANALYZE {t}"))
    return [r["id"] for r in query_rows]


async def latency(candidates: int, queries: int, rounds: int, *, vacuum: bool = True) -> dict[str, Any]:
    from app import db
    from app.auth.principal import ANONYMOUS
    from app.services import matchmaking

    await wipe()
    t0 = time.perf_counter()
    ids = await generate(candidates, queries, vacuum=vacuum)
    matchmaking._common = None  # read the fresh statistics now, not the labelled set's (the cache lasts 5 min)
    load_s = time.perf_counter() - t0
    samples: list[float] = []
    returned: list[int] = []
    load_before = os.getloadavg()[0]
    async with db.read_connection() as conn:
        for rid in ids[:5]:  # warm caches and plans
            await matchmaking.matches_for_request(conn, ANONYMOUS, rid)
        for _ in range(rounds):
            for rid in ids:
                t = time.perf_counter()
                found = await matchmaking.matches_for_request(conn, ANONYMOUS, rid, limit=10)
                samples.append((time.perf_counter() - t) * 1000)
                returned.append(len(found))
    samples.sort()
    return {"candidates": candidates, "queries": len(samples), "load_s": round(load_s, 1),
            "p50_ms": round(statistics.median(samples), 1), "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 1),
            "max_ms": round(samples[-1], 1), "mean_matches": round(statistics.fmean(returned), 1),
            "loadavg": (load_before, os.getloadavg()[0])}  # fmt: skip


async def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    from app import db
    from app.services import matchmaking

    db.init_engine(url)
    try:
        results: dict[str, Any] = {"settings": matchmaking.settings()}
        if not args.latency_only:
            results["quality"] = await quality()
        results["latency"] = await latency(args.candidates, args.queries, args.rounds, vacuum=not args.no_vacuum)
        return results
    finally:
        await db.dispose_engine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=50, help="distinct requests ranked per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--latency-only", action="store_true")
    parser.add_argument("--no-vacuum", action="store_true", help="measure right after the load (ANALYZE only)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    from app import db

    tmp = Path(tempfile.mkdtemp(prefix="chm-bench-match-"))
    try:
        results = asyncio.run(run(args, database(tmp)))  # migrations run outside the event loop
    finally:
        if db._embedded is not None:
            db._embedded.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    weights = Table(title="Weights (app/services/matchmaking.py)")
    weights.add_column("feature")
    weights.add_column("weight", justify="right")
    for k, v in results["settings"]["weights"].items():
        weights.add_row(k, f"{v:.2f}")
    console.print(weights)
    rest = {k: v for k, v in results["settings"].items() if k != "weights"}
    console.print("other constants: " + json.dumps(rest))
    if "quality" in results:
        q = Table(title="Labelled set (tests/matchmaking_set.py)")
        for col in ("ranking", "requests", "precision@5", "nDCG@10"):
            q.add_column(col, justify="right" if col != "ranking" else "left")
        for name, m in results["quality"].items():
            q.add_row(name, str(m["requests"]), f"{m['precision@5']:.3f}", f"{m['ndcg@10']:.3f}")
        console.print(q)
    lat = results["latency"]
    ok = lat["p95_ms"] < TARGET_P95_MS
    verdict = "[bold green]PASS[/]" if ok else "[bold red]FAIL[/]"
    console.print(f"matches for one request among {lat['candidates']:,} candidates: p50 {lat['p50_ms']} ms, "
                  f"p95 {lat['p95_ms']} ms (target < {TARGET_P95_MS:.0f}) {verdict}; max {lat['max_ms']} ms, "
                  f"{lat['queries']} rankings, {lat['mean_matches']} matches each, load {lat['load_s']} s")  # fmt: skip
    state = "right after the load (ANALYZE only)" if args.no_vacuum else "VACUUM ANALYZE after the load"
    before, after = lat["loadavg"]
    console.print(f"state: {state}; load average (1 min) {before:.2f} before, {after:.2f} after the rankings")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
