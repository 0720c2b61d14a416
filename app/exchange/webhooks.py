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
import contextlib
import hashlib
import hmac
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

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import __version__, db, metrics
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
USER_AGENT = f"chm-api-webhooks/{__version__}"


# --- signing --------------------------------------------------------------------------------------------------


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_…` secret."""
    return base64.b64decode(secret.removeprefix(rules.SECRET_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of `{id}.{timestamp}.{body}`."""
    digest = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


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


def parts_origin(url: str) -> str:
    """scheme://host:port of a URL."""
    return "/".join(url.split("/", 3)[:3])


class Sender:
    """POSTs signed messages: the host resolved and checked on every attempt (DNS rebinding), the connection pinned
    to the checked address, no redirects, a total timeout, the response body read up to a small cap."""

    def __init__(self, settings: Settings | None = None, *, max_connections: int = 100) -> None:
        self.settings = settings or get_settings()
        self.timeout = self.settings.webhook_timeout_seconds
        self.max_clients = max_connections
        # One small client per target origin: httpcore scans its whole pool on every request, so one shared pool of
        # a hundred receivers' connections costs O(receivers) per delivery. At most one event is in flight per
        # subscription, so two connections per origin are plenty.
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()

    def client(self, origin: str) -> httpx.AsyncClient:
        client = self._clients.get(origin)
        if client is None:
            client = httpx.AsyncClient(follow_redirects=False, timeout=httpx.Timeout(self.timeout), trust_env=False,
                                       limits=httpx.Limits(max_connections=4, max_keepalive_connections=2))  # fmt: skip
            self._clients[origin] = client
            while len(self._clients) > self.max_clients:  # least recently used first; its requests finish on their own
                _, old = self._clients.popitem(last=False)
                asyncio.get_running_loop().create_task(old.aclose())
        else:
            self._clients.move_to_end(origin)
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def _target(self, url: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        parts = rules.parse_url(url, settings=self.settings)
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addrs = await rules.resolve(host, port, allow_private=self.settings.webhook_private_targets)
        addr = addrs[0]
        netloc_ip = f"[{addr}]" if ":" in addr else addr
        pinned = parts._replace(netloc=f"{netloc_ip}:{port}").geturl()
        host_header = parts.netloc.rsplit("@", 1)[-1]
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        return pinned, {"Host": host_header}, extensions

    async def send(self, url: str, event: Event, secrets: list[str]) -> Attempt:
        """One attempt; never raises."""
        started = time.perf_counter()
        ts = int(time.time())
        try:
            async with asyncio.timeout(self.timeout):
                pinned, headers, extensions = await self._target(url)
                signature = signature_header(secrets, event.id, ts, event.body)
                headers.update({"content-type": "application/json", "user-agent": USER_AGENT, "webhook-id": event.id,
                                "webhook-timestamp": str(ts), "webhook-signature": signature})  # fmt: skip
                client = self.client(f"{parts_origin(pinned)}|{headers['Host']}")
                request = client.build_request("POST", pinned, content=event.body, headers=headers,
                                                    extensions=extensions)  # fmt: skip
                response = await client.send(request, stream=True)
                try:
                    chunks, size = [], 0
                    async for chunk in response.aiter_raw():
                        chunks.append(chunk)
                        size += len(chunk)
                        if size >= RESPONSE_CAP:
                            break
                finally:
                    await response.aclose()
        except rules.UnsafeUrl as exc:
            return self._done(started, Attempt(False, error=exc.detail, outcome="refused"))
        except TimeoutError:
            return self._done(started, Attempt(False, error=f"timed out after {self.timeout:g} s", outcome="timeout"))
        except httpx.TimeoutException:
            return self._done(started, Attempt(False, error=f"timed out after {self.timeout:g} s", outcome="timeout"))
        except (httpx.HTTPError, OSError) as exc:
            return self._done(started, Attempt(False, error=f"{type(exc).__name__}: {exc}"[:500],
                                               outcome="connection_error"))  # fmt: skip
        excerpt = b"".join(chunks)[:RESPONSE_CAP].decode("utf-8", "replace")[:EXCERPT_CHARS] or None
        code = response.status_code
        if 200 <= code < 300:
            return self._done(started, Attempt(True, code, excerpt=excerpt))
        why = f"HTTP {code}" + (" (redirects are not followed)" if 300 <= code < 400 else "")
        return self._done(started, Attempt(False, code, error=why, excerpt=excerpt, outcome="http_error"))

    @staticmethod
    def _done(started: float, attempt: Attempt) -> Attempt:
        attempt.duration_ms = round((time.perf_counter() - started) * 1000, 2)
        metrics.WEBHOOK_DELIVERIES.labels(attempt.outcome).inc()
        return attempt


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
              now() AS now
"""
_EVENTS = """
    SELECT seq, kind, entity_id, party, op, revision, at FROM changes
    WHERE seq > :after AND public {filters} ORDER BY seq LIMIT :n
"""
_ACK = """
    WITH s AS (
        UPDATE webhook_subscriptions SET delivered_seq = GREATEST(delivered_seq, :seq), attempts = 0,
            failing_since = NULL, last_error = NULL, last_success_at = now(), next_attempt_at = now(),
            lease_until = now() + make_interval(secs => :lease)
        WHERE id = :id AND lease_owner = :w RETURNING id, status),
    logged AS (
        INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, seq, attempt, outcome, status_code,
                                        duration_ms, response_excerpt, attempted_at)
        SELECT s.id, d.eid, d.etype, d.seq, d.attempt, 'success', d.code, d.ms, d.excerpt, d.at
        FROM s, unnest(CAST(:eids AS text[]), CAST(:etypes AS text[]), CAST(:seqs AS bigint[]),
                       CAST(:attempts AS int[]), CAST(:codes AS int[]), CAST(:mss AS float8[]),
                       CAST(:excerpts AS text[]), CAST(:ats AS timestamptz[]))
             AS d(eid, etype, seq, attempt, code, ms, excerpt, at))
    SELECT status FROM s
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
_RENEW = """
    UPDATE webhook_subscriptions SET lease_until = now() + make_interval(secs => :lease)
    WHERE id = :id AND lease_owner = :w AND status = 'active'
"""
_RELEASE = """
    UPDATE webhook_subscriptions SET lease_owner = NULL, lease_until = NULL,
        delivered_seq = CASE WHEN status = 'active' THEN GREATEST(delivered_seq, :seq) ELSE delivered_seq END
    WHERE id = :id AND lease_owner = :w
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
        self.base_url = self.settings.public_base_url.rstrip("/")
        self.cache = PayloadCache()
        self.sender: Sender | None = None
        self.delivered = 0
        self.last_error: str | None = None
        self._wake = asyncio.Event()
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
            self.sender = self.sender or Sender(self.settings, max_connections=max(self.concurrency, 10))
            self._task = asyncio.create_task(self._run(), name=f"webhook-worker {self.name}")

    async def stop(self) -> None:
        """Let the events in flight finish, release the leases, stop."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._jobs:
            await asyncio.gather(*self._jobs.values(), return_exceptions=True)
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
        self._wake.set()

    async def _connect_listener(self) -> None:
        if not self.listen or (self._listener is not None and not self._listener.is_closed()):
            return
        import asyncpg

        try:
            conn = await asyncpg.connect(db.to_libpq_url(self.engine.url.render_as_string(hide_password=False)))
            for channel in (CHANGES_CHANNEL, rules.MANAGE_CHANNEL):
                await conn.add_listener(channel, lambda *_: self._wake.set())
            self._listener = conn
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("webhook worker: LISTEN unavailable (%s); polling every %.1fs", exc, self.poll_interval)
            self._listener = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_housekeeping = 0.0
        idle = self.poll_interval
        while not self._stopping.is_set():
            await self._connect_listener()
            self._wake.clear()
            try:
                free = self.concurrency - len(self._jobs)
                if free > 0:
                    for sub in await self._claim(free):
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

    def _job_done(self, task: asyncio.Task[None]) -> None:
        for key, t in list(self._jobs.items()):
            if t is task:
                del self._jobs[key]
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery task failed", exc_info=task.exception())
        self._wake.set()  # a slot is free, and the subscription may have more work

    async def _claim(self, n: int) -> list[Any]:
        async with self.engine.begin() as conn:
            max_seq = (await conn.execute(text("SELECT coalesce(max(seq), 0) FROM changes"))).scalar_one()
            rows = (await conn.execute(text(_CLAIM), {"w": self.name, "lease": self.lease, "max_seq": max_seq,
                                                      "n": n})).all()  # fmt: skip
        return [_Claimed.of(r, max_seq) for r in rows]

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
        advance = 0
        try:
            await self._manual(sub)
            if sub.status == "active" and sub.due:
                advance = await self._events(sub)
        except LeaseLost:
            return
        except Exception:  # the database failed mid-way: what was not recorded is delivered again later
            log.exception("webhook delivery for %s failed", sub.id)
        with contextlib.suppress(Exception):
            async with self.engine.begin() as conn:
                await conn.execute(text(_RELEASE), {"id": sub.id, "w": self.name, "seq": advance})

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

    async def _events(self, sub: _Claimed) -> int:
        """Deliver events in seq order until caught up, a failure, or the budget; answers the seq to advance to."""
        assert self.sender is not None
        filters, params = _filters(sub)
        after = sub.delivered_seq
        budget = self.budget
        acks = _Acks(attempt=sub.attempts + 1)
        renewed = time.monotonic()
        while budget > 0 and not self._stopping.is_set():
            async with self.engine.connect() as conn:
                changes = (await conn.execute(text(_EVENTS.format(filters=filters)),
                                              {"after": after, "n": EVENT_BATCH, **params})).all()  # fmt: skip
                built = await build_events(conn, list(changes), base_url=self.base_url, cache=self.cache)
                await conn.commit()
            for change in changes:
                event = built[change.seq]
                if event is None or not rules.type_matches(sub.event_types, event.type):
                    after = change.seq
                    continue
                if time.monotonic() - renewed > self.lease - self.settings.webhook_timeout_seconds - 5:
                    await (self._ack(sub, acks) if acks.seqs else self._renew(sub))
                    renewed = time.monotonic()
                attempt = await self.sender.send(sub.url, event, live_secrets(sub, datetime.now(UTC)))
                if not attempt.ok:
                    await self._ack(sub, acks)
                    await self._fail(sub, event, attempt, acks.attempt)
                    raise LeaseLost  # the failure update released the lease
                metrics.WEBHOOK_LAG_SECONDS.observe(max(0.0, (datetime.now(UTC) - change.at).total_seconds()))
                acks.add(event, attempt)
                after = change.seq
                budget -= 1
                if len(acks.seqs) >= ACK_BATCH or time.monotonic() - acks.since > ACK_INTERVAL:
                    await self._ack(sub, acks)
                    renewed = time.monotonic()
            if len(changes) < EVENT_BATCH:
                # Caught up: seq order is commit order, so nothing at or below the claim's max seq can still appear.
                after = max(after, sub.max_seq)
                break
        await self._ack(sub, acks)
        return after

    async def _renew(self, sub: _Claimed) -> None:
        async with self.engine.connect() as conn:
            res = await conn.execute(text(_RENEW), {"id": sub.id, "w": self.name, "lease": self.lease})
            await conn.commit()
        if res.rowcount == 0:
            raise LeaseLost

    async def _ack(self, sub: _Claimed, acks: _Acks) -> None:
        """Record the buffered acknowledgements and renew the lease, fenced by it; LeaseLost when the subscription
        was taken over, paused, disabled or deleted meanwhile."""
        if not acks.seqs:
            return
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(_ACK), {
                "seq": max(acks.seqs, default=0), "lease": self.lease, "id": sub.id, "w": self.name,
                "eids": acks.eids, "etypes": acks.etypes, "seqs": acks.seqs, "attempts": acks.attempts,
                "codes": acks.codes, "mss": acks.mss, "excerpts": acks.excerpts, "ats": acks.ats,
            })).first()  # fmt: skip
            await conn.commit()
        self.delivered += len(acks.seqs)
        acks.clear()
        if row is None or row.status != "active":
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

    def clear(self) -> None:
        for name in ("eids", "etypes", "seqs", "attempts", "codes", "mss", "excerpts", "ats"):
            getattr(self, name).clear()


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

    @classmethod
    def of(cls, row: Any, max_seq: int) -> _Claimed:
        due = row.next_attempt_at <= row.now and row.delivered_seq < max_seq
        return cls(row.id, row.url, row.status, list(row.event_types), list(row.parties), list(row.kinds), row.secret,
                   row.previous_secret, row.previous_secret_expires_at, row.delivered_seq, row.attempts,
                   row.failing_since, max_seq, due)  # fmt: skip


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
