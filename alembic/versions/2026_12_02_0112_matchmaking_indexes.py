"""Matchmaking retrieval through indexes: GIN on the text of offers, a partial GIN on the terms of the record
types matchmaking proposes, and no pending list on the GIN indexes matchmaking reads

Revision ID: 0112
Revises: 0117
Create Date: 2026-12-02 01:10:00

A GIN index with `fastupdate` queues new entries in a pending list that every scan reads linearly until VACUUM
merges it; after a bulk load that list makes the planner prefer sequential scans and a matches call several
times slower. These tables are written a row at a time (opportunities, requests and offers) or only for three
record types, so their GIN indexes are updated in place instead.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0112"
down_revision: str | None = "0117"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MATCHED_TYPES_SQL = "('expert','organization','project')"  # app.models.record.MATCHED_TYPES, as of this revision
IN_PLACE = (
    "ix_opportunities_subjects", "ix_opportunities_gbf_targets", "ix_opportunities_match_tsv",
    "ix_requests_subjects", "ix_requests_gbf_targets", "ix_requests_match_tsv", "ix_records_match_tsv",
)


def upgrade() -> None:
    op.create_index("ix_offers_match_tsv", "cooperation_offers", ["match_tsv"], postgresql_using="gin",
                    postgresql_with={"fastupdate": "off"})
    op.create_index("ix_records_match_terms", "records", ["gbf_targets", "subjects"], postgresql_using="gin",
                    postgresql_with={"fastupdate": "off"},
                    postgresql_where=sa.text(f"status = 'published' AND type IN {MATCHED_TYPES_SQL}"))
    for name in IN_PLACE:
        op.execute(f"ALTER INDEX {name} SET (fastupdate = off)")
        op.execute(f"SELECT gin_clean_pending_list('{name}'::regclass)")  # what was queued before


def downgrade() -> None:
    for name in IN_PLACE:
        op.execute(f"ALTER INDEX {name} RESET (fastupdate)")
    op.drop_index("ix_records_match_terms", table_name="records")
    op.drop_index("ix_offers_match_tsv", table_name="cooperation_offers")
