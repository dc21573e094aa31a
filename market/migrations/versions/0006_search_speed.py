"""catalog search speed: a narrow search table on PostgreSQL

`catalog_search_rows` holds, for each listed service, only what counting, faceting and ordering read: the
filter columns, the sort keys, and the stemmed words of the weighted tsvector as 64-bit hashes (`words`:
every field; `heading`: the name's words hashed with seed 1 and the summary's with seed 2, for relevance).
A row is about 550 bytes against 1.7 kB for `catalog_listed_service`, whose long text is only needed for the
page of results, phrases and quoted Korean phrases, so a search touching most of the catalogue reads a table
that stays in the buffer cache. `catalog_search_vocabulary` holds every word with Hangul in it that a listed
service ever held, trigram-indexed, so that a Korean or partial word becomes the words containing it. A
trigger keeps both in step with `catalog_listed_service`.

SQLite is unchanged (FTS5 answers there). Like 0003's objects, these are not described by the models:
market/migrations/env.py leaves tables named catalog_search_* alone, and catalog/search/postgres.py queries them by
name.

Revision ID: 0006_search_speed
Revises: 0005_contracts
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006_search_speed"
down_revision: str | None = "0005_contracts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COPIED = (
    "service_id, name, category, deployment_model, certification_schemes, csap_grade, data_country, "
    "sla_availability_bp, min_price, free_trial, is_sme, listed_at, tiebreak"
)

POSTGRES_TABLE = """
CREATE TABLE catalog_search_rows (
    service_id integer PRIMARY KEY,
    name varchar(200) NOT NULL,
    category varchar(32) NOT NULL,
    deployment_model varchar(16) NOT NULL,
    certification_schemes varchar(200) NOT NULL,
    csap_grade varchar(8) NOT NULL,
    data_country varchar(2) NOT NULL,
    sla_availability_bp integer NOT NULL,
    min_price integer NOT NULL,
    free_trial boolean NOT NULL,
    is_sme boolean NOT NULL,
    listed_at timestamp with time zone NOT NULL,
    tiebreak integer NOT NULL,
    words bigint[] NOT NULL,
    heading bigint[] NOT NULL
)
"""

# Every word with Hangul in it that a listed service ever held, trigram-indexed: catalog/search/postgres.py turns a Korean
# or partial word into the words containing it, then finds those in `words` like English words.
POSTGRES_VOCABULARY = (
    "CREATE TABLE catalog_search_vocabulary (lexeme text PRIMARY KEY)",
    "CREATE INDEX ix_catalog_search_vocabulary_trigrams ON catalog_search_vocabulary USING gin (lexeme gin_trgm_ops)",
)
HANGUL_LEXEME = "lexeme ~ '[\\u1100-\\u11ff\\u3130-\\u318f\\uac00-\\ud7a3]'"

# The distinct lexemes of a tsvector as 64-bit hashes; catalog/search/postgres.py hashes the query's words with it too.
POSTGRES_HASHES = """
CREATE FUNCTION catalog_search_hashes(document tsvector, seed bigint) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(hashtextextended(lexeme, seed)), '{}') FROM unnest(tsvector_to_array(document)) AS lexeme
$$
"""

HEADING = (
    "catalog_search_hashes(to_tsvector('english'::regconfig, translate({row}name, '/', ' ')), 1) || "
    "catalog_search_hashes(to_tsvector('english'::regconfig, translate({row}summary, '/', ' ')), 2)"
)
VALUES = (
    "{row}service_id, {row}name, {row}category, {row}deployment_model, {row}certification_schemes, {row}csap_grade, "
    "{row}data_country, {row}sla_availability_bp, {row}min_price, {row}free_trial, {row}is_sme, {row}listed_at, "
    "{row}tiebreak, catalog_search_hashes({row}search_document, 0), " + HEADING
)
UPDATES = ", ".join(f"{column} = excluded.{column}" for column in [*COPIED.split(", ")[1:], "words", "heading"])

POSTGRES_SYNC = f"""
CREATE FUNCTION catalog_search_rows_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND old.service_id <> new.service_id) THEN
        DELETE FROM catalog_search_rows WHERE service_id = old.service_id;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN old;
    END IF;
    INSERT INTO catalog_search_rows ({COPIED}, words, heading)
    VALUES ({VALUES.format(row="new.")})
    ON CONFLICT (service_id) DO UPDATE SET {UPDATES};
    INSERT INTO catalog_search_vocabulary SELECT lexeme FROM unnest(tsvector_to_array(new.search_document)) AS lexeme
    WHERE {HANGUL_LEXEME} ON CONFLICT DO NOTHING;
    RETURN new;
END
$$
"""

POSTGRES_TRIGGER = (
    "CREATE TRIGGER catalog_search_rows_sync AFTER INSERT OR UPDATE OR DELETE ON catalog_listed_service "
    "FOR EACH ROW EXECUTE FUNCTION catalog_search_rows_sync()"
)

# Also used by bench/ to rebuild them after a bulk load. The orders match catalog/search/postgres.py's sorts, so a
# page of a search matching most of the catalogue is read in index order and stops after twenty rows.
POSTGRES_INDEXES = {
    "ix_catalog_search_rows_words": "CREATE INDEX ix_catalog_search_rows_words ON catalog_search_rows USING gin (words)",
    "ix_catalog_search_rows_heading": (
        "CREATE INDEX ix_catalog_search_rows_heading ON catalog_search_rows USING gin (heading)"
    ),
    "ix_catalog_search_rows_tiebreak": (
        "CREATE INDEX ix_catalog_search_rows_tiebreak ON catalog_search_rows (tiebreak, service_id)"
    ),
    "ix_catalog_search_rows_price": (
        "CREATE INDEX ix_catalog_search_rows_price ON catalog_search_rows (min_price, tiebreak, service_id)"
    ),
    "ix_catalog_search_rows_name": "CREATE INDEX ix_catalog_search_rows_name ON catalog_search_rows (name, service_id)",
    "ix_catalog_search_rows_newest": (
        "CREATE INDEX ix_catalog_search_rows_newest ON catalog_search_rows (listed_at DESC, service_id DESC)"
    ),
}

POSTGRES_FILL = (
    f"INSERT INTO catalog_search_rows ({COPIED}, words, heading) "
    f"SELECT {VALUES.format(row='')} FROM catalog_listed_service",
    "INSERT INTO catalog_search_vocabulary SELECT DISTINCT lexeme FROM catalog_listed_service, "
    f"unnest(tsvector_to_array(search_document)) AS lexeme WHERE {HANGUL_LEXEME} ON CONFLICT DO NOTHING",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(POSTGRES_TABLE)
    for statement in POSTGRES_VOCABULARY:
        op.execute(statement)
    op.execute(POSTGRES_HASHES)
    op.execute(POSTGRES_SYNC)
    for statement in POSTGRES_FILL:
        op.execute(statement)
    op.execute(POSTGRES_TRIGGER)
    for statement in POSTGRES_INDEXES.values():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS catalog_search_rows_sync ON catalog_listed_service")
    op.execute("DROP FUNCTION IF EXISTS catalog_search_rows_sync()")
    op.execute("DROP TABLE IF EXISTS catalog_search_rows")
    op.execute("DROP TABLE IF EXISTS catalog_search_vocabulary")
    op.execute("DROP FUNCTION IF EXISTS catalog_search_hashes(tsvector, bigint)")
