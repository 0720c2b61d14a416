"""Search latency, bulk publish rate and publish-to-searchable lag (SPEC §9) on the PostgreSQL search backend.

Run by hand, never as tests. One throw-away embedded PostgreSQL (or BENCH_DATABASE_URL), migrated; see
bench/README.md ("Search, bulk publish and lag").

    .venv/bin/python bench/extra.py                       # all three, search at 100,000 documents
    .venv/bin/python bench/extra.py --search              # only search p50/p95
    .venv/bin/python bench/extra.py --search --million    # + search at 1,000,000 documents (~30-40 min)
    .venv/bin/python bench/extra.py --bulk --profile      # bulk publish, plus a cProfile of one batch
    .venv/bin/python bench/run.py --search --bulk --lag   # the same, through run.py
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))
os.environ.setdefault("CHM_LOG_LEVEL", "WARNING")

import datagen  # noqa: E402  (bench/ is not a package)

from app.search.backend import SearchQuery  # noqa: E402

# SPEC section 9.
TARGET_SEARCH_P95_100K = 50.0  # ms
TARGET_SEARCH_P95_1M = 50.0  # ms
TARGET_BULK_RPS = 10_000.0  # records/s, validation + audit + change log + outbox included
TARGET_LAG_P95 = 1000.0  # ms, publish → searchable with the worker running

# The mixed query set: very common terms (in almost every generated record), rare terms, two-word queries, a typo,
# French, filters and facets, a browse (no q) and a deeper page.
QUERIES: list[tuple[str, SearchQuery]] = [
    ("common", SearchQuery(q="biodiversity")),
    ("common", SearchQuery(q="national")),
    ("common + facets", SearchQuery(q="conservation", facets=("type", "party"))),
    ("two common words + facets", SearchQuery(q="national report", facets=("type", "party", "kind"))),
    ("two words", SearchQuery(q="conservation strategy")),
    ("less common", SearchQuery(q="peatlands")),
    ("two words, phrase-like", SearchQuery(q="seed banks")),
    ("rare", SearchQuery(q="Tuvalu")),
    ("typo", SearchQuery(q="biodiversty")),
    ("French", SearchQuery(q="biodiversité urbaine", lang="fr")),
    ("French", SearchQuery(q="restauration des mangroves", lang="fr")),
    ("common + filters", SearchQuery(q="biodiversity", party="BR", type="news", facets=("type",))),
    (
        "filter gbf_target + facets",
        SearchQuery(q="species", gbf_target="GBF-TARGET-03", facets=("gbf_targets", "subjects")),
    ),
    ("browse + filter + facet", SearchQuery(q="", type="project", facets=("party",))),
    ("common, page 26", SearchQuery(q="restoration", offset=500, limit=20)),
]

console = Console(width=None if sys.stdout.isatty() else 140)
FULL_PAGE = ("common", "two words")  # labels starting so, unfiltered: the words are everywhere, a full page is due


def answer_problem(label: str, q: SearchQuery, r: Any) -> str | None:
    """Why a search answer is not the one it should be (None when it is): a fast empty answer is not a pass."""
    hits = r.hits
    if not hits:
        return "no hits"
    filtered = any(getattr(q, k) for k in ("kind", "party", "type", "subject", "gbf_target"))
    if label.startswith(FULL_PAGE) and not filtered and len(hits) < q.limit:
        return f"{len(hits)} hits, a full page of {q.limit} expected"
    if r.estimated_total < len(hits) + q.offset:
        return f"estimated_total {r.estimated_total} < offset + hits"
    for name in ("party", "type", "kind"):
        want = getattr(q, name)
        if want is not None and any(h.get(name) != want for h in hits):
            return f"a hit outside the filter {name}={want}"
    for facet in q.facets:
        if not r.facets.get(facet):
            return f"facet {facet} missing or empty"
    return None


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def verdict(ok: bool) -> str:
    return "[bold green]PASS[/]" if ok else "[bold red]FAIL[/]"


# -- setup ----------------------------------------------------------------------------------------------------


def database(tmp: Path) -> str:
    from app import db

    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        url = db.start_embedded(tmp / "pg", database="chm_bench", cleanup="delete")
    db.migrate(url)
    return url


async def scalar(sql: str) -> Any:
    from sqlalchemy import text

    from app import db

    async with db.read_connection() as conn:
        return (await conn.execute(text(sql))).scalar()


async def fill_index(url: str, records: int) -> dict[str, Any]:
    """Top the records up to `records` (datagen), then rebuild the search table from them (`chm reindex`'s path)."""
    from sqlalchemy import text

    from app import db
    from app.search import worker
    from app.search.postgres import PostgresBackend

    out: dict[str, Any] = {}
    have = int(await scalar("SELECT count(*) FROM records WHERE status = 'published'"))
    if have < records:
        console.print(f"generating {records - have:,} records...")
        out["datagen"] = await datagen.generate(url, records - have)
    indexed = int(await scalar("SELECT count(*) FROM search_documents"))
    published = int(await scalar("SELECT count(*) FROM records WHERE status = 'published'"))
    if indexed < published:
        console.print(f"indexing {published:,} records (chm reindex's build-and-swap; ~1 min per 35,000)...")
        t0 = time.perf_counter()
        n = await worker.reindex(PostgresBackend())
        secs = time.perf_counter() - t0
        out["reindex"] = {"documents": n, "seconds": round(secs, 1), "docs_per_s": round(n / secs)}
        await worker.drain(PostgresBackend())  # the rows reindex re-queued
    async with db.get_engine().connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("SET statement_timeout = 0"))  # a million fresh rows: beyond the API's timeout
        await conn.execute(text("VACUUM ANALYZE search_documents"))
    out["documents"] = int(await scalar("SELECT count(*) FROM search_documents"))
    return out


# -- search ---------------------------------------------------------------------------------------------------


async def bench_search(rounds: int) -> dict[str, Any]:
    """Sequential searches on one connection, straight to the backend (no HTTP): p50/p95 over the mixed set."""
    from app import db
    from app.search.postgres import PostgresBackend

    backend = PostgresBackend()
    per: dict[int, list[float]] = {i: [] for i in range(len(QUERIES))}
    shape: dict[int, tuple[int, int]] = {}
    problems: dict[int, str] = {}
    async with db.read_connection() as conn:
        for _ in range(2):  # warm caches and prepared statements
            for _, q in QUERIES:
                await backend.search(q, conn=conn)
        for _ in range(rounds):
            for i, (_, q) in enumerate(QUERIES):
                t0 = time.perf_counter()
                r = await backend.search(q, conn=conn)
                per[i].append((time.perf_counter() - t0) * 1000)
                shape[i] = (r.estimated_total, len(r.hits))
                if problem := answer_problem(QUERIES[i][0], q, r):
                    problems.setdefault(i, problem)
    allv = [v for vs in per.values() for v in vs]
    return {
        "queries": len(allv),
        "p50_ms": round(statistics.median(allv), 2),
        "p95_ms": round(pct(allv, 95), 2),
        "max_ms": round(max(allv), 2),
        "per_query": [_query_row(i, v, shape[i], problems.get(i)) for i, v in per.items()],
        "wrong_answers": len(problems),
    }


def _query_row(i: int, times: list[float], shape: tuple[int, int], problem: str | None) -> dict[str, Any]:
    label, q = QUERIES[i]
    return {"label": label, "q": q.q, "filters": _filters(q), "median_ms": round(statistics.median(times), 2),
            "max_ms": round(max(times), 2), "estimated_total": shape[0], "hits": shape[1],
            "problem": problem}  # fmt: skip


def _filters(q: SearchQuery) -> str:
    parts = [f"{k}={getattr(q, k)}" for k in ("kind", "party", "type", "subject", "gbf_target", "lang")
             if getattr(q, k)]  # fmt: skip
    if q.facets:
        parts.append("facets=" + ",".join(q.facets))
    if q.offset:
        parts.append(f"offset={q.offset}")
    return " ".join(parts)


def print_search(res: dict[str, Any], docs: int) -> None:
    t = Table(title=f"Search, PostgreSQL backend — {docs:,} documents, {res['queries']} sequential queries")
    for col in ("query", "kind of query", "filters", "median ms", "max ms", "est. total", "hits", "answer"):
        t.add_column(col, justify="right" if col.endswith(("ms", "total", "hits")) else "left")
    for r in res["per_query"]:
        t.add_row(repr(r["q"]), r["label"], r["filters"], f"{r['median_ms']:.1f}", f"{r['max_ms']:.1f}",
                  f"{r['estimated_total']:,}", str(r["hits"]),
                  f"[bold magenta]{r['problem']}[/]" if r.get("problem") else "ok")  # fmt: skip
    console.print(t)


# -- bulk publish ---------------------------------------------------------------------------------------------


def bulk_items(count: int, tag: str) -> list[dict[str, Any]]:
    """Realistic, valid bulk items (the demo records' shapes), each with a fresh external_id."""
    from app.services.demo import demo_records

    items = demo_records(count)
    for n, item in enumerate(items):
        item["external_id"] = f"bench-{tag}-{n:07d}"
    return items


async def bench_bulk(total: int, batch: int, profile: bool) -> dict[str, Any]:
    """bulk_upsert(..., publish=True) in batches of `batch`, one transaction each, as the Secretariat.

    Like a server: each batch's items are made just before it (untimed; a request body is alive only while it is
    handled) and the objects alive after the warm-up are frozen out of the collector, as app.main's lifespan
    does. Making all `total` items up front kept ~10^6 containers alive that every full collection re-walked: up
    to a third of the batch time was the bench's own garbage collection. `cpu_ms`: this process's CPU per batch."""
    import gc

    from app import db
    from app.auth.principal import Principal
    from app.services.record_writes import bulk_upsert

    principal = Principal(kind="secretariat", scopes=frozenset({"admin"}))
    tag = uuid.uuid4().hex[:8]
    async with db.transaction() as session:  # warm caches (reference data, statements); not timed
        await bulk_upsert(session, principal, bulk_items(batch, tag + "w"), publish=True)
    gc.collect()
    gc.freeze()
    batches_s: list[float] = []
    cpu_s: list[float] = []
    statuses: dict[str, int] = {}
    for start in range(0, total, batch):
        chunk = bulk_items(min(batch, total - start), f"{tag}-{start}")
        t0, c0 = time.perf_counter(), time.process_time()
        async with db.transaction() as session:
            results = await bulk_upsert(session, principal, chunk, publish=True)
        batches_s.append(time.perf_counter() - t0)
        cpu_s.append(time.process_time() - c0)
        for r in results:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        del chunk, results
    out: dict[str, Any] = {
        "records": total,
        "batch": batch,
        "seconds": round(sum(batches_s), 3),
        "records_per_s": round(total / sum(batches_s)),
        "batch_ms": {"median": round(statistics.median(batches_s) * 1000, 1), "max": round(max(batches_s) * 1000, 1)},
        "cpu_ms": {"median": round(statistics.median(cpu_s) * 1000, 1)},
        "statuses": statuses,
    }
    if profile:
        out["profile"] = await _profile_batch(principal, bulk_items(batch, tag + "p"))
    return out


async def _profile_batch(principal: Any, items: list[dict[str, Any]]) -> str:
    """One batch: time per SQL statement (round trip included), then a cProfile (database waits show as epoll)."""
    from sqlalchemy import event

    from app import db
    from app.services.record_writes import bulk_upsert

    stmts: dict[str, list[float]] = {}
    started: list[float] = []

    def before(*_: Any) -> None:
        started.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        stmts.setdefault(" ".join(statement.split())[:90], []).append(time.perf_counter() - started.pop())

    sync = db.get_engine().sync_engine
    event.listen(sync, "before_cursor_execute", before)
    event.listen(sync, "after_cursor_execute", after)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    try:
        async with db.transaction() as session:
            await bulk_upsert(session, principal, items, publish=True)
    finally:
        prof.disable()
        event.remove(sync, "before_cursor_execute", before)
        event.remove(sync, "after_cursor_execute", after)
    wall = (time.perf_counter() - t0) * 1000
    lines = [f"one batch of {len(items)}: {wall:.0f} ms wall (under cProfile); SQL statements by time:"]
    for sql, ts in sorted(stmts.items(), key=lambda kv: -sum(kv[1])):
        lines.append(f"  {sum(ts) * 1000:8.1f} ms  x{len(ts):<3} {sql}")
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
    return "\n".join(lines) + "\n" + buf.getvalue()


# -- publish-to-searchable lag --------------------------------------------------------------------------------


def start_worker(url: str, tmp: Path) -> subprocess.Popen[bytes]:
    """`chm worker` (LISTEN/NOTIFY plus polling) in its own process, as production runs it."""
    env = {**os.environ, "DATABASE_URL": url, "CHM_LOG_LEVEL": "WARNING", "CHM_DATA_DIR": str(tmp / "chm-data")}
    env.pop("MEILI_URL", None)
    log = (tmp / "worker.log").open("wb")
    chm = shutil.which("chm", path=str(Path(sys.executable).parent)) or "chm"
    return subprocess.Popen([chm, "worker"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


async def bench_lag(url: str, tmp: Path, samples: int, gap: float) -> dict[str, Any]:
    """Publish one record at a time through the service; poll search until its unique title word is found."""
    from app import db
    from app.auth.principal import Principal
    from app.search.postgres import PostgresBackend
    from app.services.record_writes import bulk_upsert

    principal = Principal(kind="secretariat", scopes=frozenset({"admin"}))
    backend = PostgresBackend()
    proc = start_worker(url, tmp)
    lags: list[float] = []
    timeouts = 0
    try:
        deadline = time.monotonic() + 60  # the worker is up once the backlog (if any) is drained
        while int(await scalar("SELECT count(*) FROM search_outbox WHERE done_at IS NULL AND NOT parked")):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the worker did not drain the outbox: {(tmp / 'worker.log').read_text()[-2000:]}")
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        tag = uuid.uuid4().hex[:6]
        items = bulk_items(samples, "lag" + tag)
        async with db.read_connection() as conn:
            for n, item in enumerate(items):
                word = f"lagprobe{tag}x{n:04d}"
                item["title"] = {**item["title"], "en": f"{item['title'].get('en', '')} {word}"}
                async with db.transaction() as session:
                    await bulk_upsert(session, principal, [item], publish=True)
                committed = time.perf_counter()
                query = SearchQuery(q=word)
                while True:
                    if (await backend.search(query, conn=conn)).hits:
                        lags.append((time.perf_counter() - committed) * 1000)
                        break
                    if time.perf_counter() - committed > 10:
                        timeouts += 1
                        break
                    await asyncio.sleep(0.005)
                await asyncio.sleep(gap)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    if not lags:
        raise RuntimeError("no publish became searchable within 10 s")
    return {
        "samples": len(lags),
        "timeouts": timeouts,
        "p50_ms": round(statistics.median(lags), 1),
        "p95_ms": round(pct(lags, 95), 1),
        "max_ms": round(max(lags), 1),
    }


# -- main -----------------------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="search p95, bulk publish rate, publish-to-searchable lag (SPEC §9)")
    p.add_argument("--search", action="store_true", help="search p50/p95 on the mixed query set")
    p.add_argument("--bulk", action="store_true", help="bulk publish records/s")
    p.add_argument("--lag", action="store_true", help="publish-to-searchable lag with `chm worker` running")
    p.add_argument("--search-records", type=int, default=100_000, help="documents for the search benchmark")
    p.add_argument("--million", action="store_true", help="also search at 1,000,000 documents (~30-40 min)")
    p.add_argument("--rounds", type=int, default=10, help="passes over the query set")
    p.add_argument("--bulk-records", type=int, default=20_000, help="records to publish in bulk")
    p.add_argument("--batch", type=int, default=1000, help="records per bulk_upsert call (max 1,000)")
    p.add_argument("--profile", action="store_true", help="print a cProfile of one bulk batch")
    p.add_argument("--lag-samples", type=int, default=50, help="publishes timed for the lag")
    p.add_argument("--lag-gap", type=float, default=0.1, help="seconds between two lag publishes")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not (args.search or args.bulk or args.lag):
        args.search = args.bulk = args.lag = True
    tmp = Path(tempfile.mkdtemp(prefix="chm-bench-extra-"))
    atexit.register(shutil.rmtree, tmp, True)
    results: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(), "cpus": os.cpu_count(),
                               "loadavg_start": os.getloadavg(), "checks": {}}  # fmt: skip
    with console.status("starting PostgreSQL and migrating..."):
        url = database(tmp)
    results["bench_database"] = "BENCH_DATABASE_URL" if os.environ.get("BENCH_DATABASE_URL") else "embedded"
    return asyncio.run(_run(args, url, tmp, results))


async def _run(args: argparse.Namespace, url: str, tmp: Path, results: dict[str, Any]) -> int:
    await measure(args, url, tmp, results)
    checks = results["checks"]
    t = Table(title="SPEC §9 checks (search, bulk, lag)")
    for col in ("check", "measured", "target", "verdict"):
        t.add_column(col)
    for name, c in checks.items():
        t.add_row(
            name, c["measured"], c["target"], "[bold magenta]INVALID[/]" if c.get("invalid") else verdict(c["pass"])
        )
    console.print(t)
    load = results["loadavg_start"][0]
    if load > 0.5 * (os.cpu_count() or 1):
        console.print(f"[dim]• machine busy at start (load average {load:.1f} on {os.cpu_count()} CPUs)[/]")
    results["finished_at"] = datetime.now(UTC).isoformat()
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    path = out / f"extra-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    console.print(f"results: {path.relative_to(ROOT)}")
    if any(c.get("invalid") for c in checks.values()):
        console.print("[bold magenta]INVALID run[/]: some answers were wrong (see the tables)")
        return 3
    return 0 if all(c["pass"] for c in checks.values()) else 1


async def measure(args: argparse.Namespace, url: str, tmp: Path, results: dict[str, Any]) -> None:
    """Run the benchmarks `args` asks for; figures into `results`, one entry per check into results["checks"]
    (`invalid`: why the figure is not a valid measurement)."""
    from app import db

    db.init_engine(url)
    checks = results["checks"]
    try:
        if args.search:
            sizes = [(args.search_records, TARGET_SEARCH_P95_100K)]
            if args.million:
                sizes.append((1_000_000, TARGET_SEARCH_P95_1M))
            for size, target in sizes:
                setup = await fill_index(url, size)
                with console.status(f"searching {setup['documents']:,} documents..."):
                    res = {**await bench_search(args.rounds), "setup": setup}
                results[f"search_{size}"] = res
                print_search(res, setup["documents"])
                wrong = [f"{r['q']!r} {r['filters']}: {r['problem']}" for r in res["per_query"] if r["problem"]]
                checks[f"search p95 @ {setup['documents']:,} docs"] = {
                    "measured": f"p95 {res['p95_ms']:.1f} ms (p50 {res['p50_ms']:.1f}, max {res['max_ms']:.1f})",
                    "target": f"p95 < {target:.0f} ms", "pass": res["p95_ms"] < target,
                    "invalid": [f"wrong answers: {'; '.join(wrong)}"] if wrong else None}  # fmt: skip
        if args.lag:  # before bulk: the lag is measured on an idle outbox
            with console.status(f"lag: {args.lag_samples} publishes with `chm worker` running..."):
                res = await bench_lag(url, tmp, args.lag_samples, args.lag_gap)
            results["lag"] = res
            checks["publish → searchable lag"] = {
                "measured": f"p95 {res['p95_ms']:.0f} ms (p50 {res['p50_ms']:.0f}, max {res['max_ms']:.0f}, "
                f"{res['samples']} samples, {res['timeouts']} timeouts)",
                "target": f"p95 < {TARGET_LAG_P95:.0f} ms",
                "pass": res["p95_ms"] < TARGET_LAG_P95 and not res["timeouts"],
            }
        if args.bulk:
            with console.status(f"bulk: publishing {args.bulk_records:,} records in batches of {args.batch:,}..."):
                res = await bench_bulk(args.bulk_records, args.batch, args.profile)
            results["bulk"] = res
            checks["bulk publish"] = {
                "measured": f"{res['records_per_s']:,} records/s ({res['records']:,} in {res['seconds']:.1f} s; "
                f"batch median {res['batch_ms']['median']:.0f} ms, {res['cpu_ms']['median']:.0f} ms API CPU)",
                "target": f"≥ {TARGET_BULK_RPS:,.0f} records/s",
                "pass": res["records_per_s"] >= TARGET_BULK_RPS,
                # every item is new: anything but "created" means records were not published as measured
                "invalid": [f"item statuses {res['statuses']}"] if set(res["statuses"]) != {"created"} else None,
            }
            if res.get("profile"):
                console.print(res["profile"])
    finally:
        await db.dispose_engine()


if __name__ == "__main__":
    sys.exit(main())
