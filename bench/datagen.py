"""Fill `records` (+ one `record_revisions` row and one `publish` change each) with N realistic published records, fast.

Rows are built in Python and streamed with asyncpg's binary COPY (`copy_records_to_table`); for large
loads the secondary indexes of `records` are dropped first and rebuilt afterwards (same definitions),
which is several times faster than maintaining ten indexes row by row. Parties and vocabulary terms come
from the reference tables, so every generated record passes the app's own validation rules.

    .venv/bin/python bench/datagen.py --url postgresql://... --records 100000

Loads are incremental: serials continue after the highest existing one and the sequence is moved past
them, so running it twice gives 2×N records.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import multiprocessing
import os
import random
import sys
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.models.record import RECORD_TYPE_ABBR

RECORD_COLUMNS = (
    "id", "serial", "party", "type", "status", "revision", "external_id", "title", "summary", "body",
    "languages", "links", "keywords", "subjects", "gbf_targets", "aichi_targets", "countries",
    "publication_date", "created_at", "updated_at", "published_at", "withdrawn_at",
)  # fmt: skip
REVISION_COLUMNS = ("record_id", "revision", "content", "published_at", "published_by")

# Relative frequency of each record type on a national CHM (resources and news dominate).
TYPE_WEIGHTS = {
    "resource": 30, "news": 16, "event": 12, "case-study": 8, "project": 10, "national-report": 3,
    "nbsap": 2, "national-target": 8, "organization": 6, "expert": 5,
}  # fmt: skip
assert set(TYPE_WEIGHTS) == set(RECORD_TYPE_ABBR), "record types changed: update TYPE_WEIGHTS"

# (en, fr, es) phrases, so that translated titles and summaries read as translations.
KINDS: dict[str, list[tuple[str, str, str]]] = {
    "resource": [("Guidelines on", "Lignes directrices sur", "Directrices sobre"),
                 ("Toolkit for", "Boîte à outils pour", "Caja de herramientas para"),
                 ("Technical report on", "Rapport technique sur", "Informe técnico sobre"),
                 ("Atlas of", "Atlas de", "Atlas de"), ("Policy brief on", "Note d'orientation sur",
                                                         "Resumen de políticas sobre")],
    "news": [("New progress on", "Nouveaux progrès sur", "Nuevos avances en"),
             ("Launch of a national programme for", "Lancement d'un programme national pour",
              "Lanzamiento de un programa nacional para"),
             ("Workshop results on", "Résultats de l'atelier sur", "Resultados del taller sobre")],
    "event": [("National workshop on", "Atelier national sur", "Taller nacional sobre"),
              ("Regional consultation on", "Consultation régionale sur", "Consulta regional sobre"),
              ("Webinar:", "Webinaire :", "Seminario web:")],
    "case-study": [("Case study:", "Étude de cas :", "Estudio de caso:"),
                   ("Lessons learned from", "Enseignements tirés de", "Lecciones aprendidas de")],
    "project": [("Project for", "Projet pour", "Proyecto para"),
                ("Strengthening capacities in", "Renforcement des capacités en", "Fortalecimiento de capacidades en")],
    "national-report": [("National report on", "Rapport national sur", "Informe nacional sobre")],
    "nbsap": [("National biodiversity strategy and action plan:", "Stratégie et plan d'action nationaux :",
               "Estrategia y plan de acción nacionales:")],
    "national-target": [("National target on", "Objectif national sur", "Meta nacional sobre")],
    "organization": [("Centre for", "Centre pour", "Centro para"),
                     ("Network on", "Réseau sur", "Red sobre")],
    "expert": [("Expert in", "Experte en", "Experta en"), ("Specialist in", "Spécialiste en", "Especialista en")],
}  # fmt: skip

TOPICS: list[tuple[str, str, str]] = [
    ("marine protected areas", "les aires marines protégées", "las áreas marinas protegidas"),
    ("mangrove restoration", "la restauration des mangroves", "la restauración de manglares"),
    ("invasive alien species", "les espèces exotiques envahissantes", "las especies exóticas invasoras"),
    ("pollinators", "les pollinisateurs", "los polinizadores"),
    ("wetland conservation", "la conservation des zones humides", "la conservación de humedales"),
    ("forest landscape restoration", "la restauration des paysages forestiers",
     "la restauración del paisaje forestal"),
    ("access and benefit-sharing", "l'accès et le partage des avantages",
     "el acceso y la participación en los beneficios"),
    ("traditional knowledge", "les connaissances traditionnelles", "los conocimientos tradicionales"),
    ("coral reefs", "les récifs coralliens", "los arrecifes de coral"),
    ("urban biodiversity", "la biodiversité urbaine", "la biodiversidad urbana"),
    ("agrobiodiversity", "l'agrobiodiversité", "la agrobiodiversidad"),
    ("biodiversity finance", "le financement de la biodiversité", "la financiación de la biodiversidad"),
    ("species monitoring", "le suivi des espèces", "el seguimiento de especies"),
    ("seed banks", "les banques de semences", "los bancos de semillas"),
    ("ecosystem services valuation", "l'évaluation des services écosystémiques",
     "la valoración de los servicios ecosistémicos"),
    ("climate adaptation", "l'adaptation au changement climatique", "la adaptación al cambio climático"),
    ("sustainable fisheries", "la pêche durable", "la pesca sostenible"),
    ("spatial planning", "l'aménagement du territoire", "la planificación espacial"),
    ("biosafety", "la biosécurité", "la seguridad de la biotecnología"),
    ("environmental education", "l'éducation à l'environnement", "la educación ambiental"),
    ("peatlands", "les tourbières", "las turberas"),
    ("migratory birds", "les oiseaux migrateurs", "las aves migratorias"),
    ("genetic resources", "les ressources génétiques", "los recursos genéticos"),
    ("protected area management", "la gestion des aires protégées", "la gestión de áreas protegidas"),
]  # fmt: skip

KEYWORDS = [
    "biodiversity", "conservation", "restoration", "monitoring", "indicators", "capacity building",
    "community", "indigenous peoples", "youth", "gender", "finance", "policy", "legislation", "mapping",
    "GIS", "remote sensing", "citizen science", "taxonomy", "red list", "endemic species", "freshwater",
    "coastal", "savanna", "grasslands", "drylands", "mountains", "islands", "agriculture", "forestry",
    "fisheries", "tourism", "health", "one health", "pollution", "plastics", "pesticides", "subsidies",
    "private sector", "cities", "education", "awareness", "data", "open data", "reporting", "NBSAP",
    "30x30", "KMGBF", "ecosystem services", "nature-based solutions", "resilience", "adaptation",
]  # fmt: skip

SENTENCES_EN = [
    "This {kind} documents work on {topic} carried out in {party} between {y0} and {y1}.",
    "It brings together government agencies, research institutions and local communities.",
    "The results inform the national biodiversity strategy and the reporting to the Convention.",
    "Key findings highlight both progress and remaining gaps in {topic}.",
    "Data were collected at {n} sites and reviewed by national experts.",
    "Further phases will scale up the approach to other regions of {party}.",
    "The initiative contributes to the targets of the Kunming-Montreal Global Biodiversity Framework.",
]
SUMMARY_FR = (
    "Ce document présente les travaux sur {topic} menés en {party} entre {y0} et {y1}. "
    "Il réunit des administrations, des instituts de recherche et des communautés locales."
)
SUMMARY_ES = (
    "Este documento presenta el trabajo sobre {topic} realizado en {party} entre {y0} y {y1}. "
    "Reúne a organismos públicos, instituciones de investigación y comunidades locales."
)
BODY_SECTIONS_EN = ["Background", "Objectives", "Approach", "Results", "Next steps"]
BULLETS_EN = [
    "Establish a baseline and a monitoring protocol",
    "Engage indigenous peoples and local communities from the start",
    "Align national targets with the global framework",
    "Mobilize domestic and international resources",
    "Share data openly through the clearing-house mechanism",
    "Train staff in field methods and data management",
    "Evaluate outcomes against agreed indicators",
]
LINK_COUNTS = [0, 1, 1, 2, 3]
LINK_NAMES = ["Full text (PDF)", "Project website", "Dataset", "Press release", "Presentation", "Map viewer"]

EPOCH = datetime(2012, 1, 1, tzinfo=UTC)
BATCH = 10_000  # rows per COPY (and per worker task)
POOL = 2_048  # pre-drawn samples per field


@dataclass
class Reference:
    """What the generator draws from: parties (with names) and vocabulary codes."""

    parties: list[tuple[str, dict[str, str]]]
    party_weights: list[float]
    subjects: list[str]
    gbf_targets: list[str]
    aichi_targets: list[str]


async def load_reference(conn: asyncpg.Connection) -> Reference:
    """Parties and term codes from the reference tables (loaded by migration 0002)."""
    rows = await conn.fetch("SELECT code, name FROM parties ORDER BY code")
    if not rows:
        raise SystemExit("the parties table is empty: run the migrations first (app.db.migrate)")
    parties = [(r["code"], orjson.loads(r["name"]) if isinstance(r["name"], str) else r["name"]) for r in rows]
    terms: dict[str, list[str]] = {}
    for r in await conn.fetch("SELECT vocabulary, code FROM vocabulary_terms ORDER BY vocabulary, position"):
        terms.setdefault(r["vocabulary"], []).append(r["code"])
    rng = random.Random(7)
    # A few Parties publish most of the content (roughly Zipf), like the real network.
    order = list(range(len(parties)))
    rng.shuffle(order)
    weights = [0.0] * len(parties)
    for rank, i in enumerate(order, start=1):
        weights[i] = 1.0 / rank**0.8
    return Reference(parties, weights, terms.get("cbd-subjects", []), terms.get("gbf-targets", []),
                     terms.get("aichi-targets", []))  # fmt: skip


class Generator:
    """Builds `records` rows and their revision rows as COPY text lines; seeded, so runs are reproducible."""

    def __init__(self, ref: Reference, seed: int, now: datetime) -> None:
        self.ref = ref
        self.rng = rng = random.Random(seed)
        self.random = rng.random
        self.now = now
        self.span = (now - EPOCH).total_seconds()
        self.types = list(TYPE_WEIGHTS)
        self.type_cum = _cumulative(list(TYPE_WEIGHTS.values()))
        self.party_cum = _cumulative(ref.party_weights)
        # random.sample costs microseconds; pre-drawn pools keep the variety at a fraction of the cost.
        self.keyword_sets = [rng.sample(KEYWORDS, rng.randrange(2, 7)) for _ in range(POOL)]
        self.subject_sets = [rng.sample(ref.subjects, rng.randrange(1, 4)) for _ in range(POOL)] if ref.subjects \
            else [[]]  # fmt: skip
        self.gbf_sets = [rng.sample(ref.gbf_targets, rng.randrange(0, 5)) for _ in range(POOL)] if ref.gbf_targets \
            else [[]]  # fmt: skip
        self.aichi_sets = [rng.sample(ref.aichi_targets, rng.randrange(0, 3)) for _ in range(POOL)] \
            if ref.aichi_targets else [[]]  # fmt: skip
        self.summaries = [" ".join(rng.sample(SENTENCES_EN, rng.randrange(2, 4))) for _ in range(POOL)]
        self.bodies = [self._body_template() for _ in range(POOL)]

    def _pick(self, seq: list[Any]) -> Any:
        return seq[int(self.random() * len(seq))]

    def _uuid(self) -> uuid.UUID:
        bits = self.rng.getrandbits(128)
        bits = (bits & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
        bits = (bits & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
        return uuid.UUID(int=bits)

    def _when(self) -> datetime:
        # More recent content is more common: skew towards now.
        frac = self.random() ** 0.6
        return EPOCH + timedelta(seconds=frac * self.span, microseconds=int(self.random() * 1_000_000))

    def _body_template(self) -> str:
        rng = self.rng
        parts = []
        for section in rng.sample(BODY_SECTIONS_EN, rng.randrange(2, 4)):
            parts.append(f"## {section}\n\n" + " ".join(rng.sample(SENTENCES_EN, 3)))
            if rng.random() < 0.5:
                parts.append("\n".join(f"- {b}" for b in rng.sample(BULLETS_EN, rng.randrange(2, 5))))
        return "\n\n".join(parts)

    def lines(self, serial: int) -> tuple[str, str]:
        """One `records` row and its `record_revisions` row, in COPY text format."""
        rnd, pick = self.random, self._pick
        rtype = self.rng.choices(self.types, cum_weights=self.type_cum)[0]
        code, pname = self.rng.choices(self.ref.parties, cum_weights=self.party_cum)[0]
        kind = pick(KINDS[rtype])
        topic = pick(TOPICS)
        created = self._when()
        published = min(created + timedelta(seconds=rnd() * 30 * 86400), self.now)
        # Most records never change after publication; some are touched again later.
        updated = published if rnd() < 0.6 else min(published + timedelta(seconds=rnd() * 900 * 86400), self.now)
        y1 = created.year
        y0 = y1 - int(rnd() * 4)
        p_en, p_fr, p_es = pname.get("en", code), pname.get("fr", pname.get("en", code)), pname.get("es", code)

        roll = rnd()
        langs = ["en", "fr", "es"] if roll < 0.08 else ["en", "fr"] if roll < 0.23 else ["en", "es"] if roll < 0.35 \
            else ["en"]  # fmt: skip
        suffix = f" ({y1})" if rnd() < 0.3 else ""
        title = {"en": f"{kind[0]} {topic[0]} in {p_en}{suffix}"}
        fmt = {"topic": topic[0], "party": p_en, "y0": y0, "y1": y1, "n": 3 + int(rnd() * 120), "kind": rtype}
        summary = {"en": pick(self.summaries).format(**fmt)}
        if "fr" in langs:
            title["fr"] = f"{kind[1]} {topic[1]} en {p_fr}{suffix}"
            summary["fr"] = SUMMARY_FR.format(**{**fmt, "topic": topic[1], "party": p_fr})
        if "es" in langs:
            title["es"] = f"{kind[2]} {topic[2]} en {p_es}{suffix}"
            summary["es"] = SUMMARY_ES.format(**{**fmt, "topic": topic[2], "party": p_es})
        body = {"en": pick(self.bodies).format(**fmt)}
        if len(langs) > 1 and rnd() < 0.5:
            body[langs[1]] = summary[langs[1]]

        links = [
            {"url": f"https://chm.{code.lower()}.example.org/{rtype}/{serial}/{i}", "name": pick(LINK_NAMES),
             "language": pick(langs)}
            for i in range(pick(LINK_COUNTS))
        ]  # fmt: skip
        keywords = pick(self.keyword_sets)
        subjects = pick(self.subject_sets)
        gbf = pick(self.gbf_sets) if y1 >= 2022 else []
        aichi = pick(self.aichi_sets) if y1 < 2022 else []
        countries = [code]
        if rnd() < 0.15:
            countries += [p[0] for p in (pick(self.ref.parties) for _ in range(1 + int(rnd() * 3))) if p[0] != code]
        pub_date: date = (published - timedelta(days=int(rnd() * 60))).date()
        external_id = f"{code}-{RECORD_TYPE_ABBR[rtype]}-{serial}" if rnd() < 0.4 else None
        rid = str(self._uuid())

        j_title, j_summary, j_body, j_links = (orjson.dumps(v) for v in (title, summary, body, links))
        content = orjson.dumps({
            "type": rtype, "title": orjson.Fragment(j_title), "summary": orjson.Fragment(j_summary),
            "body": orjson.Fragment(j_body), "languages": langs, "links": orjson.Fragment(j_links),
            "keywords": keywords, "subjects": subjects, "gbf_targets": gbf, "aichi_targets": aichi,
            "countries": countries, "publication_date": pub_date,
        })  # fmt: skip
        published_s = published.isoformat()
        record = "\t".join((
            rid, str(serial), code, rtype, "published", "1", _text(external_id), _text(j_title.decode()),
            _text(j_summary.decode()), _text(j_body.decode()), _array(langs), _text(j_links.decode()),
            _array(keywords), _array(subjects), _array(gbf), _array(aichi), _array(countries), pub_date.isoformat(),
            created.isoformat(), updated.isoformat(), published_s, NULL,
        ))  # fmt: skip
        revision = "\t".join((rid, "1", _text(content.decode()), published_s, NULL))
        return record, revision


NULL = "\\N"
_ARRAY_SPECIAL = frozenset('{}," \\\t\n\r')


def _text(value: str | None) -> str:
    """A value in COPY text format."""
    if value is None:
        return NULL
    # str.replace is an order of magnitude faster than str.translate on non-ASCII text.
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _array(items: list[str]) -> str:
    """A text[] literal in COPY text format."""
    out = []
    for item in items:
        if not item or item.upper() == "NULL" or not _ARRAY_SPECIAL.isdisjoint(item):
            item = '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(item)
    return _text("{" + ",".join(out) + "}")


def build_batch(ref: Reference, seed: int, now: datetime, first: int, count: int) -> tuple[bytes, bytes]:
    """COPY payloads for `count` records starting at serial `first` (runs in a worker process)."""
    gen = Generator(ref, seed, now)
    records, revisions = [], []
    for serial in range(first, first + count):
        rec, rev = gen.lines(serial)
        records.append(rec)
        revisions.append(rev)
    return ("\n".join(records) + "\n").encode(), ("\n".join(revisions) + "\n").encode()


def _cumulative(weights: list[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


async def _secondary_indexes(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    """Indexes of `records` that back no constraint (safe to drop and rebuild): (name, definition)."""
    rows = await conn.fetch(
        """SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS def
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
           WHERE x.indrelid = 'records'::regclass
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
           ORDER BY i.relname"""
    )
    return [(r["name"], r["def"]) for r in rows]


async def _payloads(ref: Reference, base_seed: int, now: datetime, batches: list[tuple[int, int]],
                    workers: int | None) -> AsyncIterator[tuple[bytes, bytes]]:  # fmt: skip
    """COPY payloads in batch order; built by worker processes while the caller streams earlier ones."""
    if len(batches) <= 2:  # not worth starting processes
        for first, n in batches:
            yield build_batch(ref, base_seed + first, now, first, n)
        return
    workers = workers or max(1, (os.cpu_count() or 2) - 1)
    loop = asyncio.get_running_loop()
    todo = iter(batches)
    pending: deque[asyncio.Future[tuple[bytes, bytes]]] = deque()
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:

        def submit() -> None:
            batch = next(todo, None)
            if batch is not None:
                first, n = batch
                future = pool.submit(build_batch, ref, base_seed + first, now, first, n)
                pending.append(asyncio.wrap_future(future, loop=loop))

        for _ in range(workers + 1):
            submit()
        while pending:
            payload = await pending.popleft()
            submit()
            yield payload


# The change-log row each publish leaves (what OAI-PMH, Atom and the dumps' high-water mark read), appended
# once the records are in (one sequential scan; serials are not indexed alone), in publication order.
PUBLISH_CHANGES = """INSERT INTO changes (kind, entity_id, party, op, revision, public, at)
    SELECT 'record', id::text, party, 'publish', revision, true, published_at FROM records
    WHERE serial BETWEEN $1 AND $2 AND status = 'published' ORDER BY published_at, id"""


async def generate(url: str, count: int, *, seed: int | None = None, rebuild_indexes: bool | None = None,
                   workers: int | None = None, quiet: bool = False) -> dict[str, Any]:  # fmt: skip
    """Append `count` published records (and their revisions) to the database at `url`; ANALYZE after."""
    started = time.perf_counter()
    conn = await asyncpg.connect(url, server_settings={"jit": "off"})
    try:
        existing = await conn.fetchval("SELECT count(*) FROM records")
        if count <= 0:
            return {"added": 0, "total": existing, "seconds": 0.0}
        ref = await load_reference(conn)
        first = 1 + await conn.fetchval(
            "SELECT GREATEST((SELECT coalesce(max(serial), 0) FROM records),"
            " (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM record_serial_seq))"
        )
        # Rebuilding ten indexes once beats maintaining them per row when the load dominates the table.
        if rebuild_indexes is None:
            rebuild_indexes = count >= 100_000 and count >= existing
        dropped: list[tuple[str, str]] = []
        if rebuild_indexes:
            dropped = await _secondary_indexes(conn)
            for name, _ in dropped:
                await conn.execute(f'DROP INDEX "{name}"')
        try:
            await conn.execute("SET synchronous_commit = off")  # a crash would lose bench data only
            with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
                # Skip the per-row foreign-key triggers (parties and record ids are valid by construction).
                await conn.execute("SET session_replication_role = replica")
            base_seed = seed if seed is not None else first
            now = datetime.now(UTC)
            batches = [(first + i, min(BATCH, count - i)) for i in range(0, count, BATCH)]
            done = 0
            async for records, revisions in _payloads(ref, base_seed, now, batches, workers):
                async with conn.transaction():
                    await conn.copy_to_table("records", source=io.BytesIO(records), columns=RECORD_COLUMNS)
                    await conn.copy_to_table("record_revisions", source=io.BytesIO(revisions), columns=REVISION_COLUMNS)
                done += records.count(b"\n")
                if not quiet:
                    rate = done / (time.perf_counter() - started)
                    print(f"\r  datagen: {done:,}/{count:,} ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)
            if not quiet:
                print(file=sys.stderr)
            await conn.execute("SELECT setval('record_serial_seq', $1)", first + count - 1)
        finally:
            # Rebuild even after a failed load: never leave the table without its indexes.
            await conn.execute("RESET session_replication_role")
            await conn.execute("SET maintenance_work_mem = '512MB'")
            for name, definition in dropped:
                if not quiet:
                    print(f"  datagen: rebuilding {name}", file=sys.stderr, flush=True)
                await conn.execute(definition)
        await conn.execute(PUBLISH_CHANGES, first, first + count - 1)
        await conn.execute("ANALYZE records")
        await conn.execute("ANALYZE record_revisions")
        await conn.execute("ANALYZE changes")
        total = await conn.fetchval("SELECT count(*) FROM records")
    finally:
        await conn.close()
    return {"added": count, "total": total, "seconds": round(time.perf_counter() - started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="libpq URL of a migrated chm database")
    parser.add_argument("--records", type=int, default=10_000, help="how many records to add")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None, help="generator processes (default: CPUs - 1)")
    args = parser.parse_args()
    result = asyncio.run(generate(args.url, args.records, seed=args.seed, workers=args.workers))
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
