"""Who is calling: anonymous, a Party token or a Secretariat token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from app.errors import Forbidden, Unauthenticated

SCOPES: tuple[str, ...] = (
    "records:write",
    "records:publish",
    "nodes:write",
    "cooperation:write",
    "decisions:write",
    "tokens:write",
    "webhooks:write",
    "admin",
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as every service sees it."""

    kind: str = "anonymous"  # anonymous | party | secretariat
    party: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    token_id: uuid.UUID | None = None
    token_name: str | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"

    @property
    def is_secretariat(self) -> bool:
        return self.kind == "secretariat"

    @property
    def label(self) -> str:
        """How audit events name the principal."""
        return "SECRETARIAT" if self.is_secretariat else (self.party or "ANONYMOUS")

    def has(self, scope: str) -> bool:
        """True when the token holds `scope` (or `admin`, which implies every scope)."""
        return scope in self.scopes or "admin" in self.scopes

    def require(self, scope: str) -> None:
        """Raise unless the caller is authenticated and holds `scope`."""
        if self.is_anonymous:
            raise Unauthenticated("this operation needs a token (Authorization: Bearer ...)")
        if not self.has(scope):
            raise Forbidden(f"this token lacks the '{scope}' scope")

    def can_see_unpublished(self, party: str) -> bool:
        """Drafts, pending and withdrawn content is for the owning Party and the Secretariat."""
        return self.is_secretariat or (self.party is not None and self.party == party)

    def require_party(self, party: str) -> None:
        """Raise unless the caller may write `party`'s data."""
        if not (self.is_secretariat or self.party == party):
            raise Forbidden(f"a token of {self.party or 'no Party'} cannot write data of {party}")


ANONYMOUS = Principal()
