"""`chm import`: records from CSV, JSON Lines or a bundle, pushed in batches through the bulk service (locally)
or a remote server's bulk endpoint, resumably, with a per-item error report.

Resuming: after each acknowledged batch a state file records the last line done; a re-run skips up to it.
A batch that landed but was not yet recorded (a kill between the two) is sent again and comes back
`unchanged`, since bulk upsert is keyed by (party, external_id): a re-run never duplicates.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import os
import zipfile
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson
from pydantic import ValidationError

from app.auth.principal import Principal
from app.exchange import bundle
from app.models.common import LANGS
from app.models.record import RecordCreate
from app.services.record_writes import BULK_MAX

REPORT_COLUMNS = ("line", "external_id", "field", "reason")
LIST_SEPARATOR = ";"
LINK_PARTS = "|"


class ImportFileError(Exception):
    """The input as a whole cannot be read (unknown columns, not CSV/JSON Lines/bundle, ...)."""


# --- CSV columns, derived from the write schema ----------------------------------------------------------------


def _columns() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(lstring fields, list fields, scalar fields) of RecordCreate, from its JSON schema."""
    lstrings: set[str] = set()
    lists: set[str] = set()
    scalars: set[str] = set()
    for name, prop in RecordCreate.model_json_schema()["properties"].items():
        options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
        kind = options[0].get("type") if options else None
        (lstrings if kind == "object" else lists if kind == "array" else scalars).add(name)
    return frozenset(lstrings), frozenset(lists), frozenset(scalars)


LSTRING_FIELDS, LIST_FIELDS, SCALAR_FIELDS = _columns()
CSV_COLUMNS: tuple[str, ...] = tuple(
    sorted(SCALAR_FIELDS) + sorted(f"{f}.{lang}" for f in LSTRING_FIELDS for lang in LANGS) + sorted(LIST_FIELDS)
)


def check_header(header: list[str]) -> None:
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown:
        raise ImportFileError(f"unknown CSV column(s): {', '.join(unknown)} (known: {', '.join(CSV_COLUMNS)})")


def _link(cell: str) -> dict[str, Any]:
    url, _, rest = cell.partition(LINK_PARTS)
    name, _, language = rest.partition(LINK_PARTS)
    link: dict[str, Any] = {"url": url.strip()}
    if name.strip():
        link["name"] = name.strip()
    if language.strip():
        link["language"] = language.strip()
    return link


def row_to_item(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as a bulk item: `title.fr` columns make lstrings, `;` separates list values, empty cells
    are absent."""
    item: dict[str, Any] = {}
    for column, raw in row.items():
        value = (raw or "").strip()
        if not value or column is None:
            continue
        name, _, lang = column.partition(".")
        if lang:
            item.setdefault(name, {})[lang] = value
        elif name == "links":
            item[name] = [_link(v) for v in value.split(LIST_SEPARATOR) if v.strip()]
        elif name in LIST_FIELDS:
            item[name] = [v.strip() for v in value.split(LIST_SEPARATOR) if v.strip()]
        else:
            item[name] = value
    return item


# --- reading inputs --------------------------------------------------------------------------------------------


@dataclass
class Item:
    """One input entry: its line, and either the bulk item or why it could not be read."""

    line: int
    data: dict[str, Any] | None
    error: tuple[str, str] | None = None  # (field, reason)


def detect_format(path: Path) -> str:
    if zipfile.is_zipfile(path):
        return "bundle"
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ImportFileError(f"{path.name}: give a .csv, .jsonl/.ndjson or a bundle (.zip)")


def read_items(path: Path, fmt: str | None = None) -> Iterator[Item]:
    """The entries of `path`, lazily, with their line numbers (CSV: the line a row starts on)."""
    fmt = fmt or detect_format(path)
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            check_header(list(reader.fieldnames or []))
            start = reader.line_num + 1
            for row in reader:
                if None in row:
                    yield Item(start, None, ("", f"{len(row[None])} cell(s) more than the header"))
                else:
                    yield Item(start, row_to_item(row))
                start = reader.line_num + 1
    elif fmt == "jsonl":
        with path.open("rb") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    value = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    yield Item(n, None, ("", f"not JSON: {exc}"))
                    continue
                yield Item(n, value) if isinstance(value, dict) else Item(n, None, ("", "each line must be an object"))
    elif fmt == "bundle":
        with zipfile.ZipFile(path) as zf:
            bundle.read_manifest(zf)
            for n, record in bundle.iter_lines(zf, bundle.FILES["record"]):
                if record.get("status") == "published":
                    yield Item(n, bundle_record_to_item(record))
    else:
        raise ImportFileError(f"unknown format {fmt}")


def bundle_record_to_item(record: dict[str, Any]) -> dict[str, Any]:
    """A bundled public record as a bulk item: its content, its Party, and its external_id (or, without one,
    its uid without the revision, so re-importing a newer bundle updates the same record)."""
    writable = set(RecordCreate.model_fields)
    item = {k: v for k, v in record.items() if k in writable and v is not None}
    if not item.get("external_id"):
        item["external_id"] = record["uid"].rsplit("-", 1)[0]
    return item


def count_items(path: Path, fmt: str | None = None) -> int:
    """How many entries `read_items` will yield (for the progress bar)."""
    fmt = fmt or detect_format(path)
    if fmt == "bundle":
        with zipfile.ZipFile(path) as zf:
            _, manifest = bundle.read_manifest(zf)
            counts = manifest.get("counts", {})
            return int(counts.get("record", 0)) - int(counts.get("withdrawn", 0))
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return max(0, sum(1 for _ in csv.reader(fh)) - 1)
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


# --- where batches go ------------------------------------------------------------------------------------------


class Sink(Protocol):
    """Sends one batch to the bulk service; answers one result per item ({external_id, id, status, error})."""

    async def send(self, items: list[dict[str, Any]], *, publish: bool, dry_run: bool) -> list[dict[str, Any]]: ...


class LocalSink:
    """This instance's database, through the bulk service (one transaction per batch; dry runs roll back)."""

    def __init__(self, engine: Any, principal: Principal) -> None:
        from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

        self.principal = principal
        self.sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

    async def send(self, items: list[dict[str, Any]], *, publish: bool, dry_run: bool) -> list[dict[str, Any]]:
        from app.services import record_writes

        async with self.sessions() as session:
            async with session.begin():
                results = await record_writes.bulk_upsert(session, self.principal, items, publish=publish)
                if dry_run:
                    await session.rollback()
            return results


class RemoteSink:
    """Another server's `POST /api/v1/records/bulk`, with retries on 429 and 5xx (honouring Retry-After)."""

    def __init__(self, url: str, token: str, *, client: httpx.AsyncClient | None = None, attempts: int = 6) -> None:
        self.url = url.rstrip("/") + "/api/v1/records/bulk"
        self.client = client or httpx.AsyncClient(timeout=120)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.attempts = attempts

    async def send(self, items: list[dict[str, Any]], *, publish: bool, dry_run: bool) -> list[dict[str, Any]]:
        if dry_run:  # the remote API has no validate-only mode: check the schema here
            return [_validate_only(i) for i in items]
        delay = 1.0
        for attempt in range(self.attempts):
            try:
                resp = await self.client.post(self.url, json={"items": items}, headers=self.headers,
                                              params={"publish": "true"} if publish else None)  # fmt: skip
            except httpx.TransportError:
                if attempt == self.attempts - 1:
                    raise
            else:
                if resp.status_code == 200:
                    return list(resp.json()["results"])
                if resp.status_code != 429 and resp.status_code < 500:
                    raise ImportFileError(f"{self.url} answered {resp.status_code}: {resp.text[:500]}")
                delay = float(resp.headers.get("Retry-After") or delay)
            await asyncio.sleep(delay)  # back-off between attempts, not synchronisation
            delay = min(delay * 2, 60)
        raise ImportFileError(f"{self.url} kept failing after {self.attempts} attempts")

    async def close(self) -> None:
        await self.client.aclose()


def _validate_only(item: dict[str, Any]) -> dict[str, Any]:
    try:
        RecordCreate.model_validate(item)
    except ValidationError as exc:
        errs = [{"loc": ["items", 0, *e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        return {"external_id": item.get("external_id"), "id": None, "status": "error",
                "error": {"detail": errs[0]["msg"], "errors": errs}}  # fmt: skip
    return {"external_id": item.get("external_id"), "id": None, "status": "valid", "error": None}


# --- the run ---------------------------------------------------------------------------------------------------


def fingerprint(path: Path) -> dict[str, Any]:
    """Identifies the input, so a state file is never applied to another file."""
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        sha.update(fh.read(1 << 20))
    return {"file": str(path.resolve()), "size": path.stat().st_size, "head_sha256": sha.hexdigest()}


@dataclass
class ImportState:
    """What a state file holds: the input's fingerprint and the last acknowledged line."""

    source: dict[str, Any]
    line: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    done: bool = False

    @classmethod
    def load(cls, path: Path, source: dict[str, Any]) -> ImportState | None:
        if not path.exists():
            return None
        data = orjson.loads(path.read_bytes())
        if data.get("source") != source:
            raise ImportFileError(f"{path} records an import of another file ({data.get('source', {}).get('file')}); "
                                  "delete it or pass --restart")  # fmt: skip
        return cls(source, int(data["line"]), Counter(data.get("counts") or {}), bool(data.get("done")))

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(orjson.dumps({"source": self.source, "line": self.line, "counts": dict(self.counts),
                                      "done": self.done}))  # fmt: skip
        os.replace(tmp, path)  # atomic: a kill leaves the old state or the new one, never half of one


def _field_of(loc: list[Any]) -> str:
    # ["items", 3, "title", "en"] -> "title.en": the CSV column at fault
    rest = loc[2:] if len(loc) >= 2 and loc[0] == "items" else loc
    return ".".join(str(p) for p in rest)


def error_rows(line: int, result: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Report rows for one failed item: one per field at fault."""
    err = result.get("error") or {}
    ext = result.get("external_id") or ""
    located = [e for e in err.get("errors") or [] if e.get("loc")]
    if not located:
        return [(line, ext, "", err.get("detail") or "rejected")]
    return [(line, ext, _field_of(e["loc"]), e.get("msg", "")) for e in located]


@dataclass
class ImportSummary:
    counts: Counter[str]
    resumed_from: int
    report: Path
    errors: int


async def run(
    path: Path,
    sink: Sink,
    *,
    state_path: Path,
    report_path: Path,
    fmt: str | None = None,
    batch_size: int = BULK_MAX,
    publish: bool = False,
    dry_run: bool = False,
    restart: bool = False,
    default_party: str | None = None,
    on_progress: Callable[[int], Awaitable[None] | None] | None = None,
) -> ImportSummary:
    """Push every entry of `path` through `sink`; resumable from `state_path`; errors go to `report_path`."""
    if not 1 <= batch_size <= BULK_MAX:
        raise ImportFileError(f"batch size must be 1 to {BULK_MAX}")
    source = fingerprint(path)
    state = None if (restart or dry_run) else ImportState.load(state_path, source)
    resumed = state is not None
    state = state or ImportState(source)
    resumed_from = state.line
    mode = "a" if resumed else "w"
    with report_path.open(mode, newline="", encoding="utf-8") as report_fh:
        report = csv.writer(report_fh)
        if not resumed:
            report.writerow(REPORT_COLUMNS)
        errors = 0

        async def flush(batch: list[Item]) -> None:
            nonlocal errors
            results = await sink.send([i.data for i in batch if i.data is not None], publish=publish,
                                      dry_run=dry_run) if batch else []  # fmt: skip
            for item, result in zip(batch, results, strict=True):
                state.counts[result["status"]] += 1
                if result["status"] == "error":
                    rows = error_rows(item.line, result)
                    report.writerows(rows)
                    errors += 1
            state.line = batch[-1].line
            report_fh.flush()
            if not dry_run:
                state.save(state_path)

        batch: list[Item] = []
        for item in read_items(path, fmt):
            if item.line <= state.line:
                continue
            if on_progress is not None:
                maybe = on_progress(1)
                if maybe is not None:
                    await maybe
            if item.error is not None:
                report.writerow((item.line, "", *item.error))
                state.counts["error"] += 1
                errors += 1
                continue
            assert item.data is not None
            if default_party and not item.data.get("party"):
                item.data["party"] = default_party
            batch.append(item)
            if len(batch) >= batch_size:
                await flush(batch)
                batch = []
        if batch:
            await flush(batch)
        state.done = True
        if not dry_run:
            state.save(state_path)
    if resumed:
        _dedupe(report_path)
    return ImportSummary(state.counts, resumed_from, report_path, errors)


def _dedupe(report_path: Path) -> None:
    """A kill between writing a batch's report rows and saving the state repeats them on resume: keep one."""
    with report_path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    unique = list(dict.fromkeys(tuple(r) for r in rows))
    if len(unique) != len(rows):
        with report_path.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(unique)


def default_paths(path: Path) -> tuple[Path, Path]:
    """(state file, error report) next to the input."""
    return path.with_name(path.name + ".import-state.json"), path.with_name(path.name + ".errors.csv")


def sample_csv(rows: list[dict[str, str]]) -> str:
    """A CSV text with the given rows (columns in the documented order; for docs and tests)."""
    columns = [c for c in CSV_COLUMNS if any(c in r for r in rows)]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
