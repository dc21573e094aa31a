"""The request's language: the switch's cookie, the user's choice, the browser's, the default."""

from __future__ import annotations

from litestar.types import ASGIApp, Receive, Scope, Send

from market import i18n
from market.scopes import plain
from market.settings import Settings

LANGUAGE_CHOSEN = "market_language"  # scope key: the middleware has set the request's language


def ensure_language(scope: Scope) -> None:
    """Errors raised before routing (unknown path, wrong method) never pass the middleware: choose here."""
    if LANGUAGE_CHOSEN not in scope:
        choose_language(scope)


def choose_language(scope: Scope) -> None:
    headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
    cookies = dict(part.strip().split("=", 1) for part in headers.get("cookie", "").split(";") if "=" in part)
    user = scope.get("user")
    settings: Settings = scope["litestar_app"].state["settings"]
    language = i18n.choose_language(
        cookies.get(settings.cookie(i18n.LANGUAGE_COOKIE)),
        getattr(user, "language", None),
        headers.get("accept-language"),
        settings.default_language,
    )
    i18n.current_language.set(language)
    plain(scope)[LANGUAGE_CHOSEN] = language


class LanguageMiddleware:
    """Sets the request's language: the switch's cookie, the user's choice, the browser's, the default."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            choose_language(scope)
        await self.app(scope, receive, send)
