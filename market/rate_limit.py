"""The API's rate limit per caller and minute."""

from __future__ import annotations

import hashlib

from litestar import Request
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore

from market.auth import client_ip
from market.settings import Settings


def _api_caller(request: Request) -> str:
    """Whom the limit counts: the API token (by its hash), else the client's address."""
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return "token:" + hashlib.sha256(authorization[7:].strip().encode()).hexdigest()[:32]
    return "address:" + (client_ip(request) or "unknown")


async def _is_api(request: Request) -> bool:
    # async on purpose: the framework runs a plain function given here in a worker thread, on every request
    return request.url.path.startswith("/api/")


def rate_limit(settings: Settings) -> tuple[RateLimitConfig, Store]:
    """The API's limit per caller and minute, counted in Redis when configured (shared by every process),
    else in this process's memory."""
    store: Store = (
        RedisStore.with_client(url=settings.redis_url, namespace="market") if settings.redis_url else MemoryStore()
    )
    config = RateLimitConfig(
        rate_limit=("minute", settings.api_requests_per_minute),
        identifier_for_request=_api_caller,
        check_throttle_handler=_is_api,
        store="rate_limit",
    )
    return config, store
