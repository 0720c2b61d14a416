"""REST: /api/v1/tokens (mint, list, revoke) and /api/v1/auth/whoami."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.auth.dependencies import PrincipalDep, ReadConnDep, SessionDep
from app.models.token import TokenCreate, TokenCreated, TokenList, TokenPublic, WhoAmI
from app.routers import http
from app.routers.params import DEFAULT, Cursor, Limit, PartyQ
from app.services import tokens as tokens_service

router = APIRouter(prefix="/api/v1", tags=["tokens"])
NO_STORE = {"Cache-Control": "no-store"}


@router.post("/tokens", status_code=201, response_model=TokenCreated, summary="Mint a token")
async def create_token(body: TokenCreate, session: SessionDep, principal: PrincipalDep) -> Response:
    """Mint a token (needs `tokens:write`); the `token` is in this response only, store it now."""
    meta, token = await tokens_service.mint(session, principal, name=body.name, party=body.party,
                                            scopes=body.scopes, expires_days=body.expires_days)  # fmt: skip
    headers = {**NO_STORE, "Location": f"/api/v1/tokens/{meta['id']}"}
    return Response(
        http.render(TokenCreated, {**meta, "token": token}), status_code=201, headers=headers, media_type=http.JSON
    )


@router.get("/tokens", response_model=TokenList, summary="List tokens (metadata only)")
async def list_tokens(
    request: Request, conn: ReadConnDep, principal: PrincipalDep, limit: Limit = DEFAULT, cursor: Cursor = None,
    party: PartyQ = None,
    include_revoked: Annotated[bool, Query(description="Also list revoked tokens")] = True,
) -> Response:  # fmt: skip
    """Tokens of the caller's Party (the Secretariat sees all), newest first; needs `tokens:write`."""
    items, next_cursor = await tokens_service.list_tokens(conn, principal, party=party, cursor=cursor, limit=limit,
                                                          include_revoked=include_revoked)  # fmt: skip
    return http.listing(request, TokenList, items, next_cursor)


@router.get("/tokens/{token_id}", response_model=TokenPublic, summary="Get a token's metadata")
async def get_token(request: Request, token_id: uuid.UUID, conn: ReadConnDep, principal: PrincipalDep) -> Response:
    """One token's metadata (never the token)."""
    return http.single(request, TokenPublic, await tokens_service.get_token(conn, principal, token_id))


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token")
async def revoke_token(token_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> Response:
    """Revoke a token (idempotent); it is refused from the next request on."""
    await tokens_service.revoke(session, principal, token_id)
    return Response(status_code=204)


@router.get("/auth/whoami", response_model=WhoAmI, summary="Who am I")
async def whoami(conn: ReadConnDep, principal: PrincipalDep) -> Response:
    """The caller's principal: anonymous, a Party token or a Secretariat token."""
    data = await tokens_service.whoami(conn, principal)
    return Response(http.render(WhoAmI, data), headers={**NO_STORE, "Vary": "Authorization"}, media_type=http.JSON)
