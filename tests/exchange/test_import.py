"""chm import: CSV through the bulk service, per-item error report, resumable after a real kill."""

from __future__ import annotations

import asyncio
import csv
import os
import signal
import sys
import time
from asyncio.subprocess import DEVNULL, PIPE
from pathlib import Path

import orjson
from sqlalchemy import func, select

from app import db
from app.exchange import importer
from app.models import Record
from app.services.tokens import CLI_ADMIN

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "records.csv"
R = Record.__table__  # type: ignore[attr-defined]
BAD = {17: ("type", "flyer"), 101: ("gbf_targets", "GBF-TARGET-99"), 250: ("publication_date", "2024-13-45"),
       333: ("title.en", ""), 480: ("languages", "en;xx"), 612: ("countries", "BRA"),
       999: ("links", "not-a-url")}  # fmt: skip


def make_csv(path: Path, n: int = 1000) -> None:
    rows = []
    for i in range(n):
        row = {"external_id": f"sheet-{i:05d}", "party": "BR", "type": "resource",
               "title.en": f"Wetland inventory {i}", "title.fr": f"Inventaire des zones humides {i}",
               "summary.en": "A row from a spreadsheet.", "keywords": "wetlands;inventory",
               "gbf_targets": "GBF-TARGET-02;GBF-TARGET-03", "countries": "BR", "languages": "en;fr",
               "publication_date": "2024-05-01", "links": "https://example.org/w|Source|en"}  # fmt: skip
        if i in BAD:
            col, value = BAD[i]
            row[col] = value
            if col == "title.en":
                row["title.fr"] = ""
        rows.append(row)
    path.write_text(importer.sample_csv(rows), encoding="utf-8")


async def _count() -> tuple[int, int]:
    async with db.read_connection() as conn:
        total = (await conn.execute(select(func.count()).select_from(R))).scalar_one()
        distinct = (await conn.execute(select(func.count(func.distinct(R.c.external_id))))).scalar_one()
    return total, distinct


def _report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


async def test_csv_with_seven_bad_rows(tmp_path: Path) -> None:
    src = tmp_path / "records.csv"
    make_csv(src)
    state, report = importer.default_paths(src)
    summary = await importer.run(src, importer.LocalSink(db.get_engine(), CLI_ADMIN), state_path=state,
                                 report_path=report, publish=True)  # fmt: skip
    assert summary.counts["created"] == 993 and summary.errors == 7
    assert await _count() == (993, 993)
    rows = _report(report)
    assert {int(r["line"]) for r in rows} == {i + 2 for i in BAD}  # header is line 1
    by_line = {int(r["line"]): r for r in rows}
    assert by_line[19]["external_id"] == "sheet-00017" and by_line[19]["field"] == "type"
    assert by_line[103]["field"] == "gbf_targets" and "GBF-TARGET-99" in by_line[103]["reason"]
    assert by_line[252]["field"] == "publication_date"
    # a re-run is complete already; a --restart changes nothing (upsert by external_id)
    again = await importer.run(src, importer.LocalSink(db.get_engine(), CLI_ADMIN), state_path=state,
                               report_path=report, publish=True, restart=True)  # fmt: skip
    assert again.counts["unchanged"] == 993 and await _count() == (993, 993)


async def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "records.csv"
    make_csv(src, 50)
    state, report = importer.default_paths(src)
    summary = await importer.run(src, importer.LocalSink(db.get_engine(), CLI_ADMIN), state_path=state,
                                 report_path=report, dry_run=True)  # fmt: skip
    assert summary.counts["created"] == 49 and summary.errors == 1
    assert await _count() == (0, 0) and not state.exists()


def test_unknown_column_refused(tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text("external_id,title.en,colour\nx,y,z\n")
    try:
        list(importer.read_items(src))
    except importer.ImportFileError as exc:
        assert "colour" in str(exc)
    else:
        raise AssertionError("unknown column accepted")


async def test_killed_half_way_then_resumed(tmp_path: Path, database_url: str) -> None:
    src = tmp_path / "records.csv"
    make_csv(src)
    state, report = importer.default_paths(src)
    env = {**os.environ, "DATABASE_URL": database_url}
    cmd = [str(Path(sys.executable).with_name("chm")), "import", str(src), "--batch-size", "10", "--publish"]
    proc = await asyncio.create_subprocess_exec(*cmd, env=env, stdout=DEVNULL, stderr=DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:  # wait for the condition: some batches acknowledged
            line = orjson.loads(state.read_bytes())["line"] if state.exists() else 0
            if line >= 200 or proc.returncode is not None or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.005)
        assert proc.returncode is None, "the import finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    killed_at = orjson.loads(state.read_bytes())["line"]
    total, _ = await _count()
    assert 0 < total < 993 and killed_at < 1001
    again = await asyncio.create_subprocess_exec(*cmd, env=env, stdout=DEVNULL, stderr=PIPE)
    _, stderr = await asyncio.wait_for(again.communicate(), 300)
    assert again.returncode == 1, stderr  # 1: some items were rejected
    assert b"resumed after line" in stderr
    assert await _count() == (993, 993)
    assert {int(r["line"]) for r in _report(report)} == {i + 2 for i in BAD}


async def test_documented_example_imports(tmp_path: Path) -> None:
    src = EXAMPLE
    summary = await importer.run(src, importer.LocalSink(db.get_engine(), CLI_ADMIN), state_path=tmp_path / "s",
                                 report_path=tmp_path / "r.csv", publish=True)  # fmt: skip
    assert summary.counts["created"] == 3 and summary.errors == 0
