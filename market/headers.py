"""The headers every answer carries, set in one place just before it is sent (a `before_send` hook).

- `Content-Security-Policy`: scripts, styles, images, fonts and frames from this site only, no inline script
  and no inline style; no page may be framed (`frame-ancestors 'none'`). A handler that sets its own policy
  keeps it: the stored contract document is shown sandboxed in the signing page's frame (`frame-ancestors 'self'`).
- `X-Content-Type-Options: nosniff` and `Referrer-Policy: same-origin` everywhere.
- `Cache-Control: no-store` on every answer to a signed-in user (a page by session, the API by token): a shared
  or back-button cache keeps nothing of it.
- With an https `MARKET_BASE_URL`: `Strict-Transport-Security`, and every cookie set is Secure (our own are also
  named `__Host-...`, see `Settings.cookie`).
"""

from __future__ import annotations

from litestar.types import Message, Scope

from market.auth import SESSION_COOKIE
from market.settings import Settings

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)
REFERRER_POLICY = "same-origin"
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"


def _settings(scope: Scope) -> Settings:
    return scope["litestar_app"].state["settings"]


async def security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    settings = _settings(scope)
    headers = list(message.get("headers") or [])
    present = {name.lower() for name, _value in headers}

    def add(name: bytes, value: str) -> None:
        if name not in present:
            headers.append((name, value.encode("latin-1")))

    add(b"content-security-policy", CONTENT_SECURITY_POLICY)
    add(b"x-content-type-options", "nosniff")
    add(b"referrer-policy", REFERRER_POLICY)
    if _signed_in(scope, settings):
        headers = [(name, value) for name, value in headers if name.lower() not in (b"cache-control", b"expires")]
        headers.append((b"cache-control", b"no-store"))
    if settings.secure_cookies:
        add(b"strict-transport-security", STRICT_TRANSPORT_SECURITY)
        headers = [(name, _secure(value) if name.lower() == b"set-cookie" else value) for name, value in headers]
    message["headers"] = headers


def _signed_in(scope: Scope, settings: Settings) -> bool:
    """A signed-in user asks (a session on pages, a token on the API); also before authentication ran (an unknown
    address), when the request carries a session cookie or a token. Static files are the same for everyone."""
    if scope.get("user") is not None:
        return True
    if scope.get("path", "").startswith("/static/"):
        return False
    session_cookie = settings.cookie(SESSION_COOKIE).encode() + b"="
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return True
        if name == b"cookie" and any(part.strip().startswith(session_cookie) for part in value.split(b";")):
            return True
    return False


def _secure(set_cookie: bytes) -> bytes:
    attributes = {part.strip().split(b"=", 1)[0].lower() for part in set_cookie.split(b";")[1:]}
    return set_cookie if b"secure" in attributes else set_cookie + b"; Secure"
