"""API tokens: minting, listing, revoking, and authenticating a bearer token on every request."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth import tokens as jwt_tokens
from app.auth.principal import SCOPES, Principal
from app.errors import Forbidden, Invalid, NotFound, Unauthenticated
from app.models.token import SECRETARIAT, ApiToken
from app.services import events, paging, reference

T = ApiToken.__table__  # type: ignore[attr-defined]

# The owner is `party` (null for Secretariat tokens) and `kind`, as everywhere else in the API.
PUBLIC_COLUMNS = (T.c.id, T.c.name, func.nullif(T.c.principal, SECRETARIAT).label("party"),
                  case((T.c.principal == SECRETARIAT, "secretariat"), else_="party").label("kind"), T.c.scopes,
                  T.c.created_by, T.c.created_at, T.c.expires_at, T.c.revoked_at, T.c.last_used_at)  # fmt: skip
SECRETARIAT_ONLY_SCOPES = frozenset({"decisions:write"})
PARTY_SCOPES: tuple[str, ...] = tuple(s for s in SCOPES if s not in SECRETARIAT_ONLY_SCOPES and s != "admin")
MAX_EXPIRES_DAYS = 366
LAST_USED_RESOLUTION = timedelta(minutes=1)
SORT = paging.SortKey("-created_at", (T.c.created_at, T.c.id), (datetime, uuid.UUID), True)
CLI_PRINCIPAL = Principal(kind="secretariat", token_name="cli")  # noqa: S106
CLI_ADMIN = Principal(kind="secretariat", scopes=frozenset({"admin"}), token_name="cli")  # noqa: S106


def _body_error(field: str, msg: str, **extra: Any) -> Invalid:
    return Invalid.field(("body", field), msg, **extra)


def _check_scopes(scopes: list[str] | tuple[str, ...], *, party: str | None) -> list[str]:
    """Known, de-duplicated scopes in canonical order; Secretariat-only scopes stay off Party tokens."""
    unknown = sorted({s for s in scopes if s not in SCOPES})
    if unknown:
        raise _body_error("scopes", f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(SCOPES)}",
                          unknown=unknown)  # fmt: skip
    if party is not None and SECRETARIAT_ONLY_SCOPES & set(scopes):
        bad = sorted(SECRETARIAT_ONLY_SCOPES & set(scopes))
        raise _body_error("scopes", f"scope(s) {', '.join(bad)} are for Secretariat tokens only")
    return [s for s in SCOPES if s in set(scopes)]


def _check_expiry(expires_days: int) -> int:
    if isinstance(expires_days, bool) or not isinstance(expires_days, int) or not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise _body_error("expires_days", f"expiry is mandatory: 1 to {MAX_EXPIRES_DAYS} days")
    return expires_days


def _check_name(name: str) -> str:
    cleaned = name.strip() if isinstance(name, str) else ""
    if not cleaned or len(cleaned) > 200:
        raise _body_error("name", "a name of 1 to 200 characters is required")
    return cleaned


async def _check_party(session: Any, party: str | None) -> str | None:
    if party is None:
        return None
    code = party.strip().upper()
    if code not in await reference.party_codes(session):
        raise _body_error("party", f"unknown Party code '{party}'")
    return code


def _check_minter(principal: Principal, party: str | None, scopes: list[str]) -> None:
    """A Party mints only for itself, only scopes it holds; only the Secretariat mints for others."""
    principal.require("tokens:write")
    if not principal.is_secretariat:
        if party is None:
            raise Forbidden(f"only the Secretariat mints Secretariat tokens; set party to '{principal.party}'")
        if party != principal.party:
            raise Forbidden(f"a token of {principal.party} mints tokens for {principal.party} only, not {party}")
    if "admin" not in principal.scopes:
        lacking = [s for s in scopes if s not in principal.scopes]
        if lacking:
            raise Forbidden(f"cannot grant scope(s) this token lacks: {', '.join(lacking)}", lacking=lacking)


async def _mint(session: Any, actor: Principal, *, name: str, party: str | None, scopes: list[str],
                expires_days: int, via: str) -> tuple[dict[str, Any], str]:  # fmt: skip
    now = await events.now(session)
    token_id = uuid.uuid4()
    principal = party or SECRETARIAT
    values = {"id": token_id, "name": name, "principal": principal, "scopes": scopes, "created_by": actor.token_id,
              "created_at": now, "expires_at": now + timedelta(days=expires_days)}  # fmt: skip
    row = (await session.execute(insert(T).values(values).returning(*PUBLIC_COLUMNS))).one()
    meta = dict(row._mapping)
    claims = {"sub": principal, "jti": str(token_id), "iat": int(now.timestamp()),
              "exp": int(meta["expires_at"].timestamp()), "scope": " ".join(scopes)}  # fmt: skip
    token = jwt_tokens.encode_token(claims)
    await events.emit(session, actor, [events.Event(
        action="token.create", kind="token", entity_id=str(token_id), party=party, op=None, public=False,
        detail={"name": name, "principal": principal, "scopes": scopes, "expires_at": meta["expires_at"].isoformat(),
                "via": via},
    )])  # fmt: skip
    await session.flush()
    return meta, token


async def mint(
    session: Any, principal: Principal, *, name: str, party: str | None, scopes: list[str], expires_days: int
) -> tuple[dict[str, Any], str]:
    """Mint a token (metadata, JWT) for `party` (None: the caller's own Party, or the Secretariat when the
    caller is the Secretariat); the JWT is shown only this once."""
    principal.require("tokens:write")
    if party is None and not principal.is_secretariat:
        party = principal.party
    name = _check_name(name)
    expires_days = _check_expiry(expires_days)
    code = await _check_party(session, party)
    clean = _check_scopes(scopes, party=code)
    _check_minter(principal, code, clean)
    return await _mint(session, principal, name=name, party=code, scopes=clean, expires_days=expires_days, via="api")


async def mint_bootstrap(
    session: Any, *, name: str, party: str | None, scopes: list[str], expires_days: int
) -> tuple[dict[str, Any], str]:
    """Mint from the command line (no minting token needed: this is how the first Secretariat token is made)."""
    name = _check_name(name)
    expires_days = _check_expiry(expires_days)
    code = await _check_party(session, party)
    clean = _check_scopes(scopes, party=code)
    return await _mint(session, CLI_PRINCIPAL, name=name, party=code, scopes=clean, expires_days=expires_days,
                       via="cli")  # fmt: skip


def _visible(principal: Principal) -> Any:
    principal.require("tokens:write")
    return None if principal.is_secretariat else T.c.principal == principal.party


async def list_tokens(
    conn: AsyncConnection,
    principal: Principal,
    *,
    party: str | None = None,
    include_revoked: bool = True,
    cursor: str | None = None,
    limit: int = paging.DEFAULT_LIMIT,
) -> tuple[list[dict[str, Any]], str | None]:
    """Token metadata (never the token), newest first: a Party sees its own tokens, the Secretariat all."""
    paging.check_limit(limit)
    stmt = select(*PUBLIC_COLUMNS)
    own = _visible(principal)
    if own is not None:
        stmt = stmt.where(own)
    if party is not None:
        stmt = stmt.where(T.c.principal == party.upper())
    if not include_revoked:
        stmt = stmt.where(T.c.revoked_at.is_(None))
    rows = [dict(r._mapping) for r in await conn.execute(paging.apply(stmt, SORT, cursor, limit))]
    return paging.page(rows, SORT, limit, lambda r: (r["created_at"], r["id"]))


async def get_token(conn: Any, principal: Principal, token_id: uuid.UUID) -> dict[str, Any]:
    """One token's metadata."""
    own = _visible(principal)
    stmt = select(*PUBLIC_COLUMNS).where(T.c.id == token_id)
    row = (await conn.execute(stmt if own is None else stmt.where(own))).first()
    if row is None:
        raise NotFound(f"no token with id {token_id}")
    return dict(row._mapping)


async def revoke(session: Any, principal: Principal, token_id: uuid.UUID) -> dict[str, Any]:
    """Revoke a token (idempotent); it stops working on the next request."""
    principal.require("tokens:write")
    row = (await session.execute(select(*PUBLIC_COLUMNS).where(T.c.id == token_id).with_for_update())).first()
    if row is None:
        raise NotFound(f"no token with id {token_id}")
    meta = dict(row._mapping)
    if not principal.is_secretariat and meta["party"] != principal.party:
        raise NotFound(f"no token with id {token_id}")  # as GET answers: never confirm another Party's token exists
    if meta["revoked_at"] is not None:
        return meta
    now = await events.now(session)
    await session.execute(update(T).where(T.c.id == token_id).values(revoked_at=now))
    meta["revoked_at"] = now
    party = meta["party"]
    await events.emit(session, principal, [events.Event(
        action="token.revoke", kind="token", entity_id=str(token_id), party=party, op=None, public=False,
        detail={"name": meta["name"], "principal": party or SECRETARIAT},
    )])  # fmt: skip
    await session.flush()
    return meta


async def revoke_bootstrap(session: Any, token_id: uuid.UUID) -> dict[str, Any]:
    """Revoke from the command line."""
    return await revoke(session, CLI_ADMIN, token_id)


async def authenticate(conn: AsyncConnection, token: str) -> Principal:
    """Verify a bearer token and its row (exists, not revoked, not expired, same principal) into a Principal."""
    claims = jwt_tokens.decode_token(token)
    try:
        token_id = uuid.UUID(claims["jti"])
    except ValueError:
        raise Unauthenticated("invalid token: malformed 'jti'") from None
    row = (await conn.execute(
        select(T.c.name, T.c.principal, T.c.scopes, T.c.expires_at, T.c.revoked_at, T.c.last_used_at,
               func.now().label("now")).where(T.c.id == token_id)
    )).first()  # fmt: skip
    if row is None:
        raise Unauthenticated("invalid token: unknown token")
    if row.revoked_at is not None:
        raise Unauthenticated("token revoked")
    if row.expires_at <= row.now:
        raise Unauthenticated("token expired")
    if row.principal != claims["sub"]:
        raise Unauthenticated("invalid token: subject does not match")
    if row.last_used_at is None or row.last_used_at < row.now - LAST_USED_RESOLUTION:
        await conn.execute(
            update(T).where(T.c.id == token_id)
            .where((T.c.last_used_at.is_(None)) | (T.c.last_used_at < func.now() - LAST_USED_RESOLUTION))
            .values(last_used_at=func.now())
        )  # fmt: skip
    secretariat = row.principal == SECRETARIAT
    return Principal(kind="secretariat" if secretariat else "party", party=None if secretariat else row.principal,
                     scopes=frozenset(row.scopes), token_id=token_id, token_name=row.name)  # fmt: skip


async def whoami(conn: AsyncConnection, principal: Principal) -> dict[str, Any]:
    """Who the caller is, as the token says."""
    expires_at = None
    if principal.token_id is not None:
        expires_at = (await conn.execute(select(T.c.expires_at).where(T.c.id == principal.token_id))).scalar()
    return {"kind": principal.kind, "party": principal.party, "scopes": sorted(principal.scopes),
            "token_id": principal.token_id, "token_name": principal.token_name, "expires_at": expires_at}  # fmt: skip
