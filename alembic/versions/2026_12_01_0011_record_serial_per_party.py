"""Record serials unique per Party instead of globally, so a mirror can keep a source's uids

Revision ID: 0011
Revises: 0012
Create Date: 2026-12-01 21:30:00

A uid is CHM-{TYPE}-{PARTY}-{serial}-{revision}: the Party is part of the public id. A national node that
mirrors the central Clearing-House keeps the source's uids (serials) next to its own records, whose serials
come from its own sequence; only (party, serial) has to be unique for uids to stay unambiguous.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("records_serial_key", "records", type_="unique")
    op.create_unique_constraint("uq_records_party_serial", "records", ["party", "serial"])


def downgrade() -> None:
    op.drop_constraint("uq_records_party_serial", "records", type_="unique")
    op.create_unique_constraint("records_serial_key", "records", ["serial"])
