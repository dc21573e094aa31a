"""money in BIGINT columns: contract, budget, invoice and payment amounts, plan and listed prices

Amounts are whole won. On PostgreSQL an INTEGER stops at ₩2,147,483,647, short of many a government cloud
contract; every money column becomes a BIGINT (the application caps money at `market.schemas.MONEY_MAX`), and
so does the price column of PostgreSQL's narrow search table `catalog_search_rows` (0006), which the trigger
on `catalog_listed_service` fills from `min_price`.

SQLite's INTEGER already holds 64 bits: there only the declared types change, so that the schema matches the
models. Its batch copy of `catalog_listed_service` drops the triggers that keep the full-text tables of 0003
in step; they are dropped first and made again, unchanged, afterwards (the copy keeps every row's
`service_id`, the full-text tables' rowid, so their contents stay valid).

Downgrading fails on PostgreSQL if an amount beyond ₩2,147,483,647 is stored.

Revision ID: 0010_money_bigint
Revises: 0009_signing_keys
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_money_bigint"
down_revision: str | None = "0009_signing_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, nullable)
MONEY_COLUMNS = (
    ("contracts_contract", "amount_paid_at_end", True),
    ("contracts_contract_version", "amount_net", False),
    ("contracts_contract_version", "amount_vat", False),
    ("contracts_contract_version", "amount_total", False),
    ("contracts_budget", "amount", False),
    ("contracts_invoice", "amount_net", False),
    ("contracts_invoice", "amount_vat", False),
    ("contracts_invoice", "amount_total", False),
    ("contracts_payment", "amount", False),
    ("catalog_plan", "unit_price", True),
    ("catalog_listed_service", "min_price", False),
)

# 0003's SQLite triggers on catalog_listed_service, exactly as it made them.
FTS_COLUMNS = "name, summary, body, provider_name"
FTS_TABLES = ("catalog_search_words", "catalog_search_trigrams")
_NEW = "new.service_id, new.name, new.summary, new.body, new.provider_name"
_OLD = "old.service_id, old.name, old.summary, old.body, old.provider_name"
_INSERTS = "".join(f"INSERT INTO {table}(rowid, {FTS_COLUMNS}) VALUES ({_NEW}); " for table in FTS_TABLES)
_DELETES = "".join(
    f"INSERT INTO {table}({table}, rowid, {FTS_COLUMNS}) VALUES ('delete', {_OLD}); " for table in FTS_TABLES
)
SQLITE_TRIGGERS = {
    "catalog_search_after_insert": f"CREATE TRIGGER catalog_search_after_insert AFTER INSERT ON catalog_listed_service BEGIN {_INSERTS}END",
    "catalog_search_after_delete": f"CREATE TRIGGER catalog_search_after_delete AFTER DELETE ON catalog_listed_service BEGIN {_DELETES}END",
    "catalog_search_after_update": (
        f"CREATE TRIGGER catalog_search_after_update AFTER UPDATE OF service_id, {FTS_COLUMNS} ON catalog_listed_service "
        f"BEGIN {_DELETES}{_INSERTS}END"
    ),
}


def _retype(new: sa.types.TypeEngine[int], old: sa.types.TypeEngine[int]) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for trigger in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    tables: dict[str, list[tuple[str, bool]]] = {}
    for table, column, nullable in MONEY_COLUMNS:
        tables.setdefault(table, []).append((column, nullable))
    for table, columns in tables.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, nullable in columns:
                batch_op.alter_column(column, existing_type=old, type_=new, existing_nullable=nullable)
    if sqlite:
        for statement in SQLITE_TRIGGERS.values():
            op.execute(statement)
    else:
        op.execute(
            f"ALTER TABLE catalog_search_rows ALTER COLUMN min_price TYPE {new.compile(dialect=op.get_bind().dialect)}"
        )


def upgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer())


def downgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger())
