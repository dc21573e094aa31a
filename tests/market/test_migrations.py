"""The migrations build exactly the schema the models describe, on both databases, and back down again."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from market import schema_version
from market.app import create_app
from market.database import create_engine
from market.settings import Settings
from tests.market.test_cli import Done, market

POSTGRES_URL = os.environ.get("MARKET_TEST_DATABASE_URL", "")
needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="MARKET_TEST_DATABASE_URL is not set")


def _admin_dsn(url: str) -> str:
    """The server of `url`, reached through its maintenance database (asyncpg's own URL form)."""
    return make_url(url).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)


async def _create_database(url: str, name: str) -> None:
    connection = await asyncpg.connect(_admin_dsn(url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(url: str, name: str) -> None:
    connection = await asyncpg.connect(_admin_dsn(url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture
def sqlite_empty(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture
def postgres_empty() -> Iterator[str]:
    """A scratch database of its own: the shared test database is left alone."""
    name = f"market_migr_{secrets.token_hex(6)}"
    asyncio.run(_create_database(POSTGRES_URL, name))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_drop_database(POSTGRES_URL, name))


def _differences(url: str) -> list[object]:
    """What Alembic's autogenerate would still write for this database against SQLModel.metadata.

    The MigrationContext is the one env.py configures (compare_type, the objects migrations build by hand),
    on a sync connection reached through run_sync.
    """
    schema_version.import_models()

    def compare(connection: sa.Connection) -> list[object]:
        config = schema_version.alembic_config(url)
        config.attributes["connection"] = connection
        script = ScriptDirectory.from_config(config)
        found: list[object] = []

        def collect(_heads: object, context: MigrationContext) -> list[object]:
            assert context.opts["target_metadata"] is SQLModel.metadata
            found.extend(compare_metadata(context, SQLModel.metadata))
            return []  # nothing to run: only the comparison is wanted

        with EnvironmentContext(config, script, fn=collect):
            script.run_env()
        return found

    async def run() -> list[object]:
        engine = create_engine(url, pooled=False)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(url: str) -> set[str]:
    async def run() -> set[str]:
        engine = create_engine(url, pooled=False)
        try:
            async with engine.connect() as connection:
                return set(await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _revision(url: str) -> str | None:
    async def run() -> str | None:
        engine = create_engine(url, pooled=False)
        try:
            return await schema_version.current(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _assert_head_matches_models(url: str) -> None:
    schema_version.upgrade(url)
    assert _revision(url) == schema_version.head()
    assert _differences(url) == []


def _assert_round_trip(url: str) -> None:
    schema_version.upgrade(url)
    schema_version.downgrade(url, "base")
    assert _revision(url) is None
    assert _tables(url) <= {"alembic_version"}
    schema_version.upgrade(url)
    assert _revision(url) == schema_version.head()
    assert _differences(url) == []


def test_sqlite_upgrade_to_head_matches_the_models(sqlite_empty: str) -> None:
    _assert_head_matches_models(sqlite_empty)


def test_sqlite_downgrade_to_base_and_upgrade_again(sqlite_empty: str) -> None:
    _assert_round_trip(sqlite_empty)


@needs_postgres
def test_postgres_upgrade_to_head_matches_the_models(postgres_empty: str) -> None:
    _assert_head_matches_models(postgres_empty)


@needs_postgres
def test_postgres_downgrade_to_base_and_upgrade_again(postgres_empty: str) -> None:
    _assert_round_trip(postgres_empty)


def test_the_migrations_have_a_single_head() -> None:
    assert schema_version.head()


@pytest.mark.sqlite_only
async def test_app_refuses_to_start_on_a_database_behind_the_code(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'behind.db'}",
        data_dir=tmp_path,
        secret_key="s" * 40,
        worker="off",
        default_language="en",
    ).checked()
    with pytest.raises(BaseException) as raised:  # the test client hands on the lifespan's failure inside a group
        async with AsyncTestClient(app=create_app(settings)):
            pass
    behind = [error for error in _leaves(raised.value) if isinstance(error, schema_version.SchemaBehind)]
    assert behind, f"startup failed otherwise: {raised.value!r}"
    assert "market db upgrade" in str(behind[0])


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _market(tmp_path: Path, *args: str) -> Done:
    """The `market` command on a database of its own, called in this process (tests/market/test_cli.py)."""
    return market(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", *args)


@pytest.mark.sqlite_only
def test_db_current_exits_non_zero_while_behind_and_zero_after_upgrade(tmp_path: Path) -> None:
    behind = _market(tmp_path, "db", "current")
    assert behind.returncode != 0
    assert "market db upgrade" in behind.stdout
    assert _market(tmp_path, "db", "upgrade").returncode == 0
    current = _market(tmp_path, "db", "current")
    assert current.returncode == 0, current.stdout + current.stderr
    assert "up to date" in current.stdout


# --- 0008: roles by kind of organisation ---------------------------------------------------------------------


def _execute(url: str, *statements: str) -> list[tuple[object, ...]]:
    """Run the statements in one transaction; the rows of the last."""

    async def run() -> list[tuple[object, ...]]:
        engine = create_engine(url, pooled=False)
        try:
            async with engine.begin() as connection:
                result = None
                for statement in statements:
                    result = await connection.execute(sa.text(statement))
                return [tuple(row) for row in result.all()] if result is not None and result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _assert_roles_migrate_by_kind(url: str) -> None:
    schema_version.upgrade(url, "0006_search_speed")
    now = "'2026-06-15 01:00:00+00:00'"
    organisation = (
        "INSERT INTO organisation (id, kind, name, contact_email, contact_phone, address, website, is_sme, active, created_at) "
        "VALUES ({id}, '{kind}', '{kind} {id}', '', '', '', '', false, true, " + now + ")"
    )
    user = (
        "INSERT INTO user_account (id, email, name, password_hash, organisation_id, role, active, password_changed_at, created_at) "
        "VALUES ({id}, 'u{id}@example.kr', 'U{id}', 'x', {org}, '{role}', true, " + now + ", " + now + ")"
    )
    _execute(
        url,
        *(organisation.format(id=n, kind=kind) for n, kind in ((1, "agency"), (2, "provider"), (3, "committee"))),
        *(
            user.format(id=n, org=org, role=role)
            for n, org, role in (
                (1, 1, "member"),
                (2, 1, "admin"),
                (3, 2, "member"),
                (4, 2, "admin"),
                (5, 3, "member"),
                (6, 3, "admin"),
            )
        ),
        "INSERT INTO invitation (organisation_id, email, role, token_hash, expires_at, created_at) "
        f"VALUES (1, 'new@example.kr', 'member', 'h', {now}, {now})",
    )
    schema_version.upgrade(url)
    users = _execute(url, "SELECT id, role, signing_limit FROM user_account ORDER BY id")
    assert users == [
        (1, "buyer", 0),
        (2, "admin", 0),
        (3, "signer", 0),
        (4, "admin", 0),
        (5, "member", 0),
        (6, "admin", 0),
    ]
    assert _execute(url, "SELECT role FROM invitation") == [("buyer",)]


def test_sqlite_upgrade_makes_agency_members_buyers_and_provider_members_signers(sqlite_empty: str) -> None:
    _assert_roles_migrate_by_kind(sqlite_empty)


@needs_postgres
def test_postgres_upgrade_makes_agency_members_buyers_and_provider_members_signers(postgres_empty: str) -> None:
    _assert_roles_migrate_by_kind(postgres_empty)


# --- 0010: money in BIGINT columns ---------------------------------------------------------------------------


def _assert_money_widens_keeping_amounts(url: str) -> None:
    schema_version.upgrade(url, "0009_signing_keys")
    now = "'2026-06-15 01:00:00+00:00'"
    _execute(
        url,
        "INSERT INTO organisation (id, kind, name, contact_email, contact_phone, address, website, is_sme, active, created_at) "
        f"VALUES (1, 'agency', 'Agency', '', '', '', '', false, true, {now})",
        f"INSERT INTO contracts_budget (agency_id, year, amount, updated_at) VALUES (1, 2027, 2147483647, {now})",
    )
    schema_version.upgrade(url)
    assert _execute(url, "SELECT amount FROM contracts_budget") == [(2_147_483_647,)]
    assert _execute(url, "UPDATE contracts_budget SET amount = 5000000000", "SELECT amount FROM contracts_budget") == [
        (5_000_000_000,)
    ]


def test_sqlite_money_columns_widen_keeping_amounts_and_the_full_text_triggers(sqlite_empty: str) -> None:
    _assert_money_widens_keeping_amounts(sqlite_empty)
    triggers = _execute(
        sqlite_empty,
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'catalog_listed_service' ORDER BY name",
    )
    assert triggers == [
        ("catalog_search_after_delete",),
        ("catalog_search_after_insert",),
        ("catalog_search_after_update",),
    ]


@needs_postgres
def test_postgres_money_columns_widen_keeping_amounts_and_the_search_table_price(postgres_empty: str) -> None:
    _assert_money_widens_keeping_amounts(postgres_empty)
    price = _execute(
        postgres_empty,
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'catalog_search_rows' AND column_name = 'min_price'",
    )
    assert price == [("bigint",)]
