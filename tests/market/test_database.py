"""The two databases behave alike: SQLite is configured for concurrent use, times come back as aware UTC."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from market.database import SQLITE_BUSY_TIMEOUT_MS, WriteWhileReading, create_engine, lock, reading, utcnow
from market.models import ApiToken, LoginFailure, LoginSession, OutboxMessage, User
from tests.helpers import make_organisation, make_user
from tests.market.test_tokens import bearer, make_token

SEOUL = ZoneInfo("Asia/Seoul")


# --- SQLite's connection settings -----------------------------------------------------------------------


@pytest.mark.sqlite_only
@pytest.mark.parametrize("pooled", [True, False], ids=["pooled", "unpooled"])
async def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(database_url: str, pooled: bool) -> None:
    engine = create_engine(database_url, pooled=pooled)
    try:
        async with engine.connect() as connection:
            journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
            foreign_keys = (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar()
            busy_timeout = (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar()
    finally:
        await engine.dispose()
    assert str(journal).lower() == "wal"
    assert foreign_keys == 1
    assert busy_timeout == SQLITE_BUSY_TIMEOUT_MS >= 5000


async def test_foreign_keys_are_enforced(sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            session.add(User(email="orphan@example.kr", name="Orphan", password_hash="x", organisation_id=999_999))


# --- concurrent writers ----------------------------------------------------------------------------------


async def _write(sessions: async_sessionmaker[AsyncSession], n: int) -> None:
    """Read, pause, then write: the pattern that fails with 'database is locked' when SQLite takes the lock late."""
    async with sessions() as session, session.begin():
        seen = await session.scalar(sa.select(sa.func.count()).select_from(LoginFailure))
        await asyncio.sleep(0.01)
        session.add(LoginFailure(account_key=f"writer{n}@example.kr", ip=f"10.0.0.{n}"))
        assert seen is not None


async def test_ten_concurrent_writers_on_one_engine_all_commit(database_url: str, sessions) -> None:
    engine = create_engine(database_url)
    try:
        shared = async_sessionmaker(engine, expire_on_commit=False)
        await asyncio.gather(*(_write(shared, n) for n in range(10)))
    finally:
        await engine.dispose()
    async with sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)) == 10


async def test_ten_concurrent_writers_on_their_own_engines_all_commit(database_url: str, sessions) -> None:
    """As ten processes would: separate connections opened at the same moment."""
    engines = [create_engine(database_url, pooled=False) for _ in range(10)]
    try:
        await asyncio.gather(
            *(_write(async_sessionmaker(engine, expire_on_commit=False), n) for n, engine in enumerate(engines))
        )
    finally:
        for engine in engines:
            await engine.dispose()
    async with sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)) == 10


async def test_lock_serialises_transactions_that_take_it(database_url: str) -> None:
    """What `lock` guards is done by one transaction at a time, on both databases."""
    engines = [create_engine(database_url, pooled=False) for _ in range(2)]
    spans: list[tuple[float, float]] = []

    async def guarded(sessions: async_sessionmaker[AsyncSession]) -> None:
        async with sessions() as session, session.begin():
            await lock(session, 4242)
            started = time.monotonic()
            await asyncio.sleep(0.3)
            session.add(LoginFailure(account_key="locked@example.kr", ip="10.0.0.1"))
            await session.flush()
            spans.append((started, time.monotonic()))

    try:
        await asyncio.gather(*(guarded(async_sessionmaker(engine, expire_on_commit=False)) for engine in engines))
    finally:
        for engine in engines:
            await engine.dispose()
    (_first_start, first_end), (second_start, _second_end) = sorted(spans)
    assert second_start >= first_end  # the second began its guarded work only after the first had finished


# --- readers beside a writer -----------------------------------------------------------------------------
# The test client answers one request at a time on the test's own loop; these tests need requests that truly
# overlap a write transaction, so they send them from threads through a client with its own loop.


@contextmanager
def threaded_client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app=app, base_url="http://testserver.local") as client:
        yield client


@pytest.mark.sqlite_only
async def test_eight_concurrent_searches_answer_while_a_write_transaction_is_open(app, settings, sessions) -> None:
    """GET requests begin deferred: they read beside the writer instead of queueing for its lock."""
    with threaded_client(app) as client:
        async with sessions() as session, session.begin():
            session.add(LoginFailure(account_key="writer@example.kr", ip="10.0.0.1"))
            await session.flush()  # the write lock is held from here to the end of the block
            searches = asyncio.gather(
                *(asyncio.to_thread(client.get, "/services", params={"q": "cloud"}) for _ in range(8))
            )
            # Well under the busy timeout: queued behind this writer, they would still be waiting.
            answers = await asyncio.wait_for(searches, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000 / 2)
    assert [answer.status_code for answer in answers] == [200] * 8


@pytest.mark.sqlite_only
async def test_a_read_request_that_writes_queues_behind_the_writer_and_succeeds(app, settings, sessions) -> None:
    """A token's use is recorded by a GET; SQLite cannot upgrade a read transaction beside a writer, so the
    request is run again as a write: it waits for the lock and answers normally."""
    organisation = await make_organisation(sessions, "provider")
    _, raw = await make_token(sessions, await make_user(sessions, organisation), organisation)
    with threaded_client(app) as client:
        async with sessions() as session, session.begin():
            session.add(LoginFailure(account_key="writer@example.kr", ip="10.0.0.1"))
            await session.flush()
            request = asyncio.ensure_future(asyncio.to_thread(client.get, "/api/me", headers=bearer(raw)))
            await asyncio.sleep(0.5)
            assert not request.done()  # waiting for the lock, not failed
        answer = await request
    assert answer.status_code == 200, answer.text
    async with sessions() as session:
        assert (await session.scalar(sa.select(ApiToken))).last_used_at is not None  # type: ignore[union-attr]


async def test_a_page_read_after_a_quiet_spell_records_the_sessions_activity(web, sessions) -> None:
    """The one write most GET requests may make: it is kept, whichever way the request's transaction began."""
    await web.login_as("agency")
    quiet_since = utcnow() - timedelta(minutes=5)
    async with sessions() as session, session.begin():
        await session.execute(sa.update(LoginSession).values(last_seen_at=quiet_since))
    home = await web.client.get("/")
    assert home.status_code == 200
    async with sessions() as session:
        assert (await session.scalar(sa.select(LoginSession.last_seen_at))) > quiet_since


@pytest.mark.sqlite_only
async def test_a_write_begun_for_reading_is_refused_and_writes_nothing(database_url: str, sessions) -> None:
    engine = create_engine(database_url, pooled=False)
    try:
        with reading() as attempt, pytest.raises(WriteWhileReading):
            async with async_sessionmaker(engine)() as session, session.begin():
                await session.scalar(sa.select(sa.func.count()).select_from(LoginFailure))
                session.add(LoginFailure(account_key="reader@example.kr", ip="10.0.0.1"))
        assert attempt.refused_write
    finally:
        await engine.dispose()
    async with sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)) == 0


# --- UTC times -------------------------------------------------------------------------------------------


async def _store_time(sessions: async_sessionmaker[AsyncSession], value: datetime, key: str) -> int:
    async with sessions() as session, session.begin():
        message = OutboxMessage(kind="test", payload="{}", idempotency_key=key, next_attempt_at=value)
        session.add(message)
        await session.flush()
        return message.id  # type: ignore[return-value]


async def test_a_time_given_in_seoul_comes_back_as_the_same_instant_in_utc(sessions) -> None:
    seoul_noon = datetime(2026, 3, 2, 12, 0, 0, 123456, tzinfo=SEOUL)
    message_id = await _store_time(sessions, seoul_noon, "seoul-noon")
    async with sessions() as session:
        stored = (await session.get(OutboxMessage, message_id)).next_attempt_at  # type: ignore[union-attr]
    assert stored == seoul_noon
    assert stored.tzinfo is UTC or stored.utcoffset() == timedelta(0)
    assert (stored.hour, stored.microsecond) == (3, 123456)


async def test_utc_times_come_back_aware_from_a_plain_select(sessions) -> None:
    now = utcnow()
    await _store_time(sessions, now, "now")
    async with sessions() as session:
        values = (await session.scalars(sa.select(OutboxMessage.created_at))).all()
        values += (await session.scalars(sa.select(OutboxMessage.next_attempt_at))).all()
    assert values and all(value.utcoffset() == timedelta(0) for value in values)
    assert now in values


async def test_times_compare_as_instants_whatever_the_zone_of_the_parameter(sessions) -> None:
    await _store_time(sessions, datetime(2026, 3, 2, 3, 0, tzinfo=UTC), "three-utc")
    just_before_in_seoul = datetime(2026, 3, 2, 11, 59, 59, tzinfo=SEOUL)  # 02:59:59 UTC
    just_after_in_seoul = datetime(2026, 3, 2, 12, 0, 1, tzinfo=SEOUL)
    async with sessions() as session:
        later = await session.scalar(
            sa.select(sa.func.count()).where(OutboxMessage.next_attempt_at > just_before_in_seoul)
        )
        earlier = await session.scalar(
            sa.select(sa.func.count()).where(OutboxMessage.next_attempt_at < just_after_in_seoul)
        )
    assert (later, earlier) == (1, 1)


async def test_a_naive_time_is_refused(sessions) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        await _store_time(sessions, datetime(2026, 3, 2, 12, 0), "naive")
