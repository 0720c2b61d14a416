"""Harvesting throughput: OAI-PMH ListRecords with sickle, NDJSON dumps, and the API's RSS while dumping.

    .venv/bin/python bench/harvest.py                         # OAI at 100,000; NDJSON at 10,000 and 100,000
    .venv/bin/python bench/harvest.py --oai 100000 --sizes 10000,1000000
    BENCH_DATABASE_URL=postgresql://... .venv/bin/python bench/harvest.py

Records come from bench/datagen.py (published, one revision each); every publish leaves one change-log row in
the real system, so the script backfills those rows for generated records (`backfill_changes`) — OAI-PMH and
the dumps are driven by the change log. The API runs as one uvicorn worker (uvloop, httptools), like bench/run.py.
SPEC targets: ListRecords ≥ 2,000 records/s; NDJSON ≥ 20,000 records/s with the API RSS flat across sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import datagen
from run import database, free_port, rss_mb, start_server

OAI_TARGET, NDJSON_TARGET = 2_000.0, 20_000.0


async def backfill_changes(url: str) -> int:
    """One `publish` change per published record that has none (what the services would have written)."""
    conn = await asyncpg.connect(url)
    try:
        status = await conn.execute(
            """INSERT INTO changes (kind, entity_id, party, op, revision, public, at)
               SELECT 'record', r.id::text, r.party, 'publish', r.revision, true, r.published_at
               FROM records r
               WHERE r.status = 'published'
                 AND NOT EXISTS (SELECT 1 FROM changes c WHERE c.kind = 'record' AND c.entity_id = r.id::text)
               ORDER BY r.published_at, r.id"""
        )
        await conn.execute("ANALYZE changes")
        return int(status.split()[-1])
    finally:
        await conn.close()


async def published(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM records WHERE status = 'published'"))
    finally:
        await conn.close()


async def grow(url: str, total: int) -> None:
    missing = total - await published(url)
    if missing > 0:
        await datagen.generate(url, missing, quiet=True)
    await backfill_changes(url)


def bench_oai(base: str, limit: int) -> dict[str, Any]:
    from sickle import Sickle

    started = time.perf_counter()
    n = 0
    for _record in Sickle(base + "/oai", timeout=600).ListRecords(metadataPrefix="oai_dc", ignore_deleted=False):
        n += 1
        if n >= limit:
            break
    seconds = time.perf_counter() - started
    return {"records": n, "seconds": round(seconds, 2), "records_per_s": round(n / seconds)}


def bench_ndjson(base: str, pid: int) -> dict[str, Any]:
    """Stream the whole dump (identity encoding, like `curl`), sampling the API's RSS as it goes."""
    peak = [rss_mb(pid)]
    before = peak[0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak.append(rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines = 0
    started = time.perf_counter()
    with httpx.stream("GET", base + "/api/v1/records.ndjson", headers={"Accept-Encoding": "identity"},
                      timeout=600) as resp:  # fmt: skip
        resp.raise_for_status()
        tail = b""
        for chunk in resp.iter_raw():
            lines += chunk.count(b"\n")
            tail = chunk[-1:]
        mark = resp.headers.get("x-change-seq")
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    assert tail in (b"", b"\n")
    return {"records": lines, "seconds": round(seconds, 2), "records_per_s": round(lines / seconds),
            "rss_before_mb": round(before, 1), "rss_peak_mb": round(max(peak), 1), "change_seq": mark}  # fmt: skip


def serve(url: str, tmp: Path) -> Any:
    env = {**os.environ, "DATABASE_URL": url, "CHM_LOG_LEVEL": "WARNING", "CHM_INPROCESS_WORKER": "false",
           "CHM_RATE_LIMIT_PER_MINUTE": "1000000000", "CHM_DATA_DIR": str(tmp)}  # fmt: skip
    server = start_server("chm-api", "app.main:app", free_port(), env, tmp)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.base + "/oai?verb=Identify", timeout=5).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    server.stop()
    raise SystemExit(f"chm-api did not start:\n{server.log_tail()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--oai", type=int, default=100_000, help="records harvested with sickle (0: skip)")
    parser.add_argument("--sizes", default="10000,100000", help="NDJSON dump sizes, ascending, comma-separated")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    from app import db

    results: dict[str, Any] = {"oai": None, "ndjson": []}
    with tempfile.TemporaryDirectory(prefix="chm-harvest-") as name:
        tmp = Path(name)
        url, _embedded = database(tmp)
        db.migrate(url)
        plain = db.to_libpq_url(url)
        steps = sorted({*sizes, *([args.oai] if args.oai else [])})
        server = None
        try:
            for size in steps:
                asyncio.run(grow(plain, size))
                server = server or serve(url, tmp)
                if size in sizes:
                    row = {"size": size, **bench_ndjson(server.base, server.proc.pid)}
                    results["ndjson"].append(row)
                    print(json.dumps({"ndjson": row}), flush=True)
                if size == args.oai:
                    results["oai"] = {"size": size, **bench_oai(server.base, size)}
                    print(json.dumps({"oai": results["oai"]}), flush=True)
            results["rss_after_mb"] = round(rss_mb(server.proc.pid), 1) if server else None
        finally:
            if server:
                server.stop()
    print(json.dumps(results, indent=2))
    oai_ok = results["oai"] is None or results["oai"]["records_per_s"] >= OAI_TARGET
    nd_ok = all(r["records_per_s"] >= NDJSON_TARGET for r in results["ndjson"])
    print(f"OAI ListRecords ≥ {OAI_TARGET:,.0f}/s: {'PASS' if oai_ok else 'FAIL'}; "
          f"NDJSON ≥ {NDJSON_TARGET:,.0f}/s: {'PASS' if nd_ok else 'FAIL'}")  # fmt: skip
    return 0 if oai_ok and nd_ok else 1


if __name__ == "__main__":
    sys.exit(main())
