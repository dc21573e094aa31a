"""Alembic environment: async engines for both databases; batch mode so SQLite can alter tables."""

from __future__ import annotations

import asyncio

from alembic import context
from alembic.runtime.environment import NameFilterParentNames, NameFilterType
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import async_engine_from_config
from sqlmodel import SQLModel

from market.schema_version import import_models

import_models()
config = context.config
target_metadata = SQLModel.metadata


def include_name(name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames) -> bool:
    """Autogenerate leaves alone what the migrations build by hand for full-text search (0003_catalog_search):
    SQLite's FTS5 tables and their shadow tables, PostgreSQL's tsvector column and GIN indexes."""
    if type_ == "table":
        return not (name or "").startswith("catalog_search_")
    if type_ == "index":
        return not (name or "").startswith("ix_catalog_search_")
    if type_ == "column":
        return not (parent_names.get("table_name") == "catalog_listed_service" and name == "search_document")
    return True


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = async_engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    async with engine.connect() as connection:
        await connection.run_sync(_configure)
    await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
