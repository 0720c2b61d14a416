"""Token tests, and the helpers other tests use: `from tests.auth import token_for, bearer`.

(The helpers live in this package's __init__: a `tests/auth.py` module would be shadowed by this package.)"""

from __future__ import annotations

from app import db
from app.services import tokens as tokens_service


async def token_for(party: str | None, *scopes: str, expires_days: int = 30) -> str:
    """A real token minted through the service (party None = Secretariat; no scopes = every scope it may hold)."""
    if not scopes:
        scopes = tokens_service.PARTY_SCOPES if party is not None else ("admin",)
    async with db.transaction() as session:
        _, token = await tokens_service.mint_bootstrap(
            session, name=f"test {party or 'secretariat'}", party=party, scopes=list(scopes), expires_days=expires_days
        )
    return token


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for `token`."""
    return {"Authorization": f"Bearer {token}"}
