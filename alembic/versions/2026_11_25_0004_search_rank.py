"""Search ranking: a small rank vector (title, keywords, opening of the summary) next to the full one, and
per-filter recency indexes for browsing

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 09:00:00

`tsv` (title, keywords, summary and body) decides what matches; `rank_tsv` orders the capped candidate set. The
full vector is large and stored out of line (TOAST): ranking 1,100 candidates with it cost ~9 µs a row just to
fetch and decompress it, while `rank_tsv` stays in the heap row (STORAGE MAIN). Very common terms are matched
against `rank_tsv` first too, so most rows never touch the big vector (see app/search/postgres.py).
`chm reindex` copies all of this with `CREATE TABLE ... (LIKE search_documents INCLUDING ALL)`.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONFIGS = {"en": "english", "fr": "french", "es": "spanish", "ru": "russian", "ar": "arabic", "zh": "simple"}
SUMMARY_CHARS = 500  # the opening of the summary is enough to rank; longer summaries would push the vector out of line


def _rank_tsv_body() -> str:
    def part(expr: str, cfg: str, weight: str) -> str:
        return f"setweight(to_tsvector('{cfg}'::regconfig, public.chm_unaccent(coalesce({expr}, ''))), '{weight}')"

    parts = [part(f"title->>'{lang}'", cfg, "A") for lang, cfg in CONFIGS.items()]
    parts += [part(f"left(summary->>'{lang}', {SUMMARY_CHARS})", cfg, "C") for lang, cfg in CONFIGS.items()]
    parts.append(part("array_to_string(keywords, ' ')", "simple", "B"))
    return "SELECT " + "\n  || ".join(parts)


def upgrade() -> None:
    op.execute(f"""
        CREATE OR REPLACE FUNCTION public.chm_search_rank_tsv(title jsonb, summary jsonb, keywords text[])
        RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ {_rank_tsv_body()} $$
    """)
    op.execute(
        "ALTER TABLE search_documents ADD COLUMN rank_tsv tsvector "
        "GENERATED ALWAYS AS (public.chm_search_rank_tsv(title, summary, keywords)) STORED"
    )
    op.execute("ALTER TABLE search_documents ALTER COLUMN rank_tsv SET STORAGE MAIN")
    # Browsing (no q) with a type or Party filter walks these newest first instead of filtering the date index.
    op.execute("CREATE INDEX search_documents_type_date_key_idx ON search_documents (type, date DESC NULLS LAST, key)")
    op.execute(
        "CREATE INDEX search_documents_party_date_key_idx ON search_documents (party, date DESC NULLS LAST, key)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS search_documents_party_date_key_idx")
    op.execute("DROP INDEX IF EXISTS search_documents_type_date_key_idx")
    op.execute("ALTER TABLE search_documents DROP COLUMN IF EXISTS rank_tsv")
    op.execute("DROP FUNCTION IF EXISTS public.chm_search_rank_tsv(jsonb, jsonb, text[])")
