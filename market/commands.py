"""What every command shares: the settings from the environment, and one transaction on a database known to be current."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from market.settings import Settings, SettingsError, configure

T = TypeVar("T")


def settings_from_env() -> Settings:
    """The settings; the command's messages are in the default language (MARKET_DEFAULT_LANGUAGE)."""
    from market import i18n

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    i18n.current_language.set(settings.default_language)
    return configure(settings)


def where(settings: Settings) -> str:
    """The database's location without its credentials."""
    return settings.database_url.split("@")[-1]


def unreachable(settings: Settings, exc: Exception) -> click.ClickException:
    return click.ClickException(f"Cannot reach the database at {where(settings)}: {getattr(exc, 'orig', None) or exc}")


def refuse_missing_sqlite(settings: Settings) -> None:
    """Connecting would create an empty file (or fail on a missing folder): say what to run instead."""
    path = make_url(settings.database_url).database if settings.is_sqlite else None
    if path and path != ":memory:" and not Path(path).exists():
        raise click.ClickException(f"The database file {path} does not exist yet. Run `market db upgrade` first.")


async def checked_engine(settings: Settings, *, pooled: bool = False) -> AsyncEngine:
    """An engine on a reachable database whose schema is at the code's head, or a ClickException saying what to do."""
    from market import schema_version
    from market.database import create_engine

    refuse_missing_sqlite(settings)
    engine = create_engine(settings.database_url, pooled=pooled)
    try:
        await schema_version.ensure_current(engine)
    except schema_version.SchemaBehind as exc:
        await engine.dispose()
        raise click.ClickException(str(exc)) from exc
    except (OSError, DBAPIError) as exc:
        await engine.dispose()
        raise unreachable(settings, exc) from exc
    return engine


def in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction on a short-lived engine, once the schema is known to be current."""
    from market.assembly import assemble

    parts = assemble()  # the packages' tables, and their subscribers for what the work announces

    async def run() -> T:
        engine = await checked_engine(settings)
        try:
            async with parts.sessions(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def ensure_data_dir(settings: Settings) -> None:
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
