"""Search: a vocabulary of title words (`search_words`, trigram-indexed) for word-level typo correction

The typo fallback used to look for titles trigram-similar to the whole query (`:q <% title_trgm`): the trigram
index cannot bound that (every title sharing a trigram with "biodiversty" is a candidate, ~20 µs each to test), so
at 1,000,000 documents one misspelling took 45 to 780 ms depending on where its matches lay, and some found nothing
("peatlnds", "wetlnads"). Correcting each query word against the vocabulary instead is a lookup in a small table
(one word per distinct title word, a few thousand to a few hundred thousand rows), after which the corrected query
is an ordinary full-text search: exact totals, facets and highlights. The table holds only words of indexed
documents (published, public content); `chm reindex` rebuilds it, dropping words no document uses any more.

`chm_near_words(word, k, threshold)`: the k vocabulary words nearest `word` by trigram similarity, down to
`threshold` (pg_trgm's `%` reads it from `pg_trgm.similarity_threshold`, set for the one lookup and restored). A
short word has few trigrams and one typo breaks up to four of them: "forst" shares only 0.2 of its trigrams with
"frost", one transposition away, below pg_trgm's default 0.3. The caller passes the threshold for the word's length.

Revision ID: 0121
Revises: 0120
Create Date: 2026-12-02 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0121"
down_revision: str | None = "0120"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL statement_timeout = 0")
    op.execute("CREATE TABLE IF NOT EXISTS search_words (word text PRIMARY KEY)")
    op.execute(
        "INSERT INTO search_words (word) SELECT DISTINCT w FROM search_documents d, "
        "regexp_split_to_table(d.title_trgm, '[^[:alnum:]]+') AS w WHERE length(w) >= 4 ON CONFLICT DO NOTHING"
    )
    op.execute("CREATE INDEX IF NOT EXISTS search_words_trgm_idx ON search_words USING gin (word gin_trgm_ops)")
    op.execute("""
        CREATE OR REPLACE FUNCTION public.chm_near_words(w text, k integer, threshold real) RETURNS text[]
        LANGUAGE plpgsql VOLATILE STRICT AS $$
        DECLARE
            previous text := coalesce(current_setting('pg_trgm.similarity_threshold', true), '0.3');
            near text[];
        BEGIN
            PERFORM set_config('pg_trgm.similarity_threshold', threshold::text, true);
            near := ARRAY(SELECT v.word FROM search_words v WHERE v.word % w ORDER BY v.word <-> w, v.word LIMIT k);
            PERFORM set_config('pg_trgm.similarity_threshold', previous, true);
            RETURN near;
        END $$
    """)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS public.chm_near_words(text, integer, real)")
    op.execute("DROP TABLE IF EXISTS search_words")
