"""The database connection dropping in the middle of a request: a quick 503, nothing half-written, and the
next request works (PostgreSQL: the test terminates the request's server process)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
import sqlalchemy as sa
from litestar import Litestar, post
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from market.app import create_app
from market.models import Organisation
from market.settings import Settings
from market.web import DbSession
from tests.helpers import count

pytestmark = pytest.mark.skipif(
    not os.environ.get("MARKET_TEST_DATABASE_URL"), reason="terminating a server process needs PostgreSQL"
)


@post("/api/test-slow-write")
async def slow_write(db_session: DbSession) -> dict[str, str]:
    db_session.add(Organisation(kind="agency", name="Half written", registration_number="8888888"))
    await db_session.flush()
    await db_session.execute(sa.text("SELECT pg_sleep(10) /* slow-write */"))
    return {"status": "saved"}


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(settings, extra_routes=[slow_write])) as test_client:
        yield test_client


async def _terminate_the_sleeper(url: str) -> None:
    """Wait for the request's statement to be running, then end its server process as a crash would."""
    connection = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        for _ in range(100):
            pids = await connection.fetch(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE '%slow-write%' AND pid <> pg_backend_pid()"
            )
            if pids:
                await connection.execute("SELECT pg_terminate_backend($1)", pids[0]["pid"])
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the slow request never reached the database")
    finally:
        await connection.close()


async def test_a_connection_dropped_mid_request_answers_503_quickly_and_writes_nothing(
    client, settings: Settings, sessions
) -> None:
    # The test client holds this event loop while it serves a request: the terminator runs in its own thread.
    terminator = threading.Thread(
        target=asyncio.run, args=(_terminate_the_sleeper(settings.database_url),), daemon=True
    )
    started = time.monotonic()
    terminator.start()
    response = await client.post("/api/test-slow-write", json={})
    terminator.join(timeout=10)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] and time.monotonic() - started < 5  # not the 10 s the statement would take
    assert await count(sessions, Organisation, Organisation.name == "Half written") == 0
    assert (await client.get("/healthz")).status_code == 200  # the pool replaced the dead connection
