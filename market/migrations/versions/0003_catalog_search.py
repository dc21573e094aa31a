"""catalog search: full-text indexes on the listed services

SQLite: two FTS5 tables over catalog_listed_service (external content, kept in step by triggers):
`catalog_search_words` (porter stemming, for English words) and `catalog_search_trigrams` (trigram,
for Korean and partial words).
PostgreSQL: a weighted tsvector column (name A, summary B, body and provider C) with a GIN index,
and a pg_trgm GIN index over the same text for Korean and partial words.

These objects are not described by the models; market/migrations/env.py tells autogenerate to
leave them alone (`include_name`). catalog/search/ (sqlite.py, postgres.py) queries them by name and repeats the trigram
index's expression exactly: keep both in step.

Revision ID: 0003_catalog_search
Revises: 0002_catalog
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_catalog_search"
down_revision: str | None = "0002_catalog"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = "name, summary, body, provider_name"
NEW = "new.service_id, new.name, new.summary, new.body, new.provider_name"
OLD = "old.service_id, old.name, old.summary, old.body, old.provider_name"
FTS_TABLES = {
    "catalog_search_words": "porter unicode61 remove_diacritics 2",
    "catalog_search_trigrams": "trigram",
}


def _sqlite_upgrade() -> None:
    for table, tokenizer in FTS_TABLES.items():
        op.execute(
            f"CREATE VIRTUAL TABLE {table} USING fts5({COLUMNS}, content='catalog_listed_service', "
            f"content_rowid='service_id', tokenize='{tokenizer}')"
        )
    inserts = "".join(f"INSERT INTO {table}(rowid, {COLUMNS}) VALUES ({NEW}); " for table in FTS_TABLES)
    deletes = "".join(
        f"INSERT INTO {table}({table}, rowid, {COLUMNS}) VALUES ('delete', {OLD}); " for table in FTS_TABLES
    )
    op.execute(f"CREATE TRIGGER catalog_search_after_insert AFTER INSERT ON catalog_listed_service BEGIN {inserts}END")
    op.execute(f"CREATE TRIGGER catalog_search_after_delete AFTER DELETE ON catalog_listed_service BEGIN {deletes}END")
    op.execute(
        f"CREATE TRIGGER catalog_search_after_update AFTER UPDATE OF service_id, {COLUMNS} ON catalog_listed_service "
        f"BEGIN {deletes}{inserts}END"
    )
    for table in FTS_TABLES:
        op.execute(f"INSERT INTO {table}({table}) VALUES ('rebuild')")


def _sqlite_downgrade() -> None:
    for trigger in ("catalog_search_after_update", "catalog_search_after_delete", "catalog_search_after_insert"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for table in FTS_TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table}")


# '/' joined words ("ISO/IEC") would otherwise be one token of the default parser.
POSTGRES_DOCUMENT = (
    "ALTER TABLE catalog_listed_service ADD COLUMN search_document tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english'::regconfig, translate(name, '/', ' ')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, translate(summary, '/', ' ')), 'B') || "
    "setweight(to_tsvector('english'::regconfig, translate(body, '/', ' ')), 'C') || "
    "setweight(to_tsvector('english'::regconfig, translate(provider_name, '/', ' ')), 'C')"
    ") STORED"
)
# Also used by bench/ to rebuild them after a bulk load.
POSTGRES_INDEXES = {
    "ix_catalog_search_document": "CREATE INDEX ix_catalog_search_document ON catalog_listed_service USING gin (search_document)",
    "ix_catalog_search_text": (
        "CREATE INDEX ix_catalog_search_text ON catalog_listed_service USING gin "
        "((name || ' ' || summary || ' ' || body || ' ' || provider_name) gin_trgm_ops)"
    ),
}


def _postgres_upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(POSTGRES_DOCUMENT)
    for statement in POSTGRES_INDEXES.values():
        op.execute(statement)


def _postgres_downgrade() -> None:
    for index in POSTGRES_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {index}")
    op.execute("ALTER TABLE catalog_listed_service DROP COLUMN IF EXISTS search_document")
    # pg_trgm stays installed: other objects of the database may use it.


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_upgrade()
    else:
        _postgres_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_downgrade()
    else:
        _postgres_downgrade()
