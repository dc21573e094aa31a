"""Shared fixtures: a real database migrated once per run and emptied before each test (SQLite file,
or PostgreSQL when MARKET_TEST_DATABASE_URL is set), the app built by `create_app`, and an HTTP client."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import closing

import asyncpg
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from market import clock, i18n, schema_version, security
from market.app import create_app
from market.assembly import assemble
from market.database import create_engine
from market.parts import Parts
from market.settings import Settings
from tests.helpers import TEST_DAY, Browserless

# Under pytest-xdist each worker has its own PostgreSQL database beside the given one (market_test_gw0 ...).
_GIVEN_POSTGRES_URL = os.environ.get("MARKET_TEST_DATABASE_URL", "")
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
POSTGRES_URL = (
    make_url(_GIVEN_POSTGRES_URL)
    .set(database=f"{make_url(_GIVEN_POSTGRES_URL).database}_{_WORKER}")
    .render_as_string(hide_password=False)
    if _GIVEN_POSTGRES_URL and _WORKER
    else _GIVEN_POSTGRES_URL
)

# Argon2 at its recommended cost takes most of a second per hash on a busy machine; the tests check
# behaviour, not cost, so they hash cheaply (the served app in the browser tests keeps the real cost).
security._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


# The files that take longest, run first: tests/run.sh hands the files to its workers in this order
# (--no-loadscope-reorder), so that none of these is left running on one worker while the other has nothing to do.
LONGEST_FIRST = (
    "tests/e2e/",
    "tests/market/test_authorisation.py",
    "tests/market/test_api_schema.py",
    "tests/catalog/test_hostile_uploads.py",
    "tests/market/test_two_processes.py",
    "tests/contracts/test_worker_killed.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((n for n, start in enumerate(LONGEST_FIRST) if item.nodeid.startswith(start)), len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: the order within a file, and of the other files, stays


def pytest_report_header() -> str:
    return f"database: {'PostgreSQL ' + POSTGRES_URL.split('@')[-1] if POSTGRES_URL else 'SQLite'}"


async def _reset_postgres(url: str) -> None:
    """An empty schema; the database itself is created first when missing (a worker's own)."""
    name = make_url(url).database
    admin = await asyncpg.connect(
        make_url(url).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    )
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    engine = create_engine(url, pooled=False)
    async with engine.begin() as connection:
        await connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        await connection.execute(sa.text("CREATE SCHEMA public"))
    await engine.dispose()


# DELETE is far quicker than TRUNCATE on tables this small; replica mode skips the foreign-key triggers.
_EMPTY_POSTGRES = """
DO $$
DECLARE name text;
BEGIN
    SET LOCAL session_replication_role = replica;
    FOR name IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version' LOOP
        EXECUTE format('DELETE FROM %I', name);
    END LOOP;
    FOR name IN SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' LOOP
        EXECUTE format('ALTER SEQUENCE %I RESTART', name);
    END LOOP;
END $$
"""


class _PostgresEmptier:
    """Empties the run's PostgreSQL database before each test on one connection kept for the run, on an event loop
    of its own: connecting anew every time cost more than the emptying."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connection: asyncpg.Connection | None = None

    def _connect(self, url: str) -> asyncpg.Connection:
        self.loop = self.loop or asyncio.new_event_loop()
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.connection = self.loop.run_until_complete(asyncpg.connect(dsn))
        return self.connection

    def __call__(self, url: str) -> None:
        connection = (
            self.connection if self.connection is not None and not self.connection.is_closed() else self._connect(url)
        )
        try:
            self.loop.run_until_complete(connection.execute(_EMPTY_POSTGRES))  # type: ignore[union-attr]
        except (
            OSError,
            asyncpg.InterfaceError,
            asyncpg.PostgresConnectionError,
        ):  # the kept connection was lost: once more anew
            self.loop.run_until_complete(self._connect(url).execute(_EMPTY_POSTGRES))  # type: ignore[union-attr]

    def close(self) -> None:
        if self.loop is None:
            return
        if self.connection is not None and not self.connection.is_closed():
            self.loop.run_until_complete(self.connection.close())
        self.loop.close()
        self.loop = self.connection = None


_empty_postgres = _PostgresEmptier()


@pytest.fixture(scope="session", autouse=True)
def _close_postgres_emptier() -> Iterator[None]:
    yield
    _empty_postgres.close()


def _empty_sqlite(path: str) -> None:
    """Every row gone, as after migrating: base tables emptied, full-text indexes cleared, counters reset."""
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute("PRAGMA foreign_keys=OFF")
        connection.execute("BEGIN IMMEDIATE")
        rows = connection.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
        virtual = [name for name, sql in rows if sql and sql.upper().startswith("CREATE VIRTUAL")]
        for name, _sql in rows:
            shadow = any(name.startswith(f"{table}_") for table in virtual)
            if name in virtual or shadow or name == "alembic_version" or name.startswith("sqlite_"):
                continue
            connection.execute(f'DELETE FROM "{name}"')
        for table in virtual:
            connection.execute(f"INSERT INTO {table}({table}) VALUES ('delete-all')")
        if any(name == "sqlite_sequence" for name, _sql in rows):
            connection.execute("DELETE FROM sqlite_sequence")
        connection.execute("COMMIT")


# The day the tests live on: dates written in the tests stay in the future or the past they mean, whatever
# the date when they run. Processes the tests start inherit the moved clock; the browser tests' server, started
# once for the run, keeps the real one, and their dates are counted from `clock.today()` (so may any test marked
# `real_clock`).


@pytest.fixture(autouse=True)
def business_day(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("real_clock") or request.node.get_closest_marker("browser"):
        yield
        return
    with clock.travel(TEST_DAY):
        yield


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """Messages made outside a request (service calls in tests) are in English, as the tests' settings say."""
    token = i18n.current_language.set("en")
    yield
    i18n.current_language.reset(token)


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrated once per run; every test starts from it emptied (see `database_url`)."""
    if POSTGRES_URL:
        asyncio.run(_reset_postgres(POSTGRES_URL))
        schema_version.upgrade(POSTGRES_URL)
        return POSTGRES_URL
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('database') / 'market.db'}"
    schema_version.upgrade(url)
    return url


def empty_database(migrated_database: str) -> None:
    """Every row removed from the run's database (also for a module whose tests share what they build)."""
    if POSTGRES_URL:
        _empty_postgres(POSTGRES_URL)
    else:
        _empty_sqlite(migrated_database.split(":///", 1)[1])


def empty_data_dir(settings: Settings) -> None:
    """The data folder's stored documents removed."""
    for entry in settings.data_dir.iterdir():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


@pytest.fixture
def database_url(migrated_database: str) -> str:
    """The run's database with every row removed, so each test starts from an empty marketplace."""
    empty_database(migrated_database)
    return migrated_database


@pytest.fixture(scope="session")
def base_settings(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=migrated_database,
        data_dir=tmp_path_factory.mktemp("data"),
        secret_key="test-secret-" + "x" * 40,
        worker="off",
        default_language="en",
        api_requests_per_minute=1_000_000,  # tests/market/test_rate_limit.py checks the limit with its own app
        search_cache_seconds=0,  # tests insert listings directly; tests/catalog/test_search_cache.py turns it on
    ).checked()


@pytest.fixture
def settings(base_settings: Settings, database_url: str) -> Settings:
    """The run's settings, with the database and the data folder (stored documents) emptied."""
    empty_data_dir(base_settings)
    return base_settings


@pytest.fixture(scope="session")
def parts() -> Parts:
    """The run's registry of the packages' parts, shared by the apps the fixtures build and by `sessions`, so a test
    that listens to an event (`parts.subscribe`) hears it however it was announced."""
    return assemble()


@pytest.fixture(scope="session")
def app(base_settings: Settings, parts: Parts) -> Litestar:
    """Built once: building the route table is most of a test's cost. Each client runs its lifespan anew."""
    return create_app(base_settings, parts=parts)


@pytest.fixture
async def client(app: Litestar, settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        yield test_client


@pytest.fixture
async def sessions(database_url: str, parts: Parts) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Direct database access for arranging and checking, on its own engine (never the app's pool)."""
    engine = create_engine(database_url, pooled=False)
    yield parts.sessions(engine)
    await engine.dispose()


@pytest.fixture
async def web(client: AsyncTestClient[Litestar], sessions: async_sessionmaker[AsyncSession]) -> Browserless:
    return Browserless(client, sessions)
