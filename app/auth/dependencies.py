"""FastAPI dependencies: the caller's principal, database connections."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app import db
from app.auth.principal import ANONYMOUS, Principal
from app.errors import BadRequest, Unauthenticated
from app.services import tokens as tokens_service

MAX_AUTHORIZATION_BYTES = 8192
_QUERY_TOKEN_PARAMS = ("access_token", "token")


def _authorization(request: Request) -> bytes | None:
    for name, value in request.scope.get("headers", ()):
        if name == b"authorization":
            return bytes(value)
    return None


async def get_principal(request: Request) -> Principal:
    """Resolve the bearer token (if any) into a Principal; the token row is checked on every request."""
    for param in _QUERY_TOKEN_PARAMS:
        if param in request.query_params:
            raise BadRequest.param(
                param,
                "tokens go in the Authorization header",
                f"tokens are never accepted in the query string ('{param}'); send 'Authorization: Bearer <token>'",
            )
    header = _authorization(request)
    if header is None:
        return ANONYMOUS
    if len(header) > MAX_AUTHORIZATION_BYTES:
        raise Unauthenticated(f"Authorization header longer than {MAX_AUTHORIZATION_BYTES} bytes")
    scheme, _, token = header.decode("latin-1").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("expected 'Authorization: Bearer <token>'")
    async with db.read_connection() as conn:
        return await tokens_service.authenticate(conn, token)


async def read_conn(principal: Annotated[Principal, Depends(get_principal)]) -> AsyncIterator[AsyncConnection]:
    """An autocommit connection for reads (anonymous ones may go to the read replica, DATABASE_READ_URL)."""
    async with db.read_connection(replica=principal.is_anonymous) as conn:
        yield conn


async def write_session() -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit when the handler returns, roll back when it raises."""
    async with db.transaction() as session:
        yield session


PrincipalDep = Annotated[Principal, Depends(get_principal)]
ReadConnDep = Annotated[AsyncConnection, Depends(read_conn)]
# scope="function": commit (or roll back) before the response is sent, so a client never sees a 2xx
# for a write that then failed to commit.
SessionDep = Annotated[AsyncSession, Depends(write_session, scope="function")]
