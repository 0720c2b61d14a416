"""Reference data: the 196 Parties and the controlled vocabularies, shipped in app/reference/data

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 04:40:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from app.services.reference import upsert_statements

    bind = op.get_bind()
    for stmt in upsert_statements():
        bind.execute(stmt)


def downgrade() -> None:
    op.execute("DELETE FROM vocabulary_terms")
    op.execute("DELETE FROM parties")
