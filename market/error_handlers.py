"""Every error's answer: an HTML page or RFC 9457 problem JSON, chosen by the request's path and `Accept`."""

from __future__ import annotations

import hmac
import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, ValidationException
from litestar.middleware.csrf import CSRF_SECRET_LENGTH, generate_csrf_hash, generate_csrf_token
from litestar.response import Redirect, Template
from litestar.types import Empty, ExceptionHandlersMap, Scope
from litestar.utils.scope.state import ScopeState
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError

from market import audit, i18n
from market.auth import SystemActor
from market.database import WriteWhileReading
from market.errors import DomainError, NotAuthenticated, Refused
from market.forwarded import client_address
from market.language import ensure_language

log = logging.getLogger("market")

JSON_PATHS = ("/api", "/webhooks", "/healthz")  # answered in JSON whatever the client accepts


def wants_json(request: Request) -> bool:
    path = request.url.path
    if path.startswith(JSON_PATHS):
        return True
    # The client's preference by quality; a browser's */* and an absent header get the page.
    best = request.accept.best_match(["text/html", "application/problem+json", "application/json"], default="text/html")
    return best != "text/html"


def problem_response(
    request: Request, status: int, title: str, detail: str, errors: Any = None, headers: dict[str, str] | None = None
) -> Response:
    if wants_json(request):
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": request.url.path,
        }
        if errors:
            body["errors"] = errors
        return Response(body, status_code=status, media_type="application/problem+json", headers=headers)
    return Template(
        "errors/error.html",
        context={"status": status, "title": title, "detail": detail, "errors": errors or {}, "flashes": []},
        status_code=status,
        headers=headers,
        cookies=_csrf_for_error_page(request),
    )


def _csrf_for_error_page(request: Request) -> list[Cookie]:
    """The page's forms (language, sign out) need a CSRF token even when the error came before the CSRF
    middleware ran (unknown path, wrong method) or from it (a refused token): reuse a valid cookie, or issue one."""
    state = ScopeState.from_scope(request.scope)
    config = request.app.csrf_config
    if config is None or state.csrf_token is not Empty:
        return []
    cookie = request.cookies.get(config.cookie_name, "")
    signed = len(cookie) > CSRF_SECRET_LENGTH and hmac.compare_digest(
        cookie[CSRF_SECRET_LENGTH:], generate_csrf_hash(cookie[:CSRF_SECRET_LENGTH], config.secret)
    )
    if signed:
        state.csrf_token = cookie
        return []
    state.csrf_token = generate_csrf_token(config.secret)
    return [
        Cookie(
            key=config.cookie_name,
            value=state.csrf_token,
            path=config.cookie_path,
            secure=config.cookie_secure,
            httponly=config.cookie_httponly,
            samesite=config.cookie_samesite,
            domain=config.cookie_domain,
        )
    ]


def _to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/login?next={quote(target)}", status_code=303)


def on_domain_error(request: Request, exc: DomainError) -> Response:
    ensure_language(request.scope)
    if isinstance(exc, Refused):
        _note_refusal(request.scope, "security.refused", exc.status_code)
    if isinstance(exc, NotAuthenticated) and not wants_json(request):
        return _to_login(request)
    title = i18n._(exc.title)
    return problem_response(request, exc.status_code, title, exc.detail, exc.errors, exc.headers)


def on_http_error(request: Request, exc: HTTPException) -> Response:
    ensure_language(request.scope)
    status = exc.status_code
    if status >= 500:  # the framework's own detail may describe our internals
        return on_unexpected(request, exc)
    if status == 401 and not wants_json(request):
        return _to_login(request)
    errors = None
    headers = dict(exc.headers or {})
    if status == 429 and "Retry-After" not in headers:  # the API's limit says when the window resets
        headers["Retry-After"] = headers.get("RateLimit-Reset", "60")
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        errors = {
            str(item.get("key") or item.get("source") or "body"): str(item.get("message"))
            for item in exc.extra
            if isinstance(item, dict)
        }
    detail = exc.detail
    if status == 403 and "CSRF" in detail:
        _note_refusal(request.scope, "security.csrf_refused", status)
        detail = i18n._("The form had expired or was sent from elsewhere. Reload the page and try again.")
    elif detail == _phrase(status):  # the framework's bare status phrase: say what it means instead
        detail = explanation(status)
    return problem_response(request, status, status_title(status), detail, errors, headers)


def _note_refusal(scope: Scope, action: str, status: int) -> None:
    """A security event for this refused request, written once its transaction has ended (`commit_before_answering`):
    the caller (when signed in) and address, the route's pattern and its numeric ids (never a path's secret token)."""
    user = scope.get("user")
    actor = user if user is not None else SystemActor(email="", ip=client_address(scope))
    route = f"{scope.get('method', '')} {scope.get('path_template') or scope.get('path', '')}"
    ids = {name: value for name, value in (scope.get("path_params") or {}).items() if isinstance(value, int)}
    audit.note_security_event(scope, actor, action, "route", route, {"status": status, **({"ids": ids} if ids else {})})


def on_database_unavailable(request: Request, exc: Exception) -> Response:
    ensure_language(request.scope)
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(
        request,
        503,
        status_title(503),
        i18n._("The database is not reachable just now. Try again shortly."),
        headers={"Retry-After": "5"},
    )


def on_write_while_reading(request: Request, exc: WriteWhileReading) -> Response:
    """Normally never seen: `ReadingMiddleware` drops this answer and runs the request again as a write."""
    ensure_language(request.scope)
    log.info("%s %s wrote while reading (%s); running it again as a write", request.method, request.url.path, exc)
    return problem_response(
        request,
        503,
        status_title(503),
        i18n._("The database is not reachable just now. Try again shortly."),
        headers={"Retry-After": "1"},
    )


def on_unexpected(request: Request, exc: Exception) -> Response:
    ensure_language(request.scope)
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        request, 500, status_title(500), i18n._("Something went wrong on our side. The error was logged.")
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def status_title(status: int) -> str:
    titles = {
        400: i18n._("Bad request"),
        401: i18n._("Not signed in"),
        403: i18n._("Forbidden"),
        404: i18n._("Not found"),
        405: i18n._("Method not allowed"),
        409: i18n._("Conflict"),
        410: i18n._("Gone"),
        413: i18n._("Request too large"),
        415: i18n._("Unsupported media type"),
        422: i18n._("Invalid input"),
        429: i18n._("Too many requests"),
        500: i18n._("Server error"),
        503: i18n._("Service unavailable"),
    }
    return titles.get(status) or i18n._("Error")


def explanation(status: int) -> str:
    explanations = {
        400: i18n._("The request could not be understood."),
        403: i18n._("You may not do this."),
        404: i18n._("There is nothing at this address. Check it, or start again from the home page."),
        405: i18n._("This address does not accept that kind of request."),
        413: i18n._("The request is larger than this service accepts."),
        415: i18n._("The request's content type is not one this address accepts."),
    }
    return explanations.get(status) or _phrase(status)


def _is_data_error(exc: DBAPIError) -> bool:
    """A value the database refused (SQLSTATE class 22: out of range, a NUL in text), however the driver words it."""
    if isinstance(exc, DataError):
        return True
    cause = exc.orig
    while cause is not None:
        if str(getattr(cause, "sqlstate", "") or "").startswith("22"):
            return True
        cause = cause.__cause__
    return False


def on_database_error(request: Request, exc: DBAPIError) -> Response:
    if exc.connection_invalidated or isinstance(exc, OperationalError):
        return on_database_unavailable(request, exc)
    if _is_data_error(exc):
        # A value the service's own checks let through and the database cannot hold (a number beyond its column).
        ensure_language(request.scope)
        log.warning("data error on %s %s: %s", request.method, request.url.path, exc.orig)
        return problem_response(
            request, 422, status_title(422), i18n._("A value is too large or holds characters that cannot be stored.")
        )
    if isinstance(exc, IntegrityError):
        # A constraint caught what the service's own check could not see: a change made at the same moment.
        ensure_language(request.scope)
        log.warning("integrity error on %s %s: %s", request.method, request.url.path, exc.orig)
        return problem_response(
            request,
            409,
            status_title(409),
            i18n._("This conflicts with a change made at the same time. Reload and try again."),
        )
    return on_unexpected(request, exc)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    WriteWhileReading: on_write_while_reading,
    DomainError: on_domain_error,
    HTTPException: on_http_error,
    DBAPIError: on_database_error,
    Exception: on_unexpected,
}
