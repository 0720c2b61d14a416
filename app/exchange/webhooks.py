"""Webhook delivery from the change log, following the Standard Webhooks specification.

Payloads: `{type, timestamp, data: {seq, kind, id, uid, party, revision, url}}` built from public change-log
entries only (a draft never leaves the server). Signing: `webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">`, one signature per live secret during a rotation.

The worker claims due subscriptions (`FOR UPDATE SKIP LOCKED`) and takes a lease on each; while it holds the lease
it delivers that subscription's events one at a time in `seq` order, recording each acknowledgement (and renewing
the lease) in one statement fenced by the lease. So one event is in flight per subscription, a crash leaves at most
the event in flight unacknowledged (sent again: at least once), and two workers never interleave. It wakes on
NOTIFY `chm_changes` (every change-log append) and `chm_webhooks` (pings, redeliveries, resumes), polling as
fallback.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import functools
import hashlib
import hmac
import ipaddress
import logging
import os
import random
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import __version__, db, metrics
from app.exchange import webhook_client
from app.models.record import make_uid
from app.services import webhooks as rules
from app.services.events import CHANGES_CHANNEL
from app.settings import Settings, get_settings

log = logging.getLogger("chm.webhooks")

RESPONSE_CAP = 4096  # bytes of a response body read (the rest is dropped)
EXCERPT_CHARS = 512  # kept in the delivery log
EVENT_BATCH = 100  # change-log entries read per query
ACK_BATCH = 50  # acknowledgements recorded per statement...
ACK_INTERVAL = 0.1  # ...or after this many seconds (a crash before then only means those events are sent again)
CLAIM_BUDGET = 500  # events delivered per claim before the subscription goes back to the queue (fairness)
CLAIM_EVERY = 0.005  # seconds between two claims at most (wake-ups come in bursts)
TAIL_SIZE = 20_000  # newest public change-log entries the worker keeps for every subscription to read
TAIL_READ = 2_000  # entries read per refresh of that tail
# Receivers whose connections are kept alive (least recently used dropped first): every subscription's, not just the
# `concurrency` being served, or each turn of a subscription would open a new connection (and a TLS handshake).
KEEP_ALIVE_TARGETS = 1_000
USER_AGENT = f"chm-api-webhooks/{__version__}"


# --- signing --------------------------------------------------------------------------------------------------


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_…` secret."""
    return base64.b64decode(secret.removeprefix(rules.SECRET_PREFIX))


@functools.lru_cache(maxsize=1024)
def _keyed(secret: str) -> Any:
    """An HMAC-SHA256 state with the key already mixed in (copied per message: the key schedule is done once)."""
    return hmac.new(secret_key(secret), digestmod=hashlib.sha256)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of `{id}.{timestamp}.{body}`."""
    mac = _keyed(secret).copy()
    mac.update(f"{msg_id}.{timestamp}.".encode())
    mac.update(body)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: space-separated signatures, one per live secret."""
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets)


def live_secrets(sub: Any, now: datetime) -> list[str]:
    """The current secret, and the previous one while its overlap lasts."""
    out = [sub.secret]
    if sub.previous_secret and sub.previous_secret_expires_at and sub.previous_secret_expires_at > now:
        out.append(sub.previous_secret)
    return out


# --- payloads -------------------------------------------------------------------------------------------------


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _uuids(values: list[str]) -> list[uuid.UUID]:
    out = []
    for v in values:
        with contextlib.suppress(ValueError):
            out.append(uuid.UUID(v))
    return out


@dataclass(frozen=True, slots=True)
class Event:
    """One message ready to sign: the webhook-id, the type, the body bytes."""

    seq: int | None
    id: str
    type: str
    body: bytes


Extra = dict[str, dict[str, Any]]  # entity id -> {"uid": ..., "path": ...}
Loader = Callable[[Any, list[Any]], Awaitable[Extra]]


async def _records(conn: Any, changes: list[Any]) -> Extra:
    ids = _uuids([c.entity_id for c in changes])
    revs = sorted({c.revision or 0 for c in changes})
    rows = await conn.execute(text(
        "SELECT r.id, r.party, r.serial, r.type, rr.revision, rr.content->>'type' AS rev_type FROM records r "
        "LEFT JOIN record_revisions rr ON rr.record_id = r.id AND rr.revision = ANY(CAST(:revs AS int[])) "
        "WHERE r.id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids, "revs": revs})  # fmt: skip
    out: Extra = {}
    for r in rows:
        entry = out.setdefault(str(r.id), {"path": f"/api/v1/records/{r.id}", "uids": {}})
        if r.revision is not None:
            entry["uids"][r.revision] = make_uid(r.rev_type or r.type, r.party, r.serial, r.revision)
        entry.setdefault("head", (r.type, r.party, r.serial))
    return out


async def _decisions(conn: Any, changes: list[Any]) -> Extra:
    rows = await conn.execute(text("SELECT id, code FROM decisions WHERE id = ANY(CAST(:ids AS uuid[]))"),
                              {"ids": _uuids([c.entity_id for c in changes])})  # fmt: skip
    return {str(r.id): {"uid": r.code, "path": f"/api/v1/decisions/{r.code}"} for r in rows}


async def _offers(conn: Any, changes: list[Any]) -> Extra:
    rows = await conn.execute(
        text("SELECT id, request_id FROM cooperation_offers WHERE id = ANY(CAST(:ids AS uuid[]))"),
        {"ids": _uuids([c.entity_id for c in changes])},
    )
    return {str(r.id): {"path": f"/api/v1/cooperation-requests/{r.request_id}/offers/{r.id}"} for r in rows}


async def _matches(conn: Any, changes: list[Any]) -> Extra:
    rows = await conn.execute(
        text(
            "SELECT id, request_id, opportunity_id, score FROM cooperation_matches WHERE id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": _uuids([c.entity_id for c in changes])},
    )
    return {str(r.id): {"path": f"/api/v1/cooperation-requests/{r.request_id}/matches",
                        "data": {"request_id": str(r.request_id), "opportunity_id": str(r.opportunity_id),
                                 "score": r.score}} for r in rows}  # fmt: skip


def _by_id(prefix: str) -> Loader:
    async def load(conn: Any, changes: list[Any]) -> Extra:
        return {c.entity_id: {"path": f"{prefix}/{c.entity_id}"} for c in changes}

    return load


# How each change-log kind finds its public uid and URL (a new kind adds one line).
LOADERS: dict[str, Loader] = {
    "record": _records,
    "decision": _decisions,
    "node": _by_id("/api/v1/nodes"),
    "cooperation-request": _by_id("/api/v1/cooperation-requests"),
    "offer": _offers,
    "opportunity": _by_id("/api/v1/opportunities"),
    "cooperation-match": _matches,  # data: the request, the opportunity and the score
}


def event_id(seq: int) -> str:
    """The webhook-id of change-log entry `seq`: the same for every attempt and every subscriber."""
    return f"evt_{seq}"


class PayloadCache:
    """Bodies by seq (deterministic per change-log entry), shared by every subscription of a worker."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._items: OrderedDict[int, Event | None] = OrderedDict()

    def get(self, seq: int) -> Event | bool | None:
        if seq in self._items:
            self._items.move_to_end(seq)
            return self._items[seq]
        return False

    def put(self, seq: int, event: Event | None) -> None:
        self._items[seq] = event
        if len(self._items) > self.size:
            self._items.popitem(last=False)


async def build_events(conn: Any, changes: list[Any], *, base_url: str, cache: PayloadCache | None = None
                       ) -> dict[int, Event | None]:  # fmt: skip
    """Events for public change-log rows (None for changes that are not pushed)."""
    out: dict[int, Event | None] = {}
    missing: list[Any] = []
    for c in changes:
        hit = cache.get(c.seq) if cache is not None else False
        if hit is False:
            missing.append(c)
        else:
            out[c.seq] = hit  # type: ignore[assignment]
    by_kind: dict[str, list[Any]] = {}
    for c in missing:
        if rules.event_type(c.kind, c.op, c.revision) is not None:
            by_kind.setdefault(c.kind, []).append(c)
    extra: dict[str, Extra] = {}
    for kind, group in by_kind.items():
        loader = LOADERS.get(kind)
        extra[kind] = await loader(conn, group) if loader else {}
    for c in missing:
        etype = rules.event_type(c.kind, c.op, c.revision)
        event = None
        if etype is not None:
            found = extra.get(c.kind, {}).get(c.entity_id, {})
            uid = found.get("uid")
            if "uids" in found and c.revision:
                uid = found["uids"].get(c.revision)
                if uid is None and "head" in found:
                    rtype, party, serial = found["head"]
                    uid = make_uid(rtype, party, serial, c.revision)
            path = found.get("path")
            data = {"seq": c.seq, "kind": c.kind, "id": c.entity_id, "uid": uid, "party": c.party,
                    "revision": c.revision, "url": base_url + path if path else None}  # fmt: skip
            data.update(found.get("data") or {})
            body = orjson.dumps({"type": etype, "timestamp": _iso(c.at), "data": data})
            event = Event(c.seq, event_id(c.seq), etype, body)
        out[c.seq] = event
        if cache is not None:
            cache.put(c.seq, event)
    return out


def ping_event(delivery_id: int, subscription_id: uuid.UUID, at: datetime) -> Event:
    """The body of a `webhook.ping`."""
    body = orjson.dumps({"type": rules.PING, "timestamp": _iso(at), "data": {"subscription_id": str(subscription_id),
                                                                              "delivery_id": delivery_id}})  # fmt: skip
    return Event(None, f"ping_{delivery_id}", rules.PING, body)


# --- sending --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Attempt:
    """What one HTTP attempt did."""

    ok: bool
    status_code: int | None = None
    duration_ms: float = 0.0
    error: str | None = None
    excerpt: str | None = None
    outcome: str = "success"  # success | http_error | timeout | connection_error | refused


class Sender:
    """POSTs signed messages: the host resolved and checked on every attempt (DNS rebinding), the connection pinned
    to the checked address (kept alive per address and Host), no redirects, a total timeout, the response body read
    up to a small cap."""

    def __init__(self, settings: Settings | None = None, *, max_targets: int = KEEP_ALIVE_TARGETS) -> None:
        self.settings = settings or get_settings()
        self.timeout = self.settings.webhook_timeout_seconds
        self.http = webhook_client.Client(max_targets=max_targets)
        self._literal: dict[str, tuple[webhook_client.Target, str]] = {}  # checked URLs whose host is an IP address

    async def close(self) -> None:
        await self.http.close()

    async def _target(self, url: str) -> tuple[webhook_client.Target, str]:
        known = self._literal.get(url)
        if known is not None:
            return known
        parts = rules.parse_url(url, settings=self.settings)
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addrs = await rules.resolve(host, port, allow_private=self.settings.webhook_private_targets)
        host_header = parts.netloc.rsplit("@", 1)[-1]
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        out = webhook_client.Target(addrs[0], port, parts.scheme == "https", host_header, host), path
        if _is_ip(host):  # an address, not a name: nothing can rebind, the check above holds for good
            if len(self._literal) >= 10_000:
                self._literal.clear()
            self._literal[url] = out
        return out

    async def send(self, url: str, event: Event, secrets: list[str]) -> Attempt:
        """One attempt; never raises."""
        started = time.perf_counter()
        ts = int(time.time())
        try:
            async with asyncio.timeout(self.timeout):
                target, path = await self._target(url)
                headers = {"content-type": "application/json", "user-agent": USER_AGENT, "webhook-id": event.id,
                           "webhook-timestamp": str(ts),
                           "webhook-signature": signature_header(secrets, event.id, ts, event.body)}  # fmt: skip
                response = await self.http.post(target, path, headers, event.body, cap=RESPONSE_CAP)
        except rules.UnsafeUrl as exc:
            return self._done(started, Attempt(False, error=exc.detail, outcome="refused"))
        except TimeoutError:
            return self._done(started, Attempt(False, error=f"timed out after {self.timeout:g} s", outcome="timeout"))
        except OSError as exc:  # refused, reset, TLS failure, an answer that is not HTTP
            return self._done(started, Attempt(False, error=f"{type(exc).__name__}: {exc}"[:500],
                                               outcome="connection_error"))  # fmt: skip
        excerpt = response.body.decode("utf-8", "replace")[:EXCERPT_CHARS] or None
        code = response.status
        if 200 <= code < 300:
            return self._done(started, Attempt(True, code, excerpt=excerpt))
        why = f"HTTP {code}" + (" (redirects are not followed)" if 300 <= code < 400 else "")
        return self._done(started, Attempt(False, code, error=why, excerpt=excerpt, outcome="http_error"))

    @staticmethod
    def _done(started: float, attempt: Attempt) -> Attempt:
        attempt.duration_ms = round((time.perf_counter() - started) * 1000, 2)
        metrics.WEBHOOK_DELIVERIES.labels(attempt.outcome).inc()
        return attempt


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


# --- the worker -----------------------------------------------------------------------------------------------

_CLAIM = """
    UPDATE webhook_subscriptions s SET lease_owner = :w, lease_until = now() + make_interval(secs => :lease)
    WHERE s.id IN (
        SELECT id FROM webhook_subscriptions t
        WHERE (t.lease_until IS NULL OR t.lease_until < now())
          AND ((t.status = 'active' AND t.next_attempt_at <= now() AND t.delivered_seq < :max_seq)
               OR (t.status <> 'disabled' AND EXISTS (SELECT 1 FROM webhook_deliveries d
                                                      WHERE d.subscription_id = t.id AND d.outcome = 'pending')))
        ORDER BY t.next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED)
    RETURNING s.id, s.url, s.status, s.event_types, s.parties, s.kinds, s.secret, s.previous_secret,
              s.previous_secret_expires_at, s.delivered_seq, s.attempts, s.next_attempt_at, s.failing_since,
              now() AS now, EXISTS (SELECT 1 FROM webhook_deliveries d
                                    WHERE d.subscription_id = s.id AND d.outcome = 'pending') AS pending
"""
# The change log's head and the public entries after :after up to it, in one snapshot (one statement): every
# entry at or below the head has committed (seq order is commit order), so nothing can appear below it later.
_TAIL = """
    WITH h AS (SELECT coalesce(max(seq), 0) AS head FROM changes)
    SELECT h.head, c.seq, c.kind, c.entity_id, c.party, c.op, c.revision, c.at
    FROM h LEFT JOIN LATERAL (SELECT * FROM changes WHERE seq > :after AND seq <= h.head AND public
                              ORDER BY seq LIMIT :n) c ON true
    ORDER BY c.seq
"""
_EVENTS = """
    SELECT seq, kind, entity_id, party, op, revision, at FROM changes
    WHERE seq > :after AND public {filters} ORDER BY seq LIMIT :n
"""
# Acknowledgements (and releases) of every subscription the worker served since the last flush, in one statement
# fenced by each lease: a subscription taken over, or deleted, meanwhile records nothing (its events are sent again).
_FLUSH = """
    WITH a AS (
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:acked AS bigint[]), CAST(:skip AS bigint[]),
                             CAST(:rel AS boolean[])) AS a(id, acked, skip, rel)),
    s AS (
        UPDATE webhook_subscriptions w SET
            delivered_seq = GREATEST(w.delivered_seq, a.acked, CASE WHEN w.status = 'active' THEN a.skip ELSE 0 END),
            attempts = CASE WHEN a.acked > 0 THEN 0 ELSE w.attempts END,
            failing_since = CASE WHEN a.acked > 0 THEN NULL ELSE w.failing_since END,
            last_error = CASE WHEN a.acked > 0 THEN NULL ELSE w.last_error END,
            last_success_at = CASE WHEN a.acked > 0 THEN now() ELSE w.last_success_at END,
            next_attempt_at = CASE WHEN a.acked > 0 THEN now() ELSE w.next_attempt_at END,
            lease_owner = CASE WHEN a.rel THEN NULL ELSE w.lease_owner END,
            lease_until = CASE WHEN a.rel THEN NULL ELSE now() + make_interval(secs => :lease) END
        FROM a WHERE w.id = a.id AND w.lease_owner = :w
        RETURNING w.id, w.status),
    logged AS (
        INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, seq, attempt, outcome, status_code,
                                        duration_ms, response_excerpt, attempted_at)
        SELECT d.sid, d.eid, d.etype, d.seq, d.attempt, 'success', d.code, d.ms, d.excerpt, d.at
        FROM unnest(CAST(:sids AS uuid[]), CAST(:eids AS text[]), CAST(:etypes AS text[]), CAST(:seqs AS bigint[]),
                    CAST(:attempts AS int[]), CAST(:codes AS int[]), CAST(:mss AS float8[]),
                    CAST(:excerpts AS text[]), CAST(:ats AS timestamptz[]))
             AS d(sid, eid, etype, seq, attempt, code, ms, excerpt, at)
        WHERE d.sid IN (SELECT id FROM s))
    SELECT id, status FROM s
"""
_FAIL = """
    WITH s AS (
        UPDATE webhook_subscriptions SET attempts = attempts + 1, failing_since = coalesce(failing_since, now()),
            last_error = :err, next_attempt_at = now() + make_interval(secs => :delay),
            lease_owner = NULL, lease_until = NULL,
            status = CASE WHEN coalesce(failing_since, now()) <= now() - make_interval(secs => :disable_after)
                          THEN 'disabled' ELSE status END,
            disabled_reason = CASE WHEN coalesce(failing_since, now()) <= now() - make_interval(secs => :disable_after)
                                   THEN 'failing since ' || to_char(coalesce(failing_since, now()) AT TIME ZONE 'UTC',
                                        'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ': ' || :err ELSE disabled_reason END
        WHERE id = :id AND lease_owner = :w AND status = 'active' RETURNING id, status)
    INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, seq, attempt, outcome, status_code,
                                    duration_ms, error, response_excerpt, attempted_at)
    SELECT id, :eid, :etype, :seq, :attempt, 'failure', :code, :ms, :err, :excerpt, now() FROM s
    RETURNING (SELECT status FROM s)
"""
_PENDING = """
    SELECT id, event_id, event_type, seq, redelivery_of FROM webhook_deliveries
    WHERE subscription_id = :id AND outcome = 'pending' ORDER BY id LIMIT 20
"""
_MANUAL_DONE = """
    UPDATE webhook_deliveries SET outcome = :outcome, status_code = :code, duration_ms = :ms, error = :err,
        response_excerpt = :excerpt, attempted_at = now(),
        attempt = coalesce((SELECT max(attempt) FROM webhook_deliveries o WHERE o.subscription_id = :sid
                            AND o.event_id = :eid AND o.outcome <> 'pending'), 0) + 1
    WHERE id = :did AND EXISTS (SELECT 1 FROM webhook_subscriptions WHERE id = :sid AND lease_owner = :w)
"""
_RECOVERED = """
    UPDATE webhook_subscriptions SET next_attempt_at = now(), attempts = 0
    WHERE id = :id AND lease_owner = :w AND failing_since IS NOT NULL AND next_attempt_at > now()
"""
_BEAT = """
    INSERT INTO webhook_workers (name, beat_at, started_at, delivered) VALUES (:n, now(), now(), :d)
    ON CONFLICT (name) DO UPDATE SET beat_at = now(), delivered = :d
"""
_BY_STATUS = "SELECT status, count(*) AS n FROM webhook_subscriptions GROUP BY status"
_TRIM = "DELETE FROM webhook_deliveries WHERE created_at < now() - make_interval(days => :d) AND outcome <> 'pending'"
_BY_SEQ = """
    SELECT seq, kind, entity_id, party, op, revision, at FROM changes WHERE seq = ANY(CAST(:s AS bigint[])) AND public
"""
_BUSY = """
    SELECT count(*) FROM webhook_subscriptions s
    WHERE (s.status = 'active' AND s.next_attempt_at <= now()
           AND s.delivered_seq < (SELECT coalesce(max(seq), 0) FROM changes))
       OR (s.status <> 'disabled' AND EXISTS (SELECT 1 FROM webhook_deliveries d
                                              WHERE d.subscription_id = s.id AND d.outcome = 'pending'))
"""
_LAG = """
    SELECT s.id, coalesce(extract(epoch FROM now() - c.at), 0) AS lag
    FROM webhook_subscriptions s
    LEFT JOIN LATERAL (SELECT at FROM changes WHERE seq > s.delivered_seq AND public ORDER BY seq LIMIT 1) c ON true
    WHERE s.status = 'active'
"""


class LeaseLost(Exception):
    """Another worker took the subscription over, or it was paused, disabled or deleted meanwhile."""


def _filters(sub: Any) -> tuple[str, dict[str, Any]]:
    sql, params = "", {}
    if sub.kinds:
        sql += " AND kind = ANY(CAST(:kinds AS text[]))"
        params["kinds"] = list(sub.kinds)
    if sub.parties:
        sql += " AND party = ANY(CAST(:parties AS text[]))"
        params["parties"] = list(sub.parties)
    return sql, params


class DeliveryWorker:
    """Delivers every active subscription's events; `concurrency` subscriptions at a time, one event each."""

    def __init__(
        self,
        *,
        engine: AsyncEngine | None = None,
        settings: Settings | None = None,
        concurrency: int | None = None,
        poll_interval: float | None = None,
        listen: bool = True,
        name: str | None = None,
        budget: int = CLAIM_BUDGET,
    ) -> None:
        self.settings = settings or get_settings()
        self._engine = engine
        self.concurrency = concurrency or self.settings.webhook_concurrency
        self.poll_interval = poll_interval or self.settings.webhook_poll_seconds
        self.listen = listen
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.budget = budget
        self.lease = max(30.0, 3 * self.settings.webhook_timeout_seconds)
        self.base_url = self.settings.link_base_url()
        self.cache = PayloadCache()
        self.tail = _Tail(self)
        self.acks = _Flusher(self)
        self.sender: Sender | None = None
        self.delivered = 0
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._changed = True  # the change log may have grown since the tail was read
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._jobs: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._listener: Any = None
        self._own_engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        return self._engine or self._own_engine or db.get_engine()

    async def start(self) -> None:
        """Start the loop in the background (idempotent)."""
        if self._task is None or self._task.done():
            self._stopping.clear()
            if self._engine is None and self._own_engine is None:
                # Its own pool, sized to the concurrency, without waiting for the WAL flush on commit: a lost
                # acknowledgement after a crash only means the event is delivered again (at least once).
                url = db.get_engine().url.render_as_string(hide_password=False)
                self._own_engine = db.make_engine(url, pool_size=min(self.concurrency + 2, 64), server_settings={
                    "application_name": "chm-webhooks", "synchronous_commit": "off"})  # fmt: skip
            self.sender = self.sender or Sender(self.settings)
            self.acks.start()
            self._task = asyncio.create_task(self._run(), name=f"webhook-worker {self.name}")

    async def stop(self) -> None:
        """Let the events in flight finish, record their acknowledgements, release the leases, stop."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._jobs:
            await asyncio.gather(*self._jobs.values(), return_exceptions=True)
        await self.acks.stop()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
        if self.sender is not None:
            await self.sender.close()
            self.sender = None
        if self._own_engine is not None:
            await self._own_engine.dispose()
            self._own_engine = None

    def wake(self) -> None:
        self._changed = True
        self._wake.set()

    def _on_change(self, *_: Any) -> None:
        self._changed = True
        self._wake.set()

    async def _connect_listener(self) -> None:
        if not self.listen or (self._listener is not None and not self._listener.is_closed()):
            return
        import asyncpg

        self._changed = True  # appends made while nobody listened
        try:
            conn = await asyncpg.connect(db.to_libpq_url(self.engine.url.render_as_string(hide_password=False)))
            await conn.add_listener(CHANGES_CHANNEL, self._on_change)
            await conn.add_listener(rules.MANAGE_CHANNEL, lambda *_: self._wake.set())
            self._listener = conn
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("webhook worker: LISTEN unavailable (%s); polling every %.1fs", exc, self.poll_interval)
            self._listener = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_housekeeping = 0.0
        idle = self.poll_interval
        last_claim = 0.0
        while not self._stopping.is_set():
            await self._connect_listener()
            self._wake.clear()
            try:
                if self._changed or self._listener is None:
                    self._changed = False
                    await self.tail.refresh()
                free = self.concurrency - len(self._jobs)
                if free > 0:
                    # Wake-ups come in bursts (a commit, then every finished subscription): one claim serves them.
                    await asyncio.sleep(max(0.0, last_claim + CLAIM_EVERY - loop.time()))
                    last_claim = loop.time()
                    for sub in await self._claim(self.concurrency - len(self._jobs)):
                        task = asyncio.create_task(self._serve(sub), name=f"webhook {sub.id}")
                        self._jobs[sub.id] = task
                        task.add_done_callback(self._job_done)
                if loop.time() >= next_housekeeping:
                    next_housekeeping = loop.time() + 5.0
                    await self._housekeeping()
                self.last_error = None
                idle = self.poll_interval
            except Exception as exc:  # the database failed: keep the loop alive, retry later
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("webhook worker loop failed")
                idle = min(max(idle * 2, 0.5), 30.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=idle)
            if not self._wake.is_set():
                self._changed = True  # polling: look at the change log again

    def _job_done(self, task: asyncio.Task[None]) -> None:
        for key, t in list(self._jobs.items()):
            if t is task:
                del self._jobs[key]
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery task failed", exc_info=task.exception())
        self._wake.set()  # a slot is free

    async def _claim(self, n: int) -> list[_Claimed]:
        if n <= 0:
            return []
        head = self.tail.head
        async with self.engine.begin() as conn:
            rows = (await conn.execute(text(_CLAIM), {"w": self.name, "lease": self.lease, "max_seq": head,
                                                      "n": n})).all()  # fmt: skip
        return [_Claimed.of(r, head) for r in rows]

    async def _housekeeping(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(_BEAT), {"n": self.name, "d": self.delivered})
            metrics.WEBHOOK_LAG.clear()  # deleted subscriptions drop out
            for row in await conn.execute(text(_LAG)):
                metrics.WEBHOOK_LAG.labels(str(row.id)).set(float(row.lag))
            for status in ("active", "paused", "disabled"):
                metrics.WEBHOOK_SUBSCRIPTIONS.labels(status).set(0)
            for row in await conn.execute(text(_BY_STATUS)):
                metrics.WEBHOOK_SUBSCRIPTIONS.labels(row.status).set(row.n)
            if random.random() < 0.01:  # noqa: S311 - roughly every 8 minutes: trim the delivery log
                await conn.execute(text(_TRIM), {"d": self.settings.webhook_log_retention_days})

    # -- one subscription ----------------------------------------------------------------------------------------

    async def _serve(self, sub: _Claimed) -> None:
        assert self.sender is not None
        acks = _Acks(attempt=sub.attempts + 1)
        advance = 0
        try:
            if sub.pending:
                await self._manual(sub)
            if sub.status == "active" and sub.due:
                advance = await self._events(sub, acks)
        except LeaseLost:
            return
        except Exception:  # the database failed mid-way: what was not recorded is delivered again later
            log.exception("webhook delivery for %s failed", sub.id)
        # Record the last acknowledgements and release the lease with the next flush; the slot is free now (the
        # subscription stays leased, so unclaimable, until then).
        self.acks.submit(sub.id, acks, skip=advance, release=True)

    async def _manual(self, sub: _Claimed) -> None:
        """Pings and redeliveries queued for this subscription (not retried: the log shows the outcome)."""
        assert self.sender is not None
        async with self.engine.connect() as conn:
            pending = (await conn.execute(text(_PENDING), {"id": sub.id})).all()
            if not pending:
                return
            seqs = [p.seq for p in pending if p.seq is not None]
            changes = (await conn.execute(text(_BY_SEQ), {"s": seqs})).all() if seqs else []
            built = await build_events(conn, list(changes), base_url=self.base_url, cache=self.cache)
            await conn.commit()
        for p in pending:
            if p.seq is None:
                event: Event | None = ping_event(p.id, sub.id, datetime.now(UTC))
            else:
                event = built.get(p.seq)
            if event is None:
                attempt = Attempt(False, error="the event is no longer in the public change log", outcome="refused")
            else:
                attempt = await self.sender.send(sub.url, event, live_secrets(sub, datetime.now(UTC)))
            async with self.engine.begin() as conn:
                res = await conn.execute(text(_MANUAL_DONE), {
                    "outcome": "success" if attempt.ok else "failure", "code": attempt.status_code,
                    "ms": attempt.duration_ms, "err": attempt.error, "excerpt": attempt.excerpt, "sid": sub.id,
                    "eid": p.event_id, "did": p.id, "w": self.name,
                })  # fmt: skip
                if res.rowcount == 0:
                    raise LeaseLost
                if attempt.ok and sub.failing_since is not None:  # the receiver is back: retry events now
                    await conn.execute(text(_RECOVERED), {"id": sub.id, "w": self.name})

    async def _next(self, sub: _Claimed, after: int) -> tuple[list[tuple[Any, Event | None]], int | None]:
        """Up to EVENT_BATCH public changes after `after` with their events, and (when that is all there is for now)
        the seq this subscription is then caught up to. From the worker's tail when it reaches back that far (no
        query: one read serves every subscription), else from the change log with the subscription's filters."""
        if self.tail.covers(after):
            if after >= self.tail.high and self.tail.high < self.tail.head:
                await self.tail.refresh(behind_only=True)  # a burst larger than one read
            items = self.tail.after(after, EVENT_BATCH)
            return items, (self.tail.high if len(items) < EVENT_BATCH else None)
        filters, params = _filters(sub)
        async with self.engine.connect() as conn:
            changes = (await conn.execute(text(_EVENTS.format(filters=filters)),
                                          {"after": after, "n": EVENT_BATCH, **params})).all()  # fmt: skip
            built = await build_events(conn, list(changes), base_url=self.base_url, cache=self.cache)
            await conn.commit()
        # Caught up: seq order is commit order, so nothing at or below the claim's max seq can still appear.
        return [(c, built[c.seq]) for c in changes], (sub.max_seq if len(changes) < EVENT_BATCH else None)

    async def _events(self, sub: _Claimed, acks: _Acks) -> int:
        """Deliver events in seq order until caught up, a failure, or the budget; answers the seq to advance to."""
        assert self.sender is not None
        after = sub.delivered_seq
        budget = self.budget
        kinds, parties = set(sub.kinds), set(sub.parties)
        renewed = time.monotonic()
        flushed: asyncio.Future[str | None] | None = None  # the last acknowledgements handed to the flusher
        interrupted = False
        while budget > 0 and not interrupted:
            items, upto = await self._next(sub, after)
            for change, event in items:
                if (event is None or (kinds and change.kind not in kinds) or (parties and change.party not in parties)
                        or not rules.type_matches(sub.event_types, event.type)):  # fmt: skip
                    after = change.seq
                    continue
                if budget <= 0 or self._stopping.is_set():
                    interrupted = True  # the rest waits for the next claim
                    break
                if time.monotonic() - renewed > self.lease - self.settings.webhook_timeout_seconds - 5:
                    flushed = await self._checkpoint(sub, acks, flushed, wait=True)
                    renewed = time.monotonic()
                attempt = await self.sender.send(sub.url, event, live_secrets(sub, datetime.now(UTC)))
                if not attempt.ok:
                    if acks.seqs or flushed is not None:
                        await self._checkpoint(sub, acks, flushed, wait=True)
                    await self._fail(sub, event, attempt, acks.attempt)
                    raise LeaseLost  # the failure update released the lease
                metrics.WEBHOOK_LAG_SECONDS.observe(max(0.0, (datetime.now(UTC) - change.at).total_seconds()))
                acks.add(event, attempt)
                after = change.seq
                budget -= 1
                if len(acks.seqs) >= ACK_BATCH or time.monotonic() - acks.since > ACK_INTERVAL:
                    flushed = await self._checkpoint(sub, acks, flushed, wait=False)
                    renewed = time.monotonic()
            if upto is not None and not interrupted:
                after = max(after, upto)
                if not self.tail.covers(after) or self.tail.high <= after:
                    break  # caught up; else the tail grew meanwhile: go on without a new claim
        if flushed is not None:
            await self._settled(flushed)
        return after

    async def _checkpoint(self, sub: _Claimed, acks: _Acks, flushed: asyncio.Future[str | None] | None, *,
                          wait: bool) -> asyncio.Future[str | None]:  # fmt: skip
        """Hand the buffered acknowledgements to the flusher (renewing the lease). The previous hand-over must have
        been recorded first (one entry per subscription per flush), which is also when a lost lease shows."""
        if flushed is not None:
            await self._settled(flushed)
        future = self.acks.submit(sub.id, acks, skip=0, release=False)
        if wait:
            await self._settled(future)
        return future

    @staticmethod
    async def _settled(future: asyncio.Future[str | None]) -> None:
        if await future != "active":
            raise LeaseLost

    async def _fail(self, sub: _Claimed, event: Event, attempt: Attempt, attempt_no: int) -> None:
        s = self.settings
        delay = min(s.webhook_retry_base_seconds * 2 ** (attempt_no - 1), s.webhook_retry_max_seconds)
        delay *= 0.5 + random.random() / 2  # noqa: S311 - jitter, not cryptography
        async with self.engine.begin() as conn:
            row = (await conn.execute(text(_FAIL), {
                "err": attempt.error or "failed", "delay": delay, "disable_after": s.webhook_disable_after_seconds,
                "id": sub.id, "w": self.name, "eid": event.id, "etype": event.type, "seq": event.seq,
                "attempt": attempt_no, "code": attempt.status_code, "ms": attempt.duration_ms,
                "excerpt": attempt.excerpt,
            })).first()  # fmt: skip
        if row is not None and row[0] == "disabled":
            log.warning("webhook subscription %s disabled: failing for longer than %.0f s (%s)", sub.id,
                        s.webhook_disable_after_seconds, attempt.error)  # fmt: skip


class _Tail:
    """The newest public change-log entries with their events, read once for every subscription the worker serves.

    Holds every public entry in (low, high]; `head` is the change log's last seq at the last read (entries up to it
    have all committed). A subscription whose delivered seq is at least `low` takes its events from here."""

    def __init__(self, worker: DeliveryWorker, size: int = TAIL_SIZE) -> None:
        self.worker = worker
        self.size = size
        self.low: int | None = None  # None: nothing read yet
        self.high = 0
        self.head = 0
        self._seqs: list[int] = []
        self._items: list[tuple[Any, Event | None]] = []
        self._lock = asyncio.Lock()

    def covers(self, after: int) -> bool:
        return self.low is not None and after >= self.low

    def after(self, after: int, n: int) -> list[tuple[Any, Event | None]]:
        i = bisect.bisect_right(self._seqs, after)
        return self._items[i : i + n]

    async def refresh(self, *, behind_only: bool = False) -> None:
        """Read what was appended since the last read; `behind_only`: only if the last read stopped short of the
        head (a subscription at the end of a long burst: concurrent callers then share one read)."""
        async with self._lock:
            if behind_only and self.high >= self.head:
                return
            w = self.worker
            start = self.high if self.low is not None else None
            async with w.engine.connect() as conn:
                rows = (await conn.execute(text(_TAIL), {"after": start if start is not None else 2**62,
                                                         "n": TAIL_READ})).all()  # fmt: skip
                changes = [r for r in rows if r.seq is not None]
                built = await build_events(conn, changes, base_url=w.base_url, cache=w.cache) if changes else {}
                await conn.commit()
            head = rows[0].head if rows else self.head
            if self.low is None:
                self.low = self.high = head  # start at the end: older events come from the change log itself
            for c in changes:
                self._seqs.append(c.seq)
                self._items.append((c, built[c.seq]))
            self.head = head
            self.high = changes[-1].seq if len(changes) >= TAIL_READ else max(self.high, head)
            excess = len(self._seqs) - self.size
            if excess > 0:
                self.low = self._seqs[excess - 1]
                del self._seqs[:excess]
                del self._items[:excess]


@dataclass
class _Entry:
    acks: _Acks
    skip: int
    release: bool
    futures: list[asyncio.Future[str | None]]


class _Flusher:
    """Records acknowledgements and releases of all subscriptions in one statement per round trip (group commit):
    while one flush runs, the next one collects."""

    def __init__(self, worker: DeliveryWorker) -> None:
        self.worker = worker
        self._pending: dict[uuid.UUID, _Entry] = {}
        self._more = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._closing = False
            self._task = asyncio.create_task(self._run(), name=f"webhook-acks {self.worker.name}")

    async def stop(self) -> None:
        self._closing = True
        self._more.set()
        if self._task is not None:
            await self._task
            self._task = None

    def submit(self, sid: uuid.UUID, acks: _Acks, *, skip: int, release: bool) -> asyncio.Future[str | None]:
        """Queue `acks` (moved out: the caller's buffer is emptied); the future answers the subscription's status
        after the flush, None when its lease was lost."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        entry = self._pending.get(sid)
        if entry is None:
            self._pending[sid] = _Entry(acks.take(), skip, release, [future])
        else:  # not yet flushed (a task that failed before waiting for it): one row per subscription per statement
            entry.acks.extend(acks.take())
            entry.skip, entry.release = max(entry.skip, skip), entry.release or release
            entry.futures.append(future)
        self._more.set()
        return future

    async def _run(self) -> None:
        while True:
            await self._more.wait()
            self._more.clear()
            if self._pending:
                batch, self._pending = self._pending, {}
                await self._flush(batch)
                self.worker.wake()  # released subscriptions can be claimed again
            elif self._closing:
                return

    async def _flush(self, batch: dict[uuid.UUID, _Entry]) -> None:
        w = self.worker
        cols: dict[str, list[Any]] = {k: [] for k in ("sids", *_ACK_COLUMNS)}
        for sid, e in batch.items():
            cols["sids"] += [sid] * len(e.acks.seqs)
            for name in _ACK_COLUMNS:
                cols[name] += getattr(e.acks, name)
        params = {"ids": list(batch), "acked": [max(e.acks.seqs, default=0) for e in batch.values()],
                  "skip": [e.skip for e in batch.values()], "rel": [e.release for e in batch.values()],
                  "w": w.name, "lease": w.lease, **cols}  # fmt: skip
        status: dict[uuid.UUID, str] = {}
        for attempt in range(3):
            try:
                async with w.engine.connect() as conn:
                    status = {r.id: r.status for r in await conn.execute(text(_FLUSH), params)}
                    await conn.commit()
                break
            except Exception:  # not recorded: those events are sent again after the leases expire (at least once)
                log.exception("webhook acknowledgements not recorded (attempt %d)", attempt + 1)
                await asyncio.sleep(0.2 * (attempt + 1))
        acked = sum(len(e.acks.seqs) for sid, e in batch.items() if sid in status)
        w.delivered += acked
        for sid, e in batch.items():
            for future in e.futures:
                if not future.done():
                    future.set_result(status.get(sid))


@dataclass
class _Acks:
    """Acknowledged deliveries not yet recorded (columns for one unnest insert)."""

    attempt: int  # the attempt number of the next delivery (1 after the first success)
    since: float = 0.0
    eids: list[str] = field(default_factory=list)
    etypes: list[str] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    attempts: list[int] = field(default_factory=list)
    codes: list[int | None] = field(default_factory=list)
    mss: list[float] = field(default_factory=list)
    excerpts: list[str | None] = field(default_factory=list)
    ats: list[datetime] = field(default_factory=list)

    def add(self, event: Event, attempt: Attempt) -> None:
        if not self.seqs:
            self.since = time.monotonic()
        assert event.seq is not None
        self.eids.append(event.id)
        self.etypes.append(event.type)
        self.seqs.append(event.seq)
        self.attempts.append(self.attempt)
        self.codes.append(attempt.status_code)
        self.mss.append(attempt.duration_ms)
        self.excerpts.append(attempt.excerpt)
        self.ats.append(datetime.now(UTC))
        self.attempt = 1

    def take(self) -> _Acks:
        """The buffered acknowledgements, moved into a new buffer (this one is left empty)."""
        out = _Acks(self.attempt, self.since)
        for name in _ACK_COLUMNS:
            setattr(out, name, getattr(self, name))
            setattr(self, name, [])
        return out

    def extend(self, other: _Acks) -> None:
        for name in _ACK_COLUMNS:
            getattr(self, name).extend(getattr(other, name))


_ACK_COLUMNS = ("eids", "etypes", "seqs", "attempts", "codes", "mss", "excerpts", "ats")


@dataclass(slots=True)
class _Claimed:
    """A claimed subscription row and the change-log head seen at claim time."""

    id: uuid.UUID
    url: str
    status: str
    event_types: list[str]
    parties: list[str]
    kinds: list[str]
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    delivered_seq: int
    attempts: int
    failing_since: datetime | None
    max_seq: int
    due: bool
    pending: bool  # pings or redeliveries are queued

    @classmethod
    def of(cls, row: Any, max_seq: int) -> _Claimed:
        due = row.next_attempt_at <= row.now and row.delivered_seq < max_seq
        return cls(row.id, row.url, row.status, list(row.event_types), list(row.parties), list(row.kinds), row.secret,
                   row.previous_secret, row.previous_secret_expires_at, row.delivered_seq, row.attempts,
                   row.failing_since, max_seq, due, row.pending)  # fmt: skip


def default_worker() -> DeliveryWorker:
    """A worker configured from the settings."""
    return DeliveryWorker()


async def start_default_worker() -> DeliveryWorker:
    """Start a background worker in the running loop (the API's lifespan in development)."""
    worker = default_worker()
    await worker.start()
    return worker


async def drain(worker: DeliveryWorker, *, within: float = 30.0) -> None:
    """Wait until no subscription has due undelivered events or queued messages (tests, `chm worker --once`)."""
    deadline = time.monotonic() + within
    while True:
        async with worker.engine.connect() as conn:
            busy = (await conn.execute(text(_BUSY))).scalar_one()
        if not busy:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{busy} subscriptions still have work after {within} s")
        worker.wake()
        await asyncio.sleep(0.05)
