"""Search: the embedded PostgreSQL search table (tsvector per language + trigram titles) and its helper functions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 06:00:00

The table is maintained by the search worker (app/search/postgres.py) and swapped whole by `chm reindex`,
so it is kept out of SQLModel metadata (alembic/env.py excludes it from autogenerate).
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Text search configuration per UN language; Chinese has no stemmer in PostgreSQL, so `simple`.
CONFIGS = {"en": "english", "fr": "french", "es": "spanish", "ru": "russian", "ar": "arabic", "zh": "simple"}
WEIGHTS = {"title": "A", "summary": "C", "body": "D"}


def _tsv_body() -> str:
    parts = [
        f"setweight(to_tsvector('{cfg}'::regconfig, public.chm_unaccent(coalesce({field}->>'{lang}', ''))), "
        f"'{weight}')"
        for field, weight in WEIGHTS.items()
        for lang, cfg in CONFIGS.items()
    ]
    parts.append("setweight(to_tsvector('simple'::regconfig, public.chm_unaccent(array_to_string(keywords, ' '))), 'B')")
    return "SELECT " + "\n  || ".join(parts)


def upgrade() -> None:
    # unaccent() is only STABLE (it looks its dictionary up by search_path); with the dictionary named it is
    # safe to declare IMMUTABLE, which generated columns and indexes require.
    op.execute("""
        CREATE OR REPLACE FUNCTION public.chm_unaccent(text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$
    """)
    op.execute("""
        CREATE OR REPLACE FUNCTION public.chm_lstring_text(jsonb) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT coalesce(string_agg(value, ' '), '') FROM jsonb_each_text(coalesce($1, '{}'::jsonb)) $$
    """)
    op.execute(f"""
        CREATE OR REPLACE FUNCTION public.chm_search_tsv(title jsonb, summary jsonb, body jsonb, keywords text[])
        RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ {_tsv_body()} $$
    """)
    op.execute("""
        CREATE TABLE search_documents (
            key text PRIMARY KEY,
            kind text NOT NULL,
            entity_id text NOT NULL,
            uid text,
            party text,
            type text,
            revision integer,
            title jsonb NOT NULL DEFAULT '{}'::jsonb,
            summary jsonb NOT NULL DEFAULT '{}'::jsonb,
            body jsonb NOT NULL DEFAULT '{}'::jsonb,
            keywords text[] NOT NULL DEFAULT '{}',
            subjects text[] NOT NULL DEFAULT '{}',
            gbf_targets text[] NOT NULL DEFAULT '{}',
            languages text[] NOT NULL DEFAULT '{}',
            date date,
            updated_at timestamptz,
            indexed_at timestamptz NOT NULL DEFAULT now(),
            tsv tsvector GENERATED ALWAYS AS (public.chm_search_tsv(title, summary, body, keywords)) STORED,
            title_trgm text GENERATED ALWAYS AS (lower(public.chm_unaccent(public.chm_lstring_text(title)))) STORED
        )
    """)
    # Index names follow PostgreSQL's own choice for `CREATE TABLE ... (LIKE ... INCLUDING ALL)`, so a reindex
    # that builds search_documents_new and renames it can rename its indexes back to exactly these.
    op.execute("CREATE INDEX search_documents_tsv_idx ON search_documents USING gin (tsv)")
    op.execute("CREATE INDEX search_documents_title_trgm_idx ON search_documents USING gin (title_trgm gin_trgm_ops)")
    op.execute("CREATE INDEX search_documents_subjects_idx ON search_documents USING gin (subjects)")
    op.execute("CREATE INDEX search_documents_gbf_targets_idx ON search_documents USING gin (gbf_targets)")
    op.execute("CREATE INDEX search_documents_date_key_idx ON search_documents (date DESC NULLS LAST, key)")
    op.execute("CREATE INDEX search_documents_kind_party_type_idx ON search_documents (kind, party, type)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS search_documents_new")
    op.execute("DROP TABLE IF EXISTS search_documents")
    op.execute("DROP FUNCTION IF EXISTS public.chm_search_tsv(jsonb, jsonb, jsonb, text[])")
    op.execute("DROP FUNCTION IF EXISTS public.chm_lstring_text(jsonb)")
    op.execute("DROP FUNCTION IF EXISTS public.chm_unaccent(text)")
