"""The API answers 429 with Retry-After past the limit per token and minute; with Redis the count is shared."""

from __future__ import annotations

import pytest
import redis
from litestar.testing import AsyncTestClient

from market.app import create_app
from market.settings import Settings
from tests.helpers import make_organisation, make_user
from tests.market.test_tokens import bearer, make_token

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


async def token(sessions) -> str:
    organisation = await make_organisation(sessions, "agency")
    user = await make_user(sessions, organisation)
    return (await make_token(sessions, user, organisation))[1]


async def test_past_the_limit_the_api_answers_429_with_retry_after_and_pages_are_not_limited(
    settings: Settings, sessions
) -> None:
    raw = await token(sessions)
    async with AsyncTestClient(app=create_app(settings.with_(api_requests_per_minute=3))) as client:
        answers = [(await client.get("/api/me", headers=bearer(raw))).status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429]
        limited = await client.get("/api/me", headers=bearer(raw))
        assert limited.status_code == 429 and limited.headers["content-type"].startswith("application/problem+json")
        assert 0 < int(limited.headers["retry-after"]) <= 60
        other = await token(sessions)  # the limit is per token
        assert (await client.get("/api/me", headers=bearer(other))).status_code == 200
        assert [(await client.get("/login")).status_code for _ in range(5)] == [200] * 5


@pytest.mark.skipif(not redis_answers(), reason="no Redis at 127.0.0.1:6379")
async def test_with_redis_two_app_processes_share_one_count(settings: Settings, sessions) -> None:
    raw = await token(sessions)
    shared = settings.with_(api_requests_per_minute=4, redis_url=REDIS_URL)
    first, second = create_app(shared), create_app(shared)
    async with AsyncTestClient(app=first) as one, AsyncTestClient(app=second) as two:
        answers = [
            (await client.get("/api/me", headers=bearer(raw))).status_code for client in (one, two, one, two, one)
        ]
    assert answers == [200, 200, 200, 200, 429]
