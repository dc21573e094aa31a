"""The schema's version: Alembic driven from code (upgrade, downgrade, current) and the check that the database is at the migrations' head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def import_models() -> None:
    """Register every package's tables on SQLModel.metadata (each package's include function imports its models)."""
    from market.assembly import assemble

    assemble()


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def head() -> str:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads; merge them with `alembic merge`")
    return heads[0]


async def current(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


class SchemaBehind(RuntimeError):
    pass


async def ensure_current(engine: AsyncEngine) -> None:
    at, expected = await current(engine), head()
    if at != expected:
        raise SchemaBehind(
            f"The database schema is at revision {at or 'none (empty database)'} but this code needs {expected}. "
            "Run `market db upgrade` first."
        )
