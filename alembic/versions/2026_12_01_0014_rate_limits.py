"""Rate limits shared across API processes: an UNLOGGED table of GCRA state per caller

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-01 22:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("tat", sa.Float(), nullable=False),
        sa.Column("granted", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("key"),
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
