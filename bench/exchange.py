"""Offline bundles and import: export of N records (time, archive size, peak RSS) and import of N CSV rows
(records/s), each through the real `chm` command in a subprocess.

Run by hand, never as tests. One throw-away embedded PostgreSQL (or BENCH_DATABASE_URL), migrated:

    .venv/bin/python bench/exchange.py                  # 100,000 records
    .venv/bin/python bench/exchange.py --records 20000 --no-site
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen  # noqa: E402

CHM = str(Path(sys.executable).with_name("chm"))


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, peak RSS of the child in MB, stderr tail) of one command."""
    err = tempfile.TemporaryFile()  # noqa: SIM115 - read back after wait4
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (ru_maxrss in KiB on Linux)
    secs = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err.seek(0)
    stderr = err.read().decode(errors="replace").strip()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr[-3000:]}")
    return secs, usage.ru_maxrss / 1024, "\n  ".join(stderr.splitlines()[-3:])


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
    args = p.parse_args(argv)
    from app import db

    tmp = Path(tempfile.mkdtemp(prefix="chm-bench-exchange-"))
    url = os.environ.get("BENCH_DATABASE_URL") or db.start_embedded(tmp / "pg", database="chm_bench",
                                                                     cleanup="delete")  # fmt: skip
    db.migrate(url)
    env = {**os.environ, "DATABASE_URL": url, "CHM_DATA_DIR": str(tmp), "CHM_LOG_LEVEL": "WARNING"}
    print(f"generating {args.records:,} records...", flush=True)
    asyncio.run(datagen.generate(url, args.records, quiet=True))
    subprocess.run([CHM, "bundle", "keygen"], env=env, capture_output=True, check=True)

    out = tmp / "bundle.zip"
    cmd = [CHM, "export", "--out", str(out)] + (["--no-site"] if args.no_site else [])
    secs, rss, tail = run_measured(cmd, env)
    if not out.exists():
        raise SystemExit(f"export failed: {tail}")
    size = out.stat().st_size / 1e6
    print(f"export of {args.records:,} records{' (no site)' if args.no_site else ''}: {secs:.1f} s "
          f"({args.records / secs:,.0f} records/s), archive {size:.1f} MB, peak RSS {rss:.0f} MB\n"
          f"  {tail}")  # fmt: skip
    secs, _, tail = run_measured([CHM, "bundle", "verify", str(out), "--key", str(tmp / "bundle-signing.pub")], env)
    print(f"verify: {secs:.1f} s\n  {tail}")

    src = tmp / "rows.csv"
    csv_rows(src, args.records)
    secs, rss, tail = run_measured([CHM, "import", str(src), "--publish"], env)
    print(f"import of {args.records:,} CSV rows (--publish): {secs:.1f} s ({args.records / secs:,.0f} records/s), "
          f"peak RSS {rss:.0f} MB\n  {tail}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
