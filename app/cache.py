"""The response cache for anonymous public reads, validated by the change log.

An entry is a finished response (status, headers, body) keyed by the normalized request: path, sorted query,
Host, `Accept` and `Accept-Encoding` (the representation and its encoding). Each entry is tagged with the
change-log position (`seq`) and the cache generation it was built at; a build that started before a change
was seen is never stored. Invalidation:

- in this process, at once: `events.emit` marks the session when it appends to the change log, and the
  commit hook below clears every cache of the process before the writer's response is sent;
- across processes: every change-log append NOTIFYs `chm_changes` (payload: the newest seq); each process
  holds one dedicated asyncpg connection LISTENing there and clears on each notification;
- a lost listener connection clears the cache and stops caching until it is listening again (reconnects
  with backoff); `max_age` seconds bound any entry's life whatever happens (writes that bypass the change log,
  a notification lost in transit).

Only anonymous requests are ever looked up or stored (a request with `Authorization` or a cookie bypasses the
cache), only 200s that the HTTP layer marked `public`, and only the resource families listed in
`CACHEABLE_PREFIXES` (search is left out: its index is updated after the commit, by the worker). Memory is
bounded by `max_bytes` (an LRU on the bytes held). `If-None-Match` on a cached entry answers 304 without
touching the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.services.events import CHANGED_INFO_KEY, CHANGES_CHANNEL

log = logging.getLogger("chm.cache")

CACHEABLE_PREFIXES = (
    "/api/v1/records",
    "/api/v1/nodes",
    "/api/v1/decisions",
    "/api/v1/cooperation-requests",
    "/api/v1/opportunities",
    "/api/v1/changes",
)
# Request headers that change what an anonymous read answers (the negotiated representation, its encoding,
# the origin links are built on).
_KEY_HEADERS = (b"host", b"accept", b"accept-encoding")
# Headers of the stored response that a 304 from the cache leaves out (RFC 9110 §15.4.5: a 304 carries the
# validators and the caching headers, not the representation's metadata).
_NOT_IN_304 = frozenset({b"content-length", b"content-type", b"content-encoding"})
ENTRY_OVERHEAD = 512  # bytes counted per entry besides its body and headers (key, tuple, bookkeeping)


@dataclass(slots=True)
class Entry:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: str | None
    seq: int  # the change-log position when it was built
    expires: float  # time.monotonic()
    route: str
    size: int


def _key(scope: dict[str, Any]) -> tuple[Any, ...] | None:
    """The normalized request, or None when the request must not be served from (or stored in) a cache."""
    if scope["method"] not in ("GET", "HEAD"):
        return None
    path: str = scope["path"]
    if not path.startswith(CACHEABLE_PREFIXES):
        return None
    picked: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name == b"authorization" or name == b"cookie":
            return None  # never what a token (or a session) sees
        if name in _KEY_HEADERS:
            picked[name] = value.lower().replace(b" ", b"") if name != b"host" else value.lower()
    query: bytes = scope.get("query_string", b"")
    if b"&" in query:
        query = b"&".join(sorted(query.split(b"&")))
    return (scope.get("scheme", "http"), path, query, *(picked.get(h) for h in _KEY_HEADERS))


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for n, v in headers:
        if n.lower() == name:
            return v
    return None


def cacheable_start(status: int, headers: list[tuple[bytes, bytes]]) -> bool:
    """A response start the cache may keep: a 200 marked public by the HTTP layer, setting no cookie."""
    if status != 200:
        return False
    control = _header(headers, b"cache-control")
    return control is not None and control.startswith(b"public") and _header(headers, b"set-cookie") is None


class ResponseCache:
    """A byte-bounded LRU of finished anonymous responses, cleared by the change log (see the module doc)."""

    def __init__(self, *, max_bytes: int, max_age: float, listen_url: str | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_entry_bytes = max(max_bytes // 8, 1)
        self.max_age = max_age
        self.listen_url = listen_url
        self.entries: OrderedDict[tuple[Any, ...], Entry] = OrderedDict()
        self.bytes = 0
        self.generation = 0
        self.seq = 0  # the newest change-log position this process has heard of
        self.listening = False
        self.hits = 0
        self.misses = 0
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        self._lost: asyncio.Event | None = None
        _CACHES.add(self)

    # --- lookups and stores ---------------------------------------------------------------------------------

    def key(self, scope: dict[str, Any]) -> tuple[Any, ...] | None:
        """The cache key of a request, or None when this request bypasses the cache."""
        if not self.listening:
            return None  # without a listener nothing would ever invalidate an entry
        return _key(scope)

    def get(self, key: tuple[Any, ...]) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if entry.expires <= time.monotonic():
            self._drop(key)
            self.misses += 1
            return None
        self.entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: tuple[Any, ...], generation: int, status: int, headers: list[tuple[bytes, bytes]],
            body: bytes, route: str) -> bool:  # fmt: skip
        """Store a response built while the cache was at `generation`; refused if a change was seen since."""
        if generation != self.generation or not self.listening:
            return False
        size = len(body) + sum(len(n) + len(v) for n, v in headers) + ENTRY_OVERHEAD
        if size > self.max_entry_bytes:
            return False
        if key in self.entries:
            self._drop(key)
        etag = _header(headers, b"etag")
        self.entries[key] = Entry(status, headers, body, etag.decode("latin-1") if etag else None, self.seq,
                                  time.monotonic() + self.max_age, route, size)  # fmt: skip
        self.bytes += size
        while self.bytes > self.max_bytes and self.entries:
            self._drop(next(iter(self.entries)))
        return True

    def _drop(self, key: tuple[Any, ...]) -> None:
        entry = self.entries.pop(key)
        self.bytes -= entry.size

    def clear(self, seq: int | None = None) -> None:
        """Forget every entry (a change was committed, or the listener was lost)."""
        self.generation += 1
        if seq is not None and seq > self.seq:
            self.seq = seq
        self.entries.clear()
        self.bytes = 0

    @staticmethod
    def not_modified_headers(entry: Entry) -> list[tuple[bytes, bytes]]:
        return [(n, v) for n, v in entry.headers if n.lower() not in _NOT_IN_304]

    # --- the listener ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start LISTENing on the change channel (returns once the first connection listens, or failed)."""
        if self._task is not None or not self.listen_url:
            return
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._listen_forever(ready), name="response-cache-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 10)

    async def stop(self) -> None:
        task, self._task = self._task, None
        self.listening = False
        self.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.clear(int(payload) if payload.isdigit() else None)

    def _on_lost(self, _conn: Any) -> None:
        self.lose()

    def lose(self) -> None:
        """The listener connection is gone: nothing can invalidate entries any more, so drop them all."""
        if self.listening:
            log.warning("response cache: change listener lost; cache cleared, reconnecting")
        self.listening = False
        self.clear()
        if self._lost is not None:
            self._lost.set()

    async def _listen_forever(self, ready: asyncio.Event) -> None:
        import asyncpg

        from app import db

        backoff = 0.1
        while True:
            self._lost = asyncio.Event()
            try:
                url = db.to_libpq_url(self.listen_url or "")
                settings = {"application_name": "chm-cache"}
                self._conn = conn = await asyncpg.connect(url, timeout=5, server_settings=settings)
                conn.add_termination_listener(self._on_lost)
                await conn.add_listener(CHANGES_CHANNEL, self._on_notify)
                seq = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM changes")
                self.clear(int(seq))  # whatever was committed while not listening
                self.listening = True
                backoff = 0.1
                ready.set()
                await self._lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down or restarting: retry, caching nothing meanwhile
                log.warning("response cache: cannot listen for changes (%s); retrying", type(exc).__name__)
                ready.set()
            self.listening = False
            self.clear()
            await self._close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


_CACHES: weakref.WeakSet[ResponseCache] = weakref.WeakSet()


@event.listens_for(Session, "after_commit")
def _clear_after_public_change(session: Session) -> None:
    # The writer's own process sees its change at once (the NOTIFY only arrives a moment later).
    if session.info.pop(CHANGED_INFO_KEY, False):
        for cache in list(_CACHES):
            cache.clear()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(CHANGED_INFO_KEY, None)
