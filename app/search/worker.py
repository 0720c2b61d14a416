"""The search-outbox worker: claim rows (FOR UPDATE SKIP LOCKED), re-read the current public state, upsert or delete
the documents, and mark the rows done only after the engine confirmed — in that order, so a crash anywhere leaves
the rows pending and they are sent again.

Per entity, reading and writing the engine happens under a transaction-scoped advisory lock, so two workers
handling rows of the same entity write in the order they read: the last write carries the latest state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app import db, metrics, registry
from app.search import documents, sources
from app.search.backend import Document, EngineError, EngineUnavailable, SearchBackend
from app.services.events import OUTBOX_CHANNEL

log = logging.getLogger("chm.search.worker")

MAX_BACKOFF = timedelta(minutes=5)
UNAVAILABLE_BACKOFF = timedelta(seconds=30)  # the longest a worker waits between probes of a dead engine
RETENTION = timedelta(days=1)  # done rows are kept this long for inspection
REINDEX_OVERLAP = timedelta(minutes=5)  # writes that were in flight while a reindex read its snapshot

_CLAIM = """
    SELECT id, kind, entity_id, attempts, created_at FROM search_outbox
    WHERE done_at IS NULL AND NOT parked {due}
    ORDER BY next_attempt_at, id LIMIT :n FOR UPDATE SKIP LOCKED
"""
_LOCK = """
    SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))
    FROM (SELECT k FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS t(k, i) ORDER BY i) s
"""
AfterEngine = Callable[[list[int]], Awaitable[None]]


@dataclass
class BatchResult:
    """What one batch did."""

    claimed: int = 0
    done: int = 0
    failed: int = 0
    parked: int = 0
    unavailable: str | None = None  # the engine could not be reached: the whole batch waits


@dataclass
class _Target:
    kind: str
    entity_id: uuid.UUID
    rows: list[Any] = field(default_factory=list)

    @property
    def key(self) -> str:
        return documents.doc_key(self.kind, self.entity_id)


def _backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=2**attempts), MAX_BACKOFF)


async def _mark_done(conn: AsyncConnection, ids: list[int]) -> None:
    if ids:
        await conn.execute(text("UPDATE search_outbox SET done_at = now(), last_error = NULL WHERE id = ANY(:ids)"),
                           {"ids": ids})  # fmt: skip


async def _mark_failed(conn: AsyncConnection, rows: list[Any], error: str, *, max_attempts: int | None,
                       park_now: bool = False) -> int:  # fmt: skip
    """Count an attempt and schedule the retry; park rows that used up `max_attempts` (None: never park)."""
    parked = 0
    for row in rows:
        attempts = row.attempts + 1
        park = park_now or (max_attempts is not None and attempts >= max_attempts)
        # Engine outages (max_attempts None) never park a row, and the row stays due: the worker paces its probes.
        delay = timedelta(seconds=1) if max_attempts is None else _backoff(attempts)
        parked += park
        await conn.execute(
            text("UPDATE search_outbox SET attempts = :a, next_attempt_at = now() + :d, last_error = :e, "
                 "parked = :p WHERE id = :id"),
            {"a": attempts, "d": delay, "e": error[:2000], "p": park, "id": row.id},
        )  # fmt: skip
    return parked


async def _targets(conn: AsyncConnection, rows: list[Any]) -> tuple[dict[str, _Target], list[Any], list[Any]]:
    """Coalesce rows per searchable entity (a row of a kind that `reindexes` a parent, such as an offer, stands
    for that parent); returns targets, no-op rows, malformed rows."""
    targets: dict[str, _Target] = {}
    noop: list[Any] = []
    bad: list[Any] = []
    children: dict[tuple[str, str], dict[uuid.UUID, list[Any]]] = {}  # (kind, parent kind) -> child id -> rows
    for row in rows:
        try:
            entity_id = sources.parse_id(row.entity_id)
        except ValueError:
            bad.append(row)
            continue
        entity = registry.searchable(row.kind)
        if entity is None:
            bad.append(row)
        elif entity.kind == row.kind:
            t = targets.setdefault(documents.doc_key(row.kind, entity_id), _Target(row.kind, entity_id))
            t.rows.append(row)
        else:
            children.setdefault((row.kind, entity.kind), {}).setdefault(entity_id, []).append(row)
    for (kind, parent_kind), by_id in children.items():
        parent_of = await sources.resolve_parents(conn, kind, by_id)
        for child_id, child_rows in by_id.items():
            parent_id = parent_of.get(child_id)
            if parent_id is None:  # the child is gone (its parent's own row carries that change)
                noop.extend(child_rows)
                continue
            key = documents.doc_key(parent_kind, parent_id)
            targets.setdefault(key, _Target(parent_kind, parent_id)).rows.extend(child_rows)
    return targets, noop, bad


async def _load(conn: AsyncConnection, targets: list[_Target]) -> tuple[list[Any], list[str], dict[str, str]]:
    """Current documents to upsert, keys to delete, and per-key errors for entities that failed to load."""
    upserts: list[Any] = []
    deletes: list[str] = []
    errors: dict[str, str] = {}
    by_kind: dict[str, list[_Target]] = {}
    for t in targets:
        by_kind.setdefault(t.kind, []).append(t)
    for kind, group in by_kind.items():
        try:
            ups, dels = await sources.load(conn, kind, [t.entity_id for t in group])
        except Exception as exc:  # one bad entity must not block the others: load them one by one
            if len(group) == 1:
                errors[group[0].key] = f"{type(exc).__name__}: {exc}"
                continue
            sub_ups: list[Any] = []
            sub_dels: list[str] = []
            sub_errors: dict[str, str] = {}
            for t in group:
                u, d, e = await _load(conn, [t])
                sub_ups += u
                sub_dels += d
                sub_errors |= e
            ups, dels = sub_ups, sub_dels
            errors |= sub_errors
        upserts += ups
        deletes += dels
    return upserts, deletes, errors


async def process_batch(
    backend: SearchBackend,
    *,
    engine: AsyncEngine | None = None,
    batch_size: int = 200,
    max_attempts: int = 5,
    due_only: bool = True,
    after_engine: AfterEngine | None = None,
) -> BatchResult:
    """Claim up to `batch_size` pending rows and sync their entities; one transaction holds the claim throughout."""
    engine = engine or db.get_engine()
    result = BatchResult()
    async with engine.connect() as conn, conn.begin():
        due = "AND next_attempt_at <= now()" if due_only else ""
        rows = (await conn.execute(text(_CLAIM.format(due=due)), {"n": batch_size})).all()
        result.claimed = len(rows)
        if not rows:
            return result
        targets, noop, bad = await _targets(conn, list(rows))
        if bad:
            result.parked += await _mark_failed(conn, bad, "malformed outbox row (unknown kind or entity id)",
                                                max_attempts=max_attempts, park_now=True)  # fmt: skip
        ordered = sorted(targets.values(), key=lambda t: t.key)
        if ordered:
            await conn.execute(text(_LOCK), {"keys": [t.key for t in ordered]})
        upserts, deletes, load_errors = await _load(conn, ordered)
        failed = [t for t in ordered if t.key in load_errors]
        ok = [t for t in ordered if t.key not in load_errors]
        try:
            await backend.apply(upserts, deletes)
        except EngineUnavailable as exc:
            result.unavailable = str(exc)
            await _mark_failed(conn, [r for t in ordered for r in t.rows], str(exc), max_attempts=None)
            result.failed = len(rows) - result.parked
            return result
        except EngineError as exc:
            if len(ok) == 1:
                load_errors[ok[0].key] = str(exc)
                failed, ok = ok, []
            else:  # find the document the engine refuses: one entity at a time
                ok, failed_more = await _isolate(backend, ok, upserts, deletes, load_errors)
                failed += failed_more
        for t in failed:
            result.parked += await _mark_failed(conn, t.rows, load_errors[t.key], max_attempts=max_attempts)
            result.failed += len(t.rows)
        done = [r.id for t in ok for r in t.rows] + [r.id for r in noop]
        if after_engine is not None:
            await after_engine(done)  # fault injection: a crash here must leave every row pending
        await _mark_done(conn, done)
        result.done = len(done)
    metrics.SEARCH_SYNCED.inc(result.done)
    metrics.SEARCH_FAILED.inc(result.failed)
    if result.done:
        done_at, done_ids = datetime.now(UTC), set(done)
        for row in rows:
            if row.id in done_ids:
                metrics.SEARCH_LAG.observe((done_at - row.created_at).total_seconds())
    return result


async def _isolate(backend: SearchBackend, targets: list[_Target], upserts: list[Any], deletes: list[str],
                   errors: dict[str, str]) -> tuple[list[_Target], list[_Target]]:  # fmt: skip
    docs = {d["key"]: d for d in upserts}
    dels = set(deletes)
    ok, failed = [], []
    for t in targets:
        try:
            await backend.apply([docs[t.key]] if t.key in docs else [], [t.key] if t.key in dels else [])
            ok.append(t)
        except EngineUnavailable:
            raise
        except EngineError as exc:
            errors[t.key] = str(exc)
            failed.append(t)
    return ok, failed


async def drain(
    backend: SearchBackend,
    *,
    engine: AsyncEngine | None = None,
    batch_size: int = 500,
    max_attempts: int = 5,
    after_engine: AfterEngine | None = None,
) -> int:
    """Process until no pending row is left (back-off ignored); raises EngineUnavailable if the engine is down."""
    total = 0
    while True:
        res = await process_batch(backend, engine=engine, batch_size=batch_size, max_attempts=max_attempts,
                                  due_only=False, after_engine=after_engine)  # fmt: skip
        if res.claimed == 0:
            return total
        if res.unavailable:
            raise EngineUnavailable(res.unavailable)
        total += res.done


async def purge_done(engine: AsyncEngine | None = None, older_than: timedelta = RETENTION) -> int:
    """Delete rows done more than `older_than` ago."""
    async with (engine or db.get_engine()).begin() as conn:
        # The cast matters: untyped, `now() - $1` resolves as timestamptz - timestamptz and the comparison fails.
        res = await conn.execute(text("DELETE FROM search_outbox WHERE done_at < now() - CAST(:age AS interval)"),
                                 {"age": older_than})  # fmt: skip
        return int(res.rowcount or 0)


async def reindex(backend: SearchBackend, *, engine: AsyncEngine | None = None, batch_size: int = 500) -> int:
    """Build a fresh index from the database and swap it in; then re-queue what changed while it was built."""
    engine = engine or db.get_engine()
    await backend.ensure_ready()
    async with engine.connect() as conn:
        started = (await conn.execute(text("SELECT now()"))).scalar_one()
        await conn.commit()

        async def batches() -> AsyncIterator[list[Document]]:
            # The reading transaction waits, idle, while each batch is written: a maintenance read, not subject to
            # the API's idle-in-transaction timeout. It ends with the last batch, before the new table's indexes
            # are built (minutes at a million documents), holding no snapshot through that.
            await conn.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
            async for batch in sources.iter_all(conn, batch_size=batch_size):
                yield batch
            await conn.commit()

        count = await backend.build_and_swap(batches())
    async with engine.begin() as conn:
        # The build read a moving database: anything written since (minus the overlap for transactions that were
        # open when it started) may be missing from the new index, so it goes through the outbox again.
        await conn.execute(
            text("INSERT INTO search_outbox (kind, entity_id, parked) SELECT DISTINCT kind, entity_id, false "
                 "FROM search_outbox "
                 "WHERE created_at >= :since"),
            {"since": started - REINDEX_OVERLAP},
        )  # fmt: skip
        await conn.execute(text("SELECT pg_notify(:c, '')"), {"c": OUTBOX_CHANNEL})
    return count


class Worker:
    """Runs batches while there is work; sleeps until NOTIFY on `chm_outbox` or the poll interval."""

    def __init__(
        self,
        backend: SearchBackend,
        *,
        engine: AsyncEngine | None = None,
        batch_size: int = 200,
        poll_interval: float = 2.0,
        max_attempts: int = 5,
        listen: bool = True,
        max_idle: float = UNAVAILABLE_BACKOFF.total_seconds(),
        name: str = "search-worker",
    ) -> None:
        self.backend = backend
        self._engine = engine
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.listen = listen
        self.max_idle = max_idle
        self.name = name
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Any = None
        self.batches = 0
        self.last_error: str | None = None

    @property
    def engine(self) -> AsyncEngine:
        return self._engine or db.get_engine()

    async def start(self) -> None:
        """Start the loop in the background (idempotent)."""
        if self._task is None or self._task.done():
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Finish the current batch and stop."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_listener()

    def wake(self) -> None:
        """Look for work now."""
        self._wake.set()

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is open (a NOTIFY wakes the worker at once)."""
        return self._listener is not None and not self._listener.is_closed()

    async def _connect_listener(self) -> None:
        if not self.listen or (self._listener is not None and not self._listener.is_closed()):
            return
        import asyncpg

        url = db.to_libpq_url(self.engine.url.render_as_string(hide_password=False))
        try:
            conn = await asyncpg.connect(url)
            await conn.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())
            self._listener = conn
        except (OSError, asyncpg.PostgresError) as exc:  # polling still works; retry on the next idle turn
            log.warning("search worker: LISTEN unavailable (%s); polling every %.1fs", exc, self.poll_interval)
            self._listener = None

    async def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_purge = loop.time() + 60
        idle = self.poll_interval
        while not self._stopping.is_set():
            await self._connect_listener()
            self._wake.clear()
            try:
                res = await process_batch(self.backend, engine=self.engine, batch_size=self.batch_size,
                                          max_attempts=self.max_attempts)  # fmt: skip
                self.batches += 1
                self.last_error = res.unavailable
                if res.unavailable:
                    log.warning("search engine unavailable: %s", res.unavailable)
                    idle = min(max(idle * 2, 0.1), self.max_idle)
                elif res.claimed == self.batch_size:
                    idle = self.poll_interval
                    continue  # more work waiting
                else:
                    idle = self.poll_interval
                if loop.time() > next_purge:
                    next_purge = loop.time() + 3600
                    await purge_done(self.engine)
            except Exception as exc:  # the database itself failed: keep the loop alive, retry later
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("search worker batch failed")
                idle = min(max(idle * 2, 0.1), self.max_idle)
            # After a failure only the stop signal cuts the pause short: NOTIFYs would just hammer a dead engine.
            waiter = self._stopping if self.last_error else self._wake
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), timeout=idle)


def default_worker() -> Worker:
    """A worker for the configured backend and settings."""
    from app.search import get_backend
    from app.settings import get_settings

    s = get_settings()
    return Worker(get_backend(), batch_size=s.search_batch_size, poll_interval=s.search_poll_seconds,
                  max_attempts=s.search_max_attempts)  # fmt: skip


async def start_default_worker() -> Worker:
    """Start a background worker inside the running event loop (the API's lifespan in development)."""
    worker = default_worker()
    await worker.start()
    return worker
