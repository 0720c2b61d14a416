"""Search: the full-text GIN index also indexes `date` (btree_gin), `subjects` and `gbf_targets`, so that the term and
a rarer condition are one index scan: "the newest matches of a common term" is a scan over a recent date range
instead of a walk of the newest rows, and a common term with a subject or GBF target filter no longer builds a
bitmap of the term's every match to AND it with the filter's

A term found in a tenth of 1,000,000 documents has ~100,000 postings: a bitmap of them all costs ~0.2 µs each, and
walking the newest rows until 1,100 match visits ~10,000 rows at ~10 µs each (their out-of-line `tsv`). With `date`
in the same GIN index, `tsv @@ q AND date >= :since` is one scan whose rare key (the last weeks' documents) lets it
skip through the term's posting lists (app/search/postgres.py, the "window" path); `tsv @@ q AND gbf_targets && ...`
likewise skips through the term's postings by the target's (at 1M: "species" + GBF-TARGET-03, 155,000 and 36,000
postings: 7.5 ms instead of a 55 ms bitmap ANDed with an 11 ms one, which went lossy and rechecked 11,000 rows).
A multicolumn GIN index answers a condition on any one of its columns alone just as well: it replaces
`search_documents_tsv_idx`. `chm reindex` copies it.

Revision ID: 0120
Revises: 0112
Create Date: 2026-12-02 06:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0120"
down_revision: str | None = "0112"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.execute("SET LOCAL maintenance_work_mem = '256MB'")
    op.execute("SET LOCAL statement_timeout = 0")
    op.execute(
        "CREATE INDEX IF NOT EXISTS search_documents_tsv_date_terms_idx ON search_documents "
        "USING gin (tsv, date, subjects, gbf_targets)"
    )
    op.execute("DROP INDEX IF EXISTS search_documents_tsv_idx")


def downgrade() -> None:
    op.execute("SET LOCAL statement_timeout = 0")
    op.execute("CREATE INDEX IF NOT EXISTS search_documents_tsv_idx ON search_documents USING gin (tsv)")
    op.execute("DROP INDEX IF EXISTS search_documents_tsv_date_terms_idx")
