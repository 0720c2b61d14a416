"""Rate limits that hold across processes: who the caller is, and a quota shared through PostgreSQL.

The caller is the verified token id (`jti`) for a bearer token whose signature checks out (the scheme and
spacing of the header do not matter), else the client address; `X-Forwarded-For` is believed only from peers
in `CHM_TRUSTED_PROXIES`. Quota is a GCRA (generic cell rate algorithm) per caller in the UNLOGGED table
`rate_limits`. To keep the hot path cheap a process claims a small lease of requests in one statement and
spends it locally; a lease lives at most LEASE_SECONDS, so at most `chunk - 1` requests per process and caller
go unused, and never more than the limit is allowed across all processes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("chm.ratelimit")

LEASE_SECONDS = 1.0
MAX_CHUNK = 1000
_CLAIM = """
WITH c AS (SELECT extract(epoch FROM now())::float8 AS now, $2::float8 AS t, $3::int AS k, $4::int AS b)
INSERT INTO rate_limits AS r (key, tat, granted)
SELECT $1, c.now + c.t * least(c.k, c.b), least(c.k, c.b) FROM c
ON CONFLICT (key) DO UPDATE SET
  granted = (SELECT least(c.k, greatest(0, floor((c.b * c.t - (greatest(r.tat, c.now) - c.now)) / c.t)))::int FROM c),
  tat = (SELECT greatest(r.tat, c.now)
                + c.t * least(c.k, greatest(0, floor((c.b * c.t - (greatest(r.tat, c.now) - c.now)) / c.t))) FROM c)
RETURNING granted, tat - extract(epoch FROM now())::float8 AS backlog
"""
_PURGE = "DELETE FROM rate_limits WHERE tat < extract(epoch FROM now()) - 3600"


def parse_networks(value: str | list[str] | None) -> tuple[Any, ...]:
    """CIDRs or addresses, comma separated (or a list)."""
    items = value.split(",") if isinstance(value, str) else (value or [])
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in items if v.strip())


class CallerKey:
    """Who a request comes from, for rate limiting."""

    def __init__(self, trusted_proxies: tuple[Any, ...] = ()) -> None:
        self.trusted = trusted_proxies
        self._verified: OrderedDict[str, str] = OrderedDict()  # raw token -> jti (successful verifications only)

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def client(self, scope: dict[str, Any]) -> str:
        """The client address: the peer, or (from a trusted proxy) the nearest untrusted X-Forwarded-For hop."""
        peer = scope.get("client")
        address = peer[0] if peer else "-"
        if not self.trusted or not self._trusted(address):
            return address
        forwarded = b",".join(v for n, v in scope["headers"] if n == b"x-forwarded-for")
        hops = [h.strip() for h in forwarded.decode("latin-1").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop[:64]
            address = hop
        return address

    def token_id(self, scope: dict[str, Any]) -> str | None:
        """The `jti` of a bearer token whose signature and claims verify, else None."""
        header = next((v for n, v in scope["headers"] if n == b"authorization"), None)
        if header is None or len(header) > 8192:
            return None
        scheme, _, token = header.decode("latin-1").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        jti = self._verified.get(token)
        if jti is not None:
            self._verified.move_to_end(token)
            return jti
        from app.auth.tokens import decode_token
        from app.errors import AppError

        try:
            jti = str(decode_token(token)["jti"])
        except (AppError, KeyError, ValueError, TypeError, RuntimeError):
            return None
        self._verified[token] = jti
        if len(self._verified) > 10_000:
            self._verified.popitem(last=False)
        return jti

    def __call__(self, scope: dict[str, Any]) -> str:
        jti = self.token_id(scope)
        return f"t:{jti}" if jti else f"a:{self.client(scope)}"


@dataclass
class Lease:
    tokens: int
    until: float


@dataclass
class Decision:
    allowed: bool
    remaining: int
    reset: int  # seconds until the bucket is full again
    retry_after: int = 0


class SharedQuota:
    """Claims leases from PostgreSQL (one statement per claim); fails open when the database is unreachable
    (the request then meets the database's own 503)."""

    def __init__(self, *, per_minute: int, burst: int) -> None:
        self.interval = 60.0 / per_minute  # seconds per request
        self.burst = burst
        self.chunk = max(1, min(burst // 20, MAX_CHUNK))
        self.leases: dict[str, Lease] = {}
        self.claims = 0
        self._claiming: dict[str, asyncio.Future[Decision]] = {}  # one claim in flight per caller

    async def _claim(self, key: str, wanted: int) -> tuple[int, float]:
        from app import db

        async with db.get_engine().connect() as conn:
            raw = await db.raw(conn)
            row = await raw.fetchrow(_CLAIM, key, self.interval, wanted, self.burst)
            self.claims += 1
            if self.claims % 5000 == 0:
                await raw.execute(_PURGE)
            await conn.commit()
        return int(row["granted"]), float(row["backlog"])

    def _decision(self, granted: int, backlog: float) -> Decision:
        free = max(0, math.floor((self.burst * self.interval - backlog) / self.interval + 1e-9))
        reset = max(0, math.ceil(backlog))
        if granted <= 0:
            wait = backlog + self.interval - self.burst * self.interval
            return Decision(False, 0, reset, max(1, math.ceil(wait)))
        return Decision(True, free + granted - 1, reset)

    async def take(self, key: str) -> Decision:
        """Spend one request of `key`'s quota. When the lease runs out, one request claims the next one and the
        caller's other requests wait for that claim (they would each claim, and queue for a connection, else)."""
        while True:
            now = time.monotonic()
            lease = self.leases.get(key)
            if lease is not None and lease.tokens > 0 and lease.until > now:
                lease.tokens -= 1
                return Decision(True, lease.tokens, 0)
            pending = self._claiming.get(key)
            if pending is None:
                break
            await asyncio.wait([pending])
            if pending.cancelled():
                continue
            if not pending.result().allowed:
                return pending.result()
        claim = asyncio.get_running_loop().create_future()
        self._claiming[key] = claim
        try:
            decision = await self._renew(key, now)
            claim.set_result(decision)
            return decision
        finally:
            self._claiming.pop(key, None)
            if not claim.done():
                claim.cancel()  # the claimer itself was cancelled: a waiting request claims anew

    async def _renew(self, key: str, now: float) -> Decision:
        try:
            granted, backlog = await self._claim(key, self.chunk)
        except Exception as exc:
            log.warning("rate limiter: database unavailable (%s); allowing", type(exc).__name__)
            return Decision(True, self.burst, 0)
        if len(self.leases) > 50_000:
            self.leases = {k: v for k, v in self.leases.items() if v.until > now}
        if granted <= 0:
            self.leases.pop(key, None)
        else:
            self.leases[key] = Lease(granted - 1, now + LEASE_SECONDS)
        return self._decision(granted, backlog)
