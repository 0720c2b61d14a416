"""Decision queries and mutations over services.decisions."""

from __future__ import annotations

from app import db
from app.graphql.context import Info
from app.graphql.errors import validated
from app.graphql.inputs import data_of
from app.graphql.limits import DEFAULT_FIRST
from app.graphql.types.common import Connection, list_connection
from app.graphql.types.decisions import Decision, DecisionFilter, DecisionInput, DecisionPatch, DecisionSort
from app.models.decision import DecisionCreate, DecisionUpdate
from app.services import decisions as decisions_service


async def decision(info: Info, code: str) -> Decision:
    """One decision by code (e.g. `COP-15-4`) with its paragraphs."""
    async with info.context.read() as conn:
        return await decisions_service.get_decision(conn, info.context.principal, code)  # type: ignore[return-value]


async def decisions(
    info: Info,
    filter: DecisionFilter | None = None,
    sort: DecisionSort | None = None,
    first: int = DEFAULT_FIRST,
    after: str | None = None,
) -> Connection[Decision]:
    """Decisions in code order by default (COP-9-1 < COP-9-30 < COP-15-4)."""
    return await list_connection(
        info,
        decisions_service.list_decisions,
        decisions_service.LISTING,
        filter=filter,
        sort=sort,
        first=first,
        after=after,
    )


async def create_decision(info: Info, input: DecisionInput) -> Decision:
    """Secretariat tokens with `decisions:write` only."""
    data = validated(DecisionCreate, data_of(input))
    async with db.transaction() as session:
        return await decisions_service.create_decision(session, info.context.principal, data=data)  # type: ignore[return-value]


async def update_decision(info: Info, code: str, input: DecisionPatch, if_match: str | None = None) -> Decision:
    """Change the fields sent (`paragraphs`, when sent, replace all)."""
    data = validated(DecisionUpdate, data_of(input))
    async with db.transaction() as session:
        return await decisions_service.update_decision(
            session, info.context.principal, code, data=data, if_match=if_match
        )  # type: ignore[return-value]


async def replace_decision(info: Info, code: str, input: DecisionInput, if_match: str | None = None) -> Decision:
    """Replace every field and all paragraphs."""
    data = validated(DecisionCreate, data_of(input))
    async with db.transaction() as session:
        return await decisions_service.update_decision(
            session, info.context.principal, code, data=data, if_match=if_match
        )  # type: ignore[return-value]


async def delete_decision(info: Info, code: str, if_match: str | None = None) -> str:
    """Delete a decision (Secretariat); answers its code."""
    async with db.transaction() as session:
        await decisions_service.delete_decision(session, info.context.principal, code, if_match=if_match)
    return decisions_service.normalise_code(code)
