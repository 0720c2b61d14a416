"""Matchmaking: opportunities, the text vectors matchmaking compares, and the reference data it reads (UN M49
regions and groupings, GBF goals above targets, broader/narrower CBD subjects), and the matches announced
when an opportunity is published (`cooperation_matches`, the `cooperation.match` webhook event)

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-01 21:45:00

`chm_match_tsv(title, a, b)` is one tsvector over every UN language, each under its own stemmer (title weighted
A): PostgreSQL full text across languages. It is a STORED generated column on every kind matchmaking compares
(opportunities, cooperation requests and offers, and expert/organization/project records), so ranking never runs
`to_tsvector` at query time.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONFIGS = {"en": "english", "fr": "french", "es": "spanish", "ru": "russian", "ar": "arabic", "zh": "simple"}
TEXT_CHARS = 4000  # the opening of long texts is enough to compare, and keeps the vectors small
RECORD_KINDS = "('expert','organization','project')"


def _match_tsv_body() -> str:
    parts = []
    for lang, cfg in CONFIGS.items():
        parts.append(f"setweight(to_tsvector('{cfg}'::regconfig, public.chm_unaccent(coalesce(title->>'{lang}', ''))), 'A')")
        body = f"coalesce(a->>'{lang}', '') || ' ' || coalesce(b->>'{lang}', '')"
        parts.append(f"setweight(to_tsvector('{cfg}'::regconfig, public.chm_unaccent(left({body}, {TEXT_CHARS}))), 'B')")
    return "SELECT " + "\n  || ".join(parts)


def upgrade() -> None:
    op.execute(f"""
        CREATE OR REPLACE FUNCTION public.chm_match_tsv(title jsonb, a jsonb, b jsonb)
        RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ {_match_tsv_body()} $$
    """)
    op.create_table(
        "opportunities",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("provider_party", sa.String(length=2), sa.ForeignKey("parties.code"), nullable=True),
        sa.Column("provider_organization", sa.String(length=500), nullable=True),
        sa.Column("title", postgresql.JSONB(), nullable=False),
        sa.Column("description", postgresql.JSONB(), nullable=True),
        sa.Column("assistance_types", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("subjects", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("gbf_targets", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("eligible_countries", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("eligible_regions", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("application_deadline", sa.Date(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("contact", postgresql.JSONB(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("match_tsv", postgresql.TSVECTOR(),
                  sa.Computed("public.chm_match_tsv(title, description, NULL)", persisted=True)),
        sa.CheckConstraint("status IN ('open','closed')", name="ck_opportunities_status"),
        sa.CheckConstraint("provider_party IS NOT NULL OR provider_organization IS NOT NULL",
                           name="ck_opportunities_provider"),
    )
    op.create_index("ix_opportunities_updated", "opportunities", ["updated_at", "id"])
    op.create_index("ix_opportunities_party_updated", "opportunities", ["provider_party", "updated_at", "id"])
    op.create_index("ix_opportunities_status_updated", "opportunities", ["status", "updated_at", "id"])
    op.create_index("ix_opportunities_subjects", "opportunities", ["subjects"], postgresql_using="gin")
    op.create_index("ix_opportunities_gbf_targets", "opportunities", ["gbf_targets"], postgresql_using="gin")
    op.create_index("ix_opportunities_match_tsv", "opportunities", ["match_tsv"], postgresql_using="gin")

    op.create_table(
        "cooperation_matches",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("request_id", postgresql.UUID(as_uuid=True),
                  sa.ForeignKey("cooperation_requests.id", ondelete="CASCADE"), nullable=False),
        sa.Column("opportunity_id", postgresql.UUID(as_uuid=True),
                  sa.ForeignKey("opportunities.id", ondelete="CASCADE"), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reasons", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("uq_cooperation_matches_pair", "cooperation_matches", ["request_id", "opportunity_id"],
                    unique=True)

    op.execute("ALTER TABLE cooperation_requests ADD COLUMN match_tsv tsvector "
               "GENERATED ALWAYS AS (public.chm_match_tsv(title, problem, objectives)) STORED")
    op.execute("ALTER TABLE cooperation_offers ADD COLUMN match_tsv tsvector "
               "GENERATED ALWAYS AS (public.chm_match_tsv(description, NULL, NULL)) STORED")
    op.execute(f"ALTER TABLE records ADD COLUMN match_tsv tsvector GENERATED ALWAYS AS (CASE WHEN type IN "
               f"{RECORD_KINDS} THEN public.chm_match_tsv(title, summary, NULL) END) STORED")
    op.create_index("ix_requests_match_tsv", "cooperation_requests", ["match_tsv"], postgresql_using="gin")
    op.create_index("ix_records_match_tsv", "records", ["match_tsv"], postgresql_using="gin",
                    postgresql_where=sa.text("match_tsv IS NOT NULL"))
    op.create_index("ix_records_type_status", "records", ["type", "status"],
                    postgresql_where=sa.text(f"type IN {RECORD_KINDS}"))

    from app.services.reference import upsert_statements

    bind = op.get_bind()
    for stmt in upsert_statements():
        bind.execute(stmt)


def downgrade() -> None:
    op.drop_index("ix_records_type_status", table_name="records")
    op.drop_index("ix_records_match_tsv", table_name="records")
    op.drop_index("ix_requests_match_tsv", table_name="cooperation_requests")
    op.execute("ALTER TABLE records DROP COLUMN match_tsv")
    op.execute("ALTER TABLE cooperation_offers DROP COLUMN match_tsv")
    op.execute("ALTER TABLE cooperation_requests DROP COLUMN match_tsv")
    op.drop_table("cooperation_matches")
    op.drop_table("opportunities")
    op.execute("DROP FUNCTION IF EXISTS public.chm_match_tsv(jsonb, jsonb, jsonb)")
    op.execute("DELETE FROM vocabulary_terms WHERE vocabulary = 'regions'")
