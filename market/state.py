"""What the app keeps in its state for the parts that run outside a handler's dependencies: middleware, hooks, streams."""

from __future__ import annotations

from typing import TYPE_CHECKING

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from market.settings import Settings

if TYPE_CHECKING:
    from litestar import Litestar


def settings_of(app: Litestar) -> Settings:
    return app.state["settings"]


def db_config_of(app: Litestar) -> SQLAlchemyAsyncConfig:
    return app.state["db_config"]


def sessions_of(app: Litestar) -> async_sessionmaker[AsyncSession]:
    """Sessions outside a request (the embedded worker, streams), on the app's engine and with its parts."""
    return app.state["parts"].sessions(db_config_of(app).get_engine())
