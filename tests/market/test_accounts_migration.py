"""The accounts-trust migration counts every user that exists already as confirmed, and gives every API token that
exists already 90 days from the migration."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from market import clock, schema_version
from market.database import create_engine
from tests.market.test_migrations import POSTGRES_URL, postgres_empty, sqlite_empty  # noqa: F401  (fixtures)

REVISION = "0007_accounts_trust"
CREATED = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


def _before() -> str:
    script = ScriptDirectory.from_config(schema_version.alembic_config("sqlite://"))
    return script.get_revision(REVISION).down_revision  # type: ignore[return-value, union-attr]


async def _seed(url: str) -> None:
    engine = create_engine(url, pooled=False)
    stamp = CREATED if url.startswith("postgresql") else CREATED.replace(tzinfo=None)
    async with engine.begin() as connection:
        await connection.execute(
            sa.text(
                "INSERT INTO organisation (id, kind, name, contact_email, contact_phone, address, website, is_sme, active, created_at) "
                "VALUES (1, 'agency', 'Seoul City', '', '', '', '', false, true, :at)"
            ),
            {"at": stamp},
        )
        await connection.execute(
            sa.text(
                "INSERT INTO user_account (id, email, name, password_hash, organisation_id, role, active, password_changed_at, created_at) "
                "VALUES (1, 'park@seoul.go.kr', 'Park', 'x', 1, 'member', true, :at, :at)"
            ),
            {"at": stamp},
        )
        await connection.execute(
            sa.text(
                "INSERT INTO api_token (id, user_id, name, token_hash, prefix, created_at) VALUES (1, 1, 'erp', 'hash', 'mkt_abcd', :at)"
            ),
            {"at": stamp},
        )
    await engine.dispose()


async def _read(url: str) -> tuple[object, object]:
    engine = create_engine(url, pooled=False)
    async with engine.connect() as connection:
        verified = (await connection.execute(sa.text("SELECT email_verified_at FROM user_account"))).scalar_one()
        expires = (await connection.execute(sa.text("SELECT expires_at FROM api_token"))).scalar_one()
    await engine.dispose()
    return verified, expires


def _aware(value: object) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _check(url: str) -> None:
    schema_version.upgrade(url, _before())
    asyncio.run(_seed(url))
    schema_version.upgrade(url, REVISION)
    verified, expires = asyncio.run(_read(url))
    assert _aware(verified) == CREATED
    assert abs(_aware(expires) - (clock.now() + timedelta(days=90))) < timedelta(minutes=5)


def test_sqlite_existing_users_are_confirmed_and_tokens_get_90_days(sqlite_empty: str) -> None:
    _check(sqlite_empty)


@pytest.mark.skipif(not POSTGRES_URL, reason="MARKET_TEST_DATABASE_URL is not set")
def test_postgres_existing_users_are_confirmed_and_tokens_get_90_days(postgres_empty: str) -> None:
    _check(postgres_empty)
