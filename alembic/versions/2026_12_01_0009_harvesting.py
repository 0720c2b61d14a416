"""Harvesting: indexes for an entity's newest public change and for from= windows over the change log

Revision ID: 0009
Revises: 0012
Create Date: 2026-12-01 21:00:00

OAI-PMH, Atom and the dumps walk the change log's *heads* (each entity's newest public change) in seq order;
`ix_changes_public_entity_seq` answers "is there a later public change of this entity?" with one index probe,
`ix_changes_public_at` serves selective harvests (`from=`) without scanning the whole log.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_changes_public_entity_seq", "changes", ["kind", "entity_id", "seq"],
                    postgresql_where="public")  # fmt: skip
    op.create_index("ix_changes_public_at", "changes", ["at"], postgresql_where="public")


def downgrade() -> None:
    op.drop_index("ix_changes_public_at", table_name="changes")
    op.drop_index("ix_changes_public_entity_seq", table_name="changes")
