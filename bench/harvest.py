"""Harvesting throughput: OAI-PMH ListRecords with sickle, NDJSON dumps, and the API's RSS while dumping.

    .venv/bin/python bench/harvest.py                         # OAI at 100,000; NDJSON at 10,000 and 100,000
    .venv/bin/python bench/harvest.py --oai 100000 --sizes 10000,1000000
    .venv/bin/python bench/harvest.py --compare /tmp/main     # A/B: this tree vs another checkout, same data
    BENCH_DATABASE_URL=postgresql://... .venv/bin/python bench/harvest.py

Records come from bench/datagen.py (published, one revision and one `publish` change each: OAI-PMH and the
dumps are driven by the change log). The API runs as one uvicorn worker (uvloop, httptools), like bench/run.py.
Every figure comes with the CPU each side spent per 1,000 records (the API process, the PostgreSQL backends,
this client): on a shared machine the wall-clock rate moves with the load, CPU per record far less.
With `--compare DIR` a second API runs the code of DIR (a `git worktree add DIR main`, say) on the same
database, and every measurement runs against both, alternating which goes first.
SPEC targets: ListRecords ≥ 2,000 records/s; NDJSON ≥ 20,000 records/s with the API RSS flat across sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import datagen
from run import ROOT, database, free_port, rss_mb, start_server

OAI_TARGET, NDJSON_TARGET = 2_000.0, 20_000.0


async def backfill_changes(url: str) -> int:
    """A `publish` change for published records that have none (a database filled by an older datagen)."""
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
        added = int(status.split()[-1])
        if added:
            await conn.execute("ANALYZE changes")
        return added
    finally:
        await conn.close()


async def published(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM records WHERE status = 'published'"))
    finally:
        await conn.close()


async def postmaster_pid(url: str) -> int | None:
    """The local PostgreSQL server's pid (its backends' CPU is counted), None when it is not on this machine."""
    conn = await asyncpg.connect(url)
    try:
        pidfile = Path(await conn.fetchval("SHOW data_directory")) / "postmaster.pid"
        return int(pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError, asyncpg.PostgresError):
        return None
    finally:
        await conn.close()


async def grow(url: str, total: int) -> None:
    missing = total - await published(url)
    if missing > 0:
        await datagen.generate(url, missing, quiet=True)
    await backfill_changes(url)


class Cpu:
    """CPU seconds (user + system) spent by the API process, the database backends and this process."""

    def __init__(self, api_pid: int, postmaster: int | None) -> None:
        self.api = psutil.Process(api_pid)
        self.postmaster = psutil.Process(postmaster) if postmaster else None

    def sample(self) -> tuple[float, float | None, float]:
        api = sum(self.api.cpu_times()[:2])
        pg = None
        if self.postmaster is not None:
            pg = 0.0
            for proc in self.postmaster.children():
                with contextlib.suppress(psutil.Error):  # a backend that ended in between
                    pg += sum(proc.cpu_times()[:2])
        return api, pg, time.process_time()

    @staticmethod
    def per_1000(before: tuple[float, float | None, float], after: tuple[float, float | None, float],
                 records: int) -> dict[str, float | None]:  # fmt: skip
        k = max(records, 1) / 1000
        pg = None if before[1] is None or after[1] is None else round(1000 * (after[1] - before[1]) / k, 1)
        return {"api_cpu_ms_per_1000": round(1000 * (after[0] - before[0]) / k, 1), "pg_cpu_ms_per_1000": pg,
                "client_cpu_ms_per_1000": round(1000 * (after[2] - before[2]) / k, 1)}  # fmt: skip


def bench_oai(base: str, limit: int, cpu: Cpu) -> dict[str, Any]:
    from sickle import Sickle

    before = cpu.sample()
    started = time.perf_counter()
    n = 0
    for _record in Sickle(base + "/oai", timeout=600).ListRecords(metadataPrefix="oai_dc", ignore_deleted=False):
        n += 1
        if n >= limit:
            break
    seconds = time.perf_counter() - started
    return {"records": n, "seconds": round(seconds, 2), "records_per_s": round(n / seconds),
            **Cpu.per_1000(before, cpu.sample(), n)}  # fmt: skip


def bench_ndjson(base: str, pid: int, cpu: Cpu) -> dict[str, Any]:
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
    cpu_before = cpu.sample()
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
    cpu_after = cpu.sample()
    done.set()
    sampler.join()
    assert tail in (b"", b"\n")
    return {"records": lines, "seconds": round(seconds, 2), "records_per_s": round(lines / seconds),
            "rss_before_mb": round(before, 1), "rss_peak_mb": round(max(peak), 1), "change_seq": mark,
            **Cpu.per_1000(cpu_before, cpu_after, lines)}  # fmt: skip


def serve(name: str, url: str, tmp: Path, root: Path) -> Any:
    """chm-api with the code of `root` (this tree, or the `--compare` checkout)."""
    env = {**os.environ, "DATABASE_URL": url, "CHM_LOG_LEVEL": "WARNING", "CHM_INPROCESS_WORKER": "false",
           "CHM_RATE_LIMIT_PER_MINUTE": "1000000000", "CHM_DATA_DIR": str(tmp / name),
           "PYTHONPATH": str(root)}  # fmt: skip
    server = start_server(name, "app.main:app", free_port(), env, tmp, app_dir=None if root == ROOT else root)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.base + "/oai?verb=Identify", timeout=5).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    server.stop()
    raise SystemExit(f"{name} did not start:\n{server.log_tail()}")


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--oai", type=int, default=100_000, help="records harvested with sickle (0: skip)")
    parser.add_argument("--sizes", default="10000,100000", help="NDJSON dump sizes, ascending, comma-separated")
    parser.add_argument("--compare", type=Path, default=None,
                        help="another checkout of chm-api (e.g. main) to measure side by side")  # fmt: skip
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    from app import db

    roots = {"this": ROOT, **({"compare": args.compare.resolve()} if args.compare else {})}
    results: dict[str, Any] = {"load_start": _load(), "cpus": os.cpu_count(),
                               "runs": {name: {"oai": None, "ndjson": []} for name in roots}}  # fmt: skip
    print(json.dumps({"load": results["load_start"], "roots": {k: str(v) for k, v in roots.items()}}), flush=True)
    with tempfile.TemporaryDirectory(prefix="chm-harvest-") as name:
        tmp = Path(name)
        url, embedded = database(tmp)
        db.migrate(url)
        plain = db.to_libpq_url(url)
        postmaster = asyncio.run(postmaster_pid(plain))
        steps = sorted({*sizes, *([args.oai] if args.oai else [])})
        servers: dict[str, Any] = {}
        try:
            for i, size in enumerate(steps):
                asyncio.run(grow(plain, size))
                for label, root in roots.items():
                    servers[label] = servers.get(label) or serve(label, url, tmp, root)
                order = list(roots)[i % len(roots) :] + list(roots)[: i % len(roots)]  # alternate who goes first
                for label in order:
                    server = servers[label]
                    cpu = Cpu(server.proc.pid, postmaster)
                    run = results["runs"][label]
                    if size in sizes:
                        row = {"size": size, **bench_ndjson(server.base, server.proc.pid, cpu), "load": _load()}
                        run["ndjson"].append(row)
                        print(json.dumps({label: {"ndjson": row}}), flush=True)
                    if size == args.oai:
                        run["oai"] = {"size": size, **bench_oai(server.base, size, cpu), "load": _load()}
                        print(json.dumps({label: {"oai": run["oai"]}}), flush=True)
            for label, server in servers.items():
                results["runs"][label]["rss_after_mb"] = round(rss_mb(server.proc.pid), 1)
        finally:
            for server in servers.values():
                server.stop()
            if embedded:  # before its directory goes: a server whose data directory is gone never stops
                db.stop_embedded(tmp / "pg")
    results["load_end"] = _load()
    print(json.dumps(results, indent=2))
    mine = results["runs"]["this"]
    oai_ok = mine["oai"] is None or mine["oai"]["records_per_s"] >= OAI_TARGET
    nd_ok = all(r["records_per_s"] >= NDJSON_TARGET for r in mine["ndjson"])
    if args.compare:
        other = results["runs"]["compare"]
        if mine["oai"] and other["oai"]:
            print(f"OAI this/compare: {mine['oai']['records_per_s'] / other['oai']['records_per_s']:.2f}x records/s, "
                  f"API CPU {other['oai']['api_cpu_ms_per_1000'] / max(mine['oai']['api_cpu_ms_per_1000'], 0.1):.2f}x "
                  "less per record")  # fmt: skip
        for a, b in zip(mine["ndjson"], other["ndjson"], strict=True):
            speed = a["records_per_s"] / b["records_per_s"]
            cpu = b["api_cpu_ms_per_1000"] / max(a["api_cpu_ms_per_1000"], 0.1)
            print(f"NDJSON {a['size']:,} this/compare: {speed:.2f}x records/s, API CPU {cpu:.2f}x less per record")
    oai_verdict = "skipped" if mine["oai"] is None else "PASS" if oai_ok else "FAIL"
    print(f"(load {results['load_start']} → {results['load_end']} on {results['cpus']} CPUs) "
          f"OAI ListRecords ≥ {OAI_TARGET:,.0f}/s: {oai_verdict}; "
          f"NDJSON ≥ {NDJSON_TARGET:,.0f}/s: {'PASS' if nd_ok else 'FAIL'}")  # fmt: skip
    return 0 if oai_ok and nd_ok else 1


if __name__ == "__main__":
    sys.exit(main())
