"""The request's transaction: committed just before a successful answer starts, rolled back before any other."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from advanced_alchemy.extensions.litestar._utils import delete_aa_scope_state, get_aa_scope_state
from advanced_alchemy.extensions.litestar.plugins.init.config.common import SESSION_TERMINUS_ASGI_EVENTS
from litestar.types import Message, Scope
from sqlalchemy.ext.asyncio import AsyncSession

from market import audit, i18n
from market.database import WriteWhileReading
from market.error_handlers import JSON_PATHS, status_title
from market.scopes import plain
from market.state import sessions_of
from market.web import PROBLEM_JSON

log = logging.getLogger("market")

COMMIT_FAILED = "market.commit_failed"


def committing(session_scope_key: str) -> Callable[[Message, Scope], Awaitable[None]]:
    """The before-send hook of the request's session (kept under `session_scope_key`)."""

    async def hook(message: Message, scope: Scope) -> None:
        await commit_before_answering(message, scope, session_scope_key)

    return hook


async def commit_before_answering(message: Message, scope: Scope, session_scope_key: str) -> None:
    """Commit when the answer is a success (2xx, 3xx) and roll back otherwise, just before it starts.

    Unlike advanced-alchemy's own handler, a failing COMMIT is not swallowed: the client is told 503 (try
    again) instead of a success that was not saved. A write refused to a reading request is left to
    `ReadingMiddleware`, which runs the request again as a write."""
    session: AsyncSession | None = get_aa_scope_state(scope, session_scope_key)
    try:
        await _answer_with_session(message, scope, session)
    finally:
        if session is not None and message["type"] in SESSION_TERMINUS_ASGI_EVENTS:
            with contextlib.suppress(Exception):
                await session.close()
            delete_aa_scope_state(scope, session_scope_key)
    if message["type"] == "http.response.start" and audit.PENDING_SECURITY_EVENTS in scope:
        # the request's own transaction has ended (rolled back, as its answer is an error): now in one of their own
        try:
            await audit.write_noted_security_events(scope, sessions_of(scope["litestar_app"]))
        except Exception as exc:  # the refusal is answered all the same; the log says what was not recorded
            log.error("security event not recorded on %s %s: %s", scope.get("method"), scope.get("path"), exc)
    failed = plain(scope).get(COMMIT_FAILED)
    if message["type"] == "http.response.body" and failed:
        plain(message).update(body=failed, more_body=False)


async def _answer_with_session(message: Message, scope: Scope, session: AsyncSession | None) -> None:
    if session is not None and message["type"] == "http.response.start":
        if 200 <= message["status"] < 400:
            try:
                await session.commit()
            except Exception as exc:  # whatever failed, the change is not saved: say so
                with contextlib.suppress(Exception):
                    await session.rollback()
                if not _caused_by(exc, WriteWhileReading):
                    log.error("commit failed on %s %s: %s", scope.get("method"), scope.get("path"), exc)
                    _answer_unavailable(message, scope)
        else:
            await session.rollback()


def _caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    while exc is not None:
        if isinstance(exc, kind):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _answer_unavailable(message: Message, scope: Scope) -> None:
    """Turn the success about to be sent into 503 with a short body in the language of the request."""
    detail = i18n._("The change could not be saved. Nothing was changed; try again shortly.")
    path = scope.get("path", "")
    if path.startswith(JSON_PATHS):  # as documented for every /api operation: problem JSON
        problem = {"type": "about:blank", "title": status_title(503), "status": 503, "detail": detail, "instance": path}
        body, media_type = json.dumps(problem, ensure_ascii=False).encode(), PROBLEM_JSON.encode()
    else:
        body, media_type = detail.encode(), b"text/plain; charset=utf-8"
    start = plain(message)
    kept = [
        (name, value)
        for name, value in start.get("headers", [])
        if name.lower() not in {b"content-length", b"content-type", b"location"}
    ]
    start["status"] = 503
    start["headers"] = [
        *kept,
        (b"content-type", media_type),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"5"),
    ]
    plain(scope)[COMMIT_FAILED] = body
