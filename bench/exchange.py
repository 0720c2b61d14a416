"""Offline bundles and import: export of N records (time, archive size, peak RSS), a delta after a small
change (size, time), verify, and import of N CSV rows (records/s), each through the real `chm` command in a
subprocess; every figure is printed with the load average at that moment.

Run by hand, never as tests. One throw-away embedded PostgreSQL (or BENCH_DATABASE_URL), migrated:

    .venv/bin/python bench/exchange.py                  # 100,000 records
    .venv/bin/python bench/exchange.py --records 20000 --no-site
    .venv/bin/python bench/exchange.py --records 1000000 --skip-import   # export memory at 1M

Peak RSS is the `chm` process's own: each command is started from a small helper process, because a child's
`ru_maxrss` also counts the pages of the (large) process it was forked from before its exec.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen  # noqa: E402

CHM = str(Path(sys.executable).with_name("chm"))
# Runs argv[1:] and prints "<exit code> <peak RSS KiB>" of that command alone (wait4 of its own child).
SPAWN = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
)


def load() -> str:
    """The load average now (1, 5, 15 min), as `uptime` prints it."""
    return "load " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, peak RSS of the command in MB, stderr tail) of one command."""
    err = tempfile.TemporaryFile()  # noqa: SIM115 - read back after the run
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", SPAWN, *cmd], env=env, stdout=subprocess.PIPE, stderr=err)
    secs = time.perf_counter() - t0
    err.seek(0)
    stderr = err.read().decode(errors="replace").strip()
    code, rss_kib = (int(x) for x in done.stdout.split())
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr[-3000:]}")
    return secs, rss_kib / 1024, "\n  ".join(stderr.splitlines()[-3:])


async def small_change(url: str, *, publish: int = 100, withdraw: int = 10) -> None:
    """What a delta carries: `publish` new records published, `withdraw` records withdrawn (through the services)."""
    from sqlalchemy import select

    from app import db
    from app.services import record_writes, records
    from app.services.tokens import CLI_ADMIN

    db.init_engine(url)
    try:
        async with db.transaction() as s:
            items = [{"external_id": f"delta-{i}", "party": "SN", "type": "news",
                      "title": {"en": f"Delta news {i}", "fr": f"Nouvelle {i}"}} for i in range(publish)]  # fmt: skip
            await record_writes.bulk_upsert(s, CLI_ADMIN, items, publish=True)
            ids = (await s.execute(select(records.R.c.id).where(records.R.c.status == "published")
                                   .order_by(records.R.c.serial).limit(withdraw))).scalars()  # fmt: skip
            for rid in list(ids):
                await record_writes.withdraw(s, CLI_ADMIN, rid)
    finally:
        await db.dispose_engine()


def csv_rows(path: Path, count: int) -> None:
    from app.exchange.importer import CSV_COLUMNS

    cols = [
        c
        for c in CSV_COLUMNS
        if c
        in (
            "external_id",
            "party",
            "type",
            "title.en",
            "title.fr",
            "summary.en",
            "keywords",
            "gbf_targets",
            "countries",
            "languages",
            "publication_date",
        )
    ]
    parties = ["BR", "FR", "SN", "KE", "IN", "MX", "DE", "CN"]
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(cols)
        for i in range(count):
            p = parties[i % len(parties)]
            values = {"external_id": f"bench-{i:07d}", "party": p, "type": "resource",
                      "title.en": f"Wetland inventory {i} of {p}", "title.fr": f"Inventaire des zones humides {i}",
                      "summary.en": "A field inventory of wetland sites, species and pressures.",
                      "keywords": "wetlands;inventory", "gbf_targets": "GBF-TARGET-02;GBF-TARGET-03",
                      "countries": p, "languages": "en;fr", "publication_date": "2024-05-01"}  # fmt: skip
            out.writerow([values[c] for c in cols])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="export and import throughput")
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--no-site", action="store_true", help="export JSON Lines and manifest only")
    p.add_argument("--skip-import", action="store_true", help="export (and delta) only")
    args = p.parse_args(argv)
    from app import db

    tmp = Path(tempfile.mkdtemp(prefix="chm-bench-exchange-"))
    url = os.environ.get("BENCH_DATABASE_URL") or db.start_embedded(tmp / "pg", database="chm_bench",
                                                                     cleanup="delete")  # fmt: skip
    db.migrate(url)
    env = {**os.environ, "DATABASE_URL": url, "CHM_DATA_DIR": str(tmp), "CHM_LOG_LEVEL": "WARNING"}
    print(f"generating {args.records:,} records... ({load()})", flush=True)
    asyncio.run(datagen.generate(url, args.records, quiet=True))
    subprocess.run([CHM, "bundle", "keygen"], env=env, capture_output=True, check=True)
    site = ["--no-site"] if args.no_site else []

    out = tmp / "bundle.zip"
    print(f"export... ({load()})", flush=True)
    secs, rss, tail = run_measured([CHM, "export", "--out", str(out), *site], env)
    if not out.exists():
        raise SystemExit(f"export failed: {tail}")
    with zipfile.ZipFile(out) as zf:
        hwm = orjson.loads(zf.read("manifest.json"))["high_water_mark"]
    print(f"export of {args.records:,} records{' (no site)' if args.no_site else ''}: {secs:.1f} s "
          f"({args.records / secs:,.0f} records/s), archive {out.stat().st_size / 1e6:.1f} MB, peak RSS {rss:.0f} MB"
          f" ({load()})\n  {tail}", flush=True)  # fmt: skip
    secs, _, tail = run_measured([CHM, "bundle", "verify", str(out), "--key", str(tmp / "bundle-signing.pub")], env)
    print(f"verify: {secs:.1f} s ({load()})\n  {tail}", flush=True)

    asyncio.run(small_change(url))
    delta = tmp / "delta.zip"
    secs, rss, tail = run_measured([CHM, "export", "--out", str(delta), "--since", str(hwm), *site], env)
    print(f"delta after 100 publications and 10 withdrawals: {secs:.1f} s, {delta.stat().st_size / 1e3:.0f} kB, "
          f"peak RSS {rss:.0f} MB ({load()})\n  {tail}", flush=True)  # fmt: skip
    out.unlink()
    if args.skip_import:
        return 0

    src = tmp / "rows.csv"
    csv_rows(src, args.records)
    print(f"import... ({load()})", flush=True)
    secs, rss, tail = run_measured([CHM, "import", str(src), "--publish"], env)
    print(f"import of {args.records:,} CSV rows (--publish): {secs:.1f} s ({args.records / secs:,.0f} records/s), "
          f"peak RSS {rss:.0f} MB ({load()})\n  {tail}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
