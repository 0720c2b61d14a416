"""Rules shared by the writes of every aggregate: which Party an entry belongs to, and how a write schema
becomes column values."""

from __future__ import annotations

from typing import Any

from pydantic import AnyUrl, BaseModel
from sqlalchemy import null
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth.principal import Principal
from app.errors import Invalid
from app.services import reference

JSON_NULLABLE = frozenset({"description", "focal_point", "meeting", "problem", "objectives", "contact"})


async def writing_party(conn: AsyncConnection, principal: Principal, party: str | None) -> str:
    """The Party a new entry belongs to: the token's own by default; only the Secretariat names another."""
    if party is None:
        if principal.party is None:
            raise Invalid.field(["body", "party"], "a Secretariat token must name the Party")
        return principal.party
    code = party.upper()
    principal.require_party(code)
    if code not in await reference.party_codes(conn):
        raise Invalid.field(["body", "party"], f"unknown Party code '{party}'")
    return code


def check_party_unchanged(principal: Principal, current: str, party: str | None) -> None:
    """A full replacement may repeat the owner's code but never move the entry to another Party."""
    if party is None or party.upper() == current:
        return
    principal.require_party(party.upper())
    raise Invalid.field(["body", "party"], f"the Party of an existing entry cannot change (it is {current})")


def values_of(model: BaseModel, *, partial: bool) -> dict[str, Any]:
    """Column values from a write schema: URLs as text, contacts without empty keys, SQL NULL (not JSON null)."""
    data = model.model_dump(exclude_unset=partial)
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, AnyUrl):
            v = str(v)
        elif isinstance(v, dict) and k in ("focal_point", "contact"):
            v = {ck: cv for ck, cv in v.items() if cv is not None} or None
        # JSONB columns would store None as JSON null; they want SQL NULL.
        out[k] = null() if v is None and k in JSON_NULLABLE else v
    return out
