"""Webhook subscriptions: which events exist, who may subscribe to what, which URLs are allowed (SSRF), pings,
redeliveries and secret rotation. REST, GraphQL and the CLI share every rule here; delivery itself is
app/exchange/webhooks.py."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import secrets
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app import registry
from app.auth.principal import Principal
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.models.token import SECRETARIAT
from app.models.webhook import WebhookCreate, WebhookDelivery, WebhookPublic, WebhookSubscription, WebhookUpdate
from app.services import etags, events, paging, reference
from app.settings import Settings, get_settings

W = WebhookSubscription.__table__  # type: ignore[attr-defined]
D = WebhookDelivery.__table__  # type: ignore[attr-defined]
SCOPE = "webhooks:write"
MANAGE_CHANNEL = "chm_webhooks"  # pings, redeliveries, resumes: wake the delivery worker (not a change-log path)
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks secret prefix, not a secret
SECRET_BYTES = 32

# --- the event catalogue --------------------------------------------------------------------------------------
# (change-log kind, op) -> event type. Every kind of the registry's change feed gets `<kind>.created|updated|deleted`
# (`cooperation-request` is spelled `cooperation_request`); records publish and withdraw instead (a publication
# whose revision is above 1 is `record.revised`). Adding an event type is one line in SPECIAL_EVENTS (plus the
# change-log rows that carry its (kind, op)); a new registry kind gets its three types with no line at all.
SPECIAL_EVENTS: dict[tuple[str, str], str | None] = {
    ("record", "publish"): "record.published",
    ("record", "withdraw"): "record.withdrawn",
    ("record", "create"): None,  # drafts: never public
    ("record", "update"): None,
    ("record", "delete"): None,
    ("cooperation-match", "create"): "cooperation.match",  # a request and an opportunity that fit each other
    ("cooperation-match", "update"): None,
    ("cooperation-match", "delete"): None,
}
_PAST = {"create": "created", "update": "updated", "delete": "deleted"}
EVENT_TYPES: dict[tuple[str, str], str] = {
    key: name
    for key, name in {
        **{(k, op): f"{k.replace('-', '_')}.{past}" for k in registry.FEED_KINDS for op, past in _PAST.items()},
        **SPECIAL_EVENTS,
    }.items()
    if name is not None
}
REVISED = "record.revised"
PING = "webhook.ping"
ALL_EVENT_TYPES: tuple[str, ...] = tuple(sorted({*EVENT_TYPES.values(), REVISED}))
EVENT_PREFIXES: tuple[str, ...] = tuple(sorted({t.split(".")[0] for t in ALL_EVENT_TYPES}))


def event_type(kind: str, op: str, revision: int | None) -> str | None:
    """The event type of a public change-log entry (None: this change is not pushed)."""
    name = EVENT_TYPES.get((kind, op))
    if name == "record.published" and (revision or 0) > 1:
        return REVISED
    return name


def type_matches(patterns: list[str], etype: str) -> bool:
    """True when `etype` is selected by a subscription's `event_types` (empty: every type; `record.*`: a family)."""
    if not patterns:
        return True
    family = etype.split(".")[0] + ".*"
    return etype in patterns or family in patterns


# --- URL safety (SSRF) ----------------------------------------------------------------------------------------
# Addresses that are "global" by the IANA registries but still reach cloud control planes.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "100.100.100.200", "192.0.0.192", "fd00:ec2::254",
))  # fmt: skip


class UnsafeUrl(Invalid):
    """A webhook URL that is malformed or points where the server must not send requests."""

    code = "UNSAFE_URL"


def _url_error(msg: str, loc: tuple[str, ...] = ("body", "url")) -> UnsafeUrl:
    return UnsafeUrl(msg, errors=[{"loc": list(loc), "msg": msg, "type": "value_error"}])


def address_refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a delivery to `ip` is refused outside development (None: a public unicast address)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for test, what in ((ip.is_loopback, "loopback"), (ip.is_link_local, "link-local"),
                       (ip.is_multicast, "multicast"), (ip.is_private, "private"), (ip.is_unspecified, "unspecified"),
                       (ip.is_reserved, "reserved"), (not ip.is_global, "non-public")):  # fmt: skip
        if test:
            return f"a {what} address"
    return None


def parse_url(url: str, *, settings: Settings | None = None, loc: tuple[str, ...] = ("body", "url")) -> Any:
    """The URL split into parts, or UnsafeUrl: http(s) with a host, no credentials, https outside development."""
    settings = settings or get_settings()
    if not isinstance(url, str) or any(ord(c) < 33 or c == "\x7f" for c in url):
        raise _url_error("the URL must not contain spaces or control characters", loc)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _url_error("not a valid URL", loc) from None
    allowed = ("http", "https") if settings.webhook_private_targets else ("https",)
    if parts.scheme not in allowed:
        raise _url_error(f"the URL must use {' or '.join(allowed)}", loc)
    if not parts.hostname:
        raise _url_error("the URL has no host", loc)
    if parts.username is not None or parts.password is not None:
        raise _url_error("the URL must not carry credentials (put a token in the path or query instead)", loc)
    if port == 0:
        raise _url_error("the URL's port must be 1 to 65535", loc)
    return parts


async def resolve(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses to connect to for `host`, every one checked (so a name resolving to both a public and a
    private address is refused); raises UnsafeUrl."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
        infos = [str(literal)]
    except ValueError:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise _url_error(f"the host '{host}' does not resolve ({exc})") from None
        infos = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not infos:
        raise _url_error(f"the host '{host}' does not resolve")
    if not allow_private:
        for addr in infos:
            reason = address_refusal(ipaddress.ip_address(addr.split("%")[0]))
            if reason:
                raise _url_error(f"the host '{host}' resolves to {addr}, {reason}: refused")
    return infos


async def check_url(url: str, *, settings: Settings | None = None) -> str:
    """Validate a subscription URL now (scheme, host, where it resolves); answers it unchanged."""
    settings = settings or get_settings()
    parts = parse_url(url, settings=settings)
    await resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                  allow_private=settings.webhook_private_targets)  # fmt: skip
    return url


# --- subscriptions --------------------------------------------------------------------------------------------

PUBLIC_COLUMNS = tuple(W.c[name] for name in WebhookPublic.model_fields)
SORT = paging.SortKey("-created_at", (W.c.created_at, W.c.id), (datetime, uuid.UUID), True)
DELIVERY_COLUMNS = tuple(D.c[name] for name in ("id", "subscription_id", "event_id", "event_type", "seq", "attempt",
                         "outcome", "status_code", "duration_ms", "error", "response_excerpt", "redelivery_of",
                         "created_at", "attempted_at"))  # fmt: skip
DELIVERY_SORT = paging.SortKey("-id", (D.c.id,), (int,), True)


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks format."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _owner_of(principal: Principal) -> str:
    return principal.party or SECRETARIAT


def _visible(principal: Principal) -> Any:
    principal.require(SCOPE)
    return None if principal.is_secretariat else W.c.owner == principal.party


def _field_error(field: str, msg: str) -> Invalid:
    return Invalid.field(("body", field), msg)


async def _check_filters(conn: Any, *, event_types: list[str] | None, parties: list[str] | None,
                         kinds: list[str] | None) -> dict[str, list[str]]:  # fmt: skip
    out: dict[str, list[str]] = {}
    if event_types is not None:
        known = {*ALL_EVENT_TYPES, *(f"{p}.*" for p in EVENT_PREFIXES)}
        bad = [t for t in event_types if t not in known]
        if bad:
            raise _field_error("event_types", f"unknown event type(s) {', '.join(map(repr, bad[:10]))}; known: "
                               f"{', '.join(ALL_EVENT_TYPES)} (or a family such as record.*)")  # fmt: skip
        out["event_types"] = list(dict.fromkeys(event_types))
    if parties is not None:
        codes = await reference.party_codes(conn)
        upper = [p.upper() if isinstance(p, str) else p for p in parties]
        bad = [p for p in upper if p not in codes]
        if bad:
            raise _field_error("parties", f"unknown Party code(s) {', '.join(map(repr, bad[:10]))}")
        out["parties"] = list(dict.fromkeys(upper))
    if kinds is not None:
        bad = [k for k in kinds if k not in registry.FEED_KINDS]
        if bad:
            feed_kinds = ", ".join(registry.FEED_KINDS)
            raise _field_error("kinds", f"unknown kind(s) {', '.join(map(repr, bad[:10]))}; known: {feed_kinds}")
        out["kinds"] = list(dict.fromkeys(kinds))
    return out


def _clean_description(value: str | None) -> str | None:
    if value is None:
        return None
    if "\x00" in value:
        raise _field_error("description", "must not contain NUL characters")
    return value.strip() or None


async def _notify(session: Any, subscription_id: uuid.UUID) -> None:
    await session.execute(text("SELECT pg_notify(:c, :id)"), {"c": MANAGE_CHANNEL, "id": str(subscription_id)})


def _audit(action: str, sub: dict[str, Any], detail: dict[str, Any] | None = None) -> events.Event:
    party = None if sub["owner"] == SECRETARIAT else sub["owner"]
    return events.Event(action=f"webhook.{action}", kind="webhook", entity_id=str(sub["id"]), party=party, op=None,
                        public=False, detail=detail)  # fmt: skip


async def create(session: Any, principal: Principal, *, data: WebhookCreate) -> tuple[dict[str, Any], str]:
    """Subscribe `data.url` (checked for SSRF now and again at each delivery); answers the subscription and its
    secret, shown only this once. Delivery starts with the next change."""
    principal.require(SCOPE)
    conn = await session.connection()
    owner = _owner_of(principal)
    if data.owner is not None:
        code = data.owner.upper()
        if not principal.is_secretariat and code != principal.party:
            raise Forbidden(f"a token of {principal.party} creates subscriptions for {principal.party} only")
        if code not in await reference.party_codes(conn):
            raise _field_error("owner", f"unknown Party code '{data.owner}'")
        owner = code
    url = await check_url(data.url)
    filters = await _check_filters(conn, event_types=data.event_types, parties=data.parties, kinds=data.kinds)
    limit = get_settings().webhook_max_per_owner
    # Serialise creations per owner so the limit holds under concurrent requests.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"webhooks:{owner}"})
    count = (await session.execute(select(func.count()).select_from(W).where(W.c.owner == owner))).scalar_one()
    if count >= limit:
        raise Conflict(f"{owner} already has {count} webhook subscriptions (the limit is {limit})")
    now = await events.now(session)
    secret = new_secret()
    start = select(func.coalesce(func.max(events.CHANGES.c.seq), 0)).scalar_subquery()
    row = (await session.execute(insert(W).values(
        id=uuid.uuid4(), owner=owner, url=url, description=_clean_description(data.description), secret=secret,
        delivered_seq=start, created_by=principal.token_id, created_at=now, updated_at=now, next_attempt_at=now,
        **filters,
    ).returning(*PUBLIC_COLUMNS))).one()  # fmt: skip
    sub = dict(row._mapping)
    await events.emit(session, principal, [_audit("create", sub, {"url": url})])
    return sub, secret


async def list_webhooks(conn: AsyncConnection, principal: Principal, *, status: str | None = None,
                        cursor: str | None = None, limit: int = paging.DEFAULT_LIMIT,
                        ) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
    """The caller's subscriptions (the Secretariat: everyone's), newest first."""
    paging.check_limit(limit)
    stmt = select(*PUBLIC_COLUMNS)
    own = _visible(principal)
    if own is not None:
        stmt = stmt.where(own)
    if status is not None:
        if status not in ("active", "paused", "disabled"):
            raise paging.bad_param("status", status, ("active", "paused", "disabled"))
        stmt = stmt.where(W.c.status == status)
    rows = [dict(r._mapping) for r in await conn.execute(paging.apply(stmt, SORT, cursor, limit))]
    return paging.page(rows, SORT, limit, lambda r: (r["created_at"], r["id"]))


async def get_webhook(conn: Any, principal: Principal, subscription_id: uuid.UUID, *, lock: bool = False
                      ) -> dict[str, Any]:  # fmt: skip
    """One subscription; another Party's is not found (its existence is not revealed)."""
    own = _visible(principal)
    stmt = select(*PUBLIC_COLUMNS).where(W.c.id == subscription_id)
    if own is not None:
        stmt = stmt.where(own)
    row = (await conn.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    return dict(row._mapping)


async def update_webhook(session: Any, principal: Principal, subscription_id: uuid.UUID, *, data: WebhookUpdate,
                         if_match: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Change filters, URL or description; `status` pauses or resumes (resuming continues where delivery stopped,
    and also re-enables a subscription the server disabled)."""
    current = await get_webhook(session, principal, subscription_id, lock=True)
    etags.check_if_match(if_match, WebhookPublic, current)
    sent = data.model_dump(exclude_unset=True)
    for field in ("event_types", "parties", "kinds", "url", "status"):
        if field in sent and sent[field] is None:
            raise _field_error(field, "must not be null (send [] for no filter)")
    values: dict[str, Any] = await _check_filters(await session.connection(), event_types=sent.get("event_types"),
                                                  parties=sent.get("parties"), kinds=sent.get("kinds"))  # fmt: skip
    if "url" in sent:
        values["url"] = await check_url(sent["url"])
    if "description" in sent:
        values["description"] = _clean_description(sent["description"])
    now = await events.now(session)
    status = sent.get("status")
    if status == "paused" and current["status"] != "paused":
        values["status"] = "paused"
    elif status == "active" and current["status"] != "active":
        values.update(status="active", disabled_reason=None, failing_since=None, attempts=0, next_attempt_at=now)
    if not values:
        return current
    values["updated_at"] = now
    row = (await session.execute(update(W).where(W.c.id == subscription_id).values(**values)
                                 .returning(*PUBLIC_COLUMNS))).one()  # fmt: skip
    sub = dict(row._mapping)
    await events.emit(session, principal, [_audit("update", sub, {"fields": sorted(sent)})])
    if sub["status"] == "active":
        await _notify(session, subscription_id)
    return sub


async def delete_webhook(session: Any, principal: Principal, subscription_id: uuid.UUID, *,
                         if_match: str | None = None) -> None:  # fmt: skip
    """Delete a subscription and its delivery log."""
    current = await get_webhook(session, principal, subscription_id, lock=True)
    etags.check_if_match(if_match, WebhookPublic, current)
    await session.execute(delete(W).where(W.c.id == subscription_id))
    await events.emit(session, principal, [_audit("delete", current, {"url": current["url"]})])


async def rotate_secret(session: Any, principal: Principal, subscription_id: uuid.UUID) -> tuple[dict[str, Any], str]:
    """A new secret (shown once); the current one keeps signing alongside it for the overlap (24 h by default), so
    receivers can switch without missing a delivery."""
    await get_webhook(session, principal, subscription_id, lock=True)
    now = await events.now(session)
    secret = new_secret()
    overlap = timedelta(seconds=get_settings().webhook_secret_overlap_seconds)
    row = (await session.execute(update(W).where(W.c.id == subscription_id).values(
        previous_secret=W.c.secret, previous_secret_expires_at=now + overlap, secret=secret, updated_at=now,
    ).returning(*PUBLIC_COLUMNS))).one()  # fmt: skip
    sub = dict(row._mapping)
    await events.emit(session, principal, [_audit("rotate_secret", sub)])
    return sub, secret


async def _queue(session: Any, sub: dict[str, Any], *, event_id: str | None, event_type: str, seq: int | None,
                 redelivery_of: int | None = None) -> dict[str, Any]:  # fmt: skip
    now = await events.now(session)
    values = {"subscription_id": sub["id"], "event_id": event_id or "pending", "event_type": event_type, "seq": seq,
              "attempt": 1, "outcome": "pending", "redelivery_of": redelivery_of, "created_at": now}  # fmt: skip
    row = (await session.execute(insert(D).values(**values).returning(*DELIVERY_COLUMNS))).one()
    delivery = dict(row._mapping)
    if event_id is None:  # a ping's id is its own delivery's
        delivery["event_id"] = f"ping_{delivery['id']}"
        await session.execute(update(D).where(D.c.id == delivery["id"]).values(event_id=delivery["event_id"]))
    await _notify(session, sub["id"])
    return delivery


async def ping(session: Any, principal: Principal, subscription_id: uuid.UUID) -> dict[str, Any]:
    """Queue a `webhook.ping` message (sent ahead of the next event, even while paused); answers its delivery row:
    follow it in the deliveries log."""
    sub = await get_webhook(session, principal, subscription_id, lock=True)
    if sub["status"] == "disabled":
        raise Conflict("the subscription is disabled; resume it first (PATCH status=active)")
    return await _queue(session, sub, event_id=None, event_type=PING, seq=None)


async def redeliver(session: Any, principal: Principal, subscription_id: uuid.UUID, delivery_id: int
                    ) -> dict[str, Any]:  # fmt: skip
    """Queue the message of a past delivery again, with the same webhook-id (receivers deduplicate on it)."""
    sub = await get_webhook(session, principal, subscription_id, lock=True)
    if sub["status"] == "disabled":
        raise Conflict("the subscription is disabled; resume it first (PATCH status=active)")
    stmt = select(*DELIVERY_COLUMNS).where(D.c.id == delivery_id, D.c.subscription_id == subscription_id)
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound(f"no delivery {delivery_id} of webhook subscription {subscription_id}")
    original = dict(row._mapping)
    if original["outcome"] == "pending":
        raise Conflict("that delivery has not been attempted yet")
    return await _queue(session, sub, event_id=original["event_id"], event_type=original["event_type"],
                        seq=original["seq"], redelivery_of=original["id"])  # fmt: skip


async def list_deliveries(conn: AsyncConnection, principal: Principal, subscription_id: uuid.UUID, *,
                          outcome: str | None = None, cursor: str | None = None,
                          limit: int = paging.DEFAULT_LIMIT) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
    """The delivery log of one subscription, newest first: every attempt with status, duration and error."""
    paging.check_limit(limit)
    await get_webhook(conn, principal, subscription_id)
    stmt = select(*DELIVERY_COLUMNS).where(D.c.subscription_id == subscription_id)
    if outcome is not None:
        if outcome not in ("pending", "success", "failure"):
            raise paging.bad_param("outcome", outcome, ("pending", "success", "failure"))
        stmt = stmt.where(D.c.outcome == outcome)
    rows = [dict(r._mapping) for r in await conn.execute(paging.apply(stmt, DELIVERY_SORT, cursor, limit))]
    return paging.page(rows, DELIVERY_SORT, limit, lambda r: (r["id"],))


# --- health ---------------------------------------------------------------------------------------------------

_STUCK = """
    SELECT count(*) AS stuck, extract(epoch FROM now() - min(s.next_attempt_at)) AS oldest
    FROM webhook_subscriptions s
    WHERE ((s.status = 'active' AND s.delivered_seq < (SELECT coalesce(max(seq), 0) FROM changes))
           OR (s.status <> 'disabled' AND EXISTS (SELECT 1 FROM webhook_deliveries d
                                                  WHERE d.subscription_id = s.id AND d.outcome = 'pending')))
      AND s.next_attempt_at < now() - make_interval(secs => :after)
      AND (s.lease_until IS NULL OR s.lease_until < now())
"""


async def stuck(conn: AsyncConnection) -> tuple[int, float | None]:
    """Subscriptions with due work that no worker has claimed for `webhook_stuck_after_seconds`."""
    row = (await conn.execute(text(_STUCK), {"after": get_settings().webhook_stuck_after_seconds})).one()
    return int(row.stuck), float(row.oldest) if row.oldest is not None else None


async def status(conn: AsyncConnection, principal: Principal) -> dict[str, Any]:
    """Delivery health: subscriptions by status, stuck ones, the worst lag, and the workers' heartbeats."""
    principal.require(SCOPE)
    counts = {s: 0 for s in ("active", "paused", "disabled")}
    for row in await conn.execute(text("SELECT status, count(*) AS n FROM webhook_subscriptions GROUP BY status")):
        counts[row.status] = int(row.n)
    n_stuck, oldest = await stuck(conn)
    lag = (await conn.execute(text(
        "SELECT max(extract(epoch FROM now() - c.at)) FROM webhook_subscriptions s "
        "CROSS JOIN LATERAL (SELECT at FROM changes WHERE seq > s.delivered_seq AND public ORDER BY seq LIMIT 1) c "
        "WHERE s.status = 'active'"))).scalar()  # fmt: skip
    workers = [dict(r._mapping) for r in await conn.execute(text(
        "SELECT name, started_at, beat_at, delivered, extract(epoch FROM now() - beat_at) AS silent_seconds "
        "FROM webhook_workers WHERE beat_at > now() - interval '1 day' ORDER BY name"))]  # fmt: skip
    if not principal.is_secretariat:  # worker names carry host names: operators only
        workers = [{k: v for k, v in w.items() if k != "name"} for w in workers]
    return {"subscriptions": counts, "stuck": n_stuck, "oldest_due_seconds": oldest,
            "max_lag_seconds": float(lag) if lag is not None else None, "workers": workers,
            "ok": n_stuck == 0}  # fmt: skip
