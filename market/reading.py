"""Reads beside writes: GET and HEAD run as reading transactions, and one that writes after all runs again as a write."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import CONNECTION_STATE_KEY, ScopeState
from sqlalchemy.ext.asyncio import AsyncSession

from market.database import WriteWhileReading, reading
from market.scopes import plain
from market.state import db_config_of

READING_METHODS = frozenset({"GET", "HEAD"})


class ReadingMiddleware:
    """GET and HEAD requests read, so their transactions begin under `database.reading`: on SQLite they run
    beside a writer instead of queueing for its lock. The rare one that writes after all (an API token's or a
    login session's last use) is stopped at its first write and run again from the start as a write request;
    nothing of the first run reaches the client. Every other method begins IMMEDIATE and queues."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] not in READING_METHODS:
            await self.app(scope, receive, send)
            return
        pristine = _copy_scope(scope)
        with reading() as attempt:
            sent_anything = False

            async def send_unless_rerun(message: Message) -> None:
                nonlocal sent_anything
                if (
                    message["type"] == "http.response.start"
                    and 200 <= message["status"] < 400
                    and not attempt.refused_write
                ):
                    await _flush_before_commit(scope)  # a change left for the commit must be refused now, not then
                if attempt.refused_write and not sent_anything:
                    return
                sent_anything = True
                await send(message)

            try:
                await self.app(scope, receive, send_unless_rerun)
            except WriteWhileReading:
                if sent_anything:
                    raise
        if not attempt.refused_write or sent_anything:
            return
        await _close_session(scope)
        # The same scope object, as it came in: the framework's send hooks (the commit) hold on to it.
        plain(scope).clear()
        plain(scope).update(pristine)
        await self.app(scope, receive, send)


def _copy_scope(scope: Scope) -> dict[str, Any]:
    """The scope as it came in, for a second run: per-request state is copied, not shared with the first."""
    fresh = dict(scope)
    state = dict(scope.get("state", {}))
    if isinstance(cached := state.get(CONNECTION_STATE_KEY), ScopeState):
        state[CONNECTION_STATE_KEY] = copy.copy(cached)
    fresh["state"] = state
    return fresh


def _session_in(scope: Scope) -> AsyncSession:
    app = scope["litestar_app"]
    return db_config_of(app).provide_session(app.state, scope)


async def _flush_before_commit(scope: Scope) -> None:
    session = _session_in(scope)
    if session.new or session.dirty or session.deleted:
        with contextlib.suppress(WriteWhileReading):
            await session.flush()


async def _close_session(scope: Scope) -> None:
    session = _session_in(scope)
    try:
        await session.rollback()
    finally:
        await session.close()
