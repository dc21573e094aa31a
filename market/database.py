"""Engines, types and the small differences between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Mapped
from sqlalchemy.pool import NullPool
from sqlmodel import Field, col

from market import clock

SQLITE_BUSY_TIMEOUT_MS = 10_000
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@dataclass
class ReadAttempt:
    """Work done under `reading`; `refused_write` tells whether it tried to write and must be done again."""

    refused_write: bool = False


_reading: ContextVar[ReadAttempt | None] = ContextVar("market_reading", default=None)


class WriteWhileReading(RuntimeError):
    """A transaction begun for reading tried to write.

    SQLite cannot turn a read transaction into a write transaction safely: when another connection writes
    meanwhile, the upgrade fails at once with "database is locked", whatever the busy timeout. So the write
    is refused before it is tried, and the work must be done again in a write transaction."""


@contextmanager
def reading() -> Iterator[ReadAttempt]:
    """Transactions begun inside are for reading: on SQLite they begin DEFERRED, so any number of them run
    beside the one writer instead of queueing for its lock, and a write in them raises `WriteWhileReading`.
    Everything else (requests that change state, the CLI, the worker) begins IMMEDIATE and queues."""
    attempt = ReadAttempt()
    token = _reading.set(attempt)
    try:
        yield attempt
    finally:
        _reading.reset(token)


@contextmanager
def writing() -> Iterator[None]:
    """Transactions begun inside are for writing, even within `reading` (a security event written in its own
    transaction while a read request answers)."""
    token = _reading.set(None)
    try:
        yield
    finally:
        _reading.reset(token)


def utcnow() -> datetime:
    """The current instant from the marketplace's one clock (`market.clock`)."""
    return clock.now()


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Stores UTC, returns an aware UTC datetime on both databases (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store times in UTC with a zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_field(**kwargs: Any) -> Any:
    """A model field holding a UTC time (see `UTCDateTime`)."""
    return Field(sa_type=UTCDateTime, **kwargs)


class _Stored(Protocol):
    @property
    def id(self) -> int | None: ...


def row_id(row: _Stored) -> int:
    """The key of a row that is in the database: a table's `id` is None only until the row's first flush."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: flush it first")
    return row.id


def id_column(column: int | None) -> Mapped[int]:
    """A table's `id` selected in a query: the attribute is None until a row's first flush, but the column is
    never NULL, so the query answers ints."""
    return cast("Mapped[int]", col(column))


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, a busy timeout, and write locks taken at BEGIN so writers queue instead of failing;
    transactions begun under `reading` take no lock and may not write."""

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")  # first: switching to WAL may have to wait
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: sa.Connection) -> None:
        attempt = _reading.get()
        connection.info["market_reading"] = attempt
        connection.exec_driver_sql("BEGIN IMMEDIATE" if attempt is None else "BEGIN")

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def refuse_writes_while_reading(
        connection: sa.Connection, _cursor: Any, statement: str, _parameters: Any, context: Any, _executemany: bool
    ) -> None:
        attempt = connection.info.get("market_reading")
        if attempt is None:
            return
        writes = context is not None and (context.isinsert or context.isupdate or context.isdelete)
        if writes or statement.lstrip()[:7].upper().startswith(_WRITES):
            attempt.refused_write = True
            raise WriteWhileReading(f"a read transaction tried to write: {statement[:80]}")


def create_engine(url: str, *, pooled: bool = True) -> AsyncEngine:
    """The app's engine (pooled), or a NullPool one for tools and tests that must not share connections."""
    kwargs: dict[str, Any] = {}
    if not pooled:
        kwargs["poolclass"] = NullPool
    elif not url.startswith("sqlite"):
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        _configure_sqlite(engine)
    return engine


async def changed_rows(session: AsyncSession, statement: sa.Update | sa.Delete) -> int:
    """Run an UPDATE or DELETE; how many rows it changed."""
    result = await session.execute(statement)
    # an UPDATE or DELETE always answers a CursorResult (which has the row count); execute() is typed for any statement
    assert isinstance(result, sa.CursorResult)
    return result.rowcount


def is_postgres(session: AsyncSession) -> bool:
    return session.bind.dialect.name == "postgresql"


async def lock(session: AsyncSession, key: int) -> None:
    """A transaction-scoped lock shared by every app process, held from this call until commit or rollback.

    On SQLite the transaction's BEGIN IMMEDIATE is the lock (one writer at a time); it is taken here, since a
    session starts its transaction only at its first statement. Under `reading` there is no such lock, and the
    write that follows raises `WriteWhileReading`."""
    if is_postgres(session):
        await session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        await session.connection()
