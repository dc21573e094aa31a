"""The application factory: plugins, middleware, error rendering and every package's routes in one place."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from advanced_alchemy.extensions.litestar import AsyncSessionConfig, SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from advanced_alchemy.extensions.litestar._utils import delete_aa_scope_state, get_aa_scope_state
from advanced_alchemy.extensions.litestar.plugins.init.config.common import SESSION_TERMINUS_ASGI_EVENTS
from litestar import Litestar, Request, Response
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Cookie, State
from litestar.exceptions import HTTPException, ValidationException
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.middleware.csrf import CSRF_SECRET_LENGTH, generate_csrf_hash, generate_csrf_token
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.response import Redirect, Template
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, Empty, Message, Receive, Scope, Send
from litestar.utils.scope.state import CONNECTION_STATE_KEY, ScopeState
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import SQLModel

from market import audit, i18n, outbox, schema_version
from market.auth import AuthenticationMiddleware, SystemActor, client_ip
from market.database import WriteWhileReading, create_engine, reading
from market.errors import DomainError, Invalid, NotAuthenticated, NotFound, Refused
from market.forwarded import ForwardedMiddleware, client_address
from market.headers import security_headers
from market.schemas import ID_RANGE
from market.settings import Settings, configure
from market.templating import TEMPLATES_DIR, build_engine
from market.web import API_ERRORS, CONTROL_CHARACTERS, PROBLEM_JSON

log = logging.getLogger("market")

STATIC_DIR = TEMPLATES_DIR.parent / "market" / "static"


def settings_of(app: Litestar) -> Settings:
    return app.state["settings"]


def db_config_of(app: Litestar) -> SQLAlchemyAsyncConfig:
    return app.state["db_config"]


def sessions_of(app: Litestar) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(db_config_of(app).get_engine(), expire_on_commit=False)


# --- errors -------------------------------------------------------------------------------------

JSON_PATHS = ("/api", "/webhooks", "/healthz")  # answered in JSON whatever the client accepts


def wants_json(request: Request) -> bool:
    path = request.url.path
    if path.startswith(JSON_PATHS):
        return True
    # The client's preference by quality; a browser's */* and an absent header get the page.
    best = request.accept.best_match(["text/html", "application/problem+json", "application/json"], default="text/html")
    return best != "text/html"


def problem_response(request: Request, status: int, title: str, detail: str, errors: Any = None, headers: dict[str, str] | None = None) -> Response:
    if wants_json(request):
        body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail, "instance": request.url.path}
        if errors:
            body["errors"] = errors
        return Response(body, status_code=status, media_type="application/problem+json", headers=headers)
    return Template(  # type: ignore[return-value]
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
            key=config.cookie_name, value=state.csrf_token, path=config.cookie_path, secure=config.cookie_secure,
            httponly=config.cookie_httponly, samesite=config.cookie_samesite, domain=config.cookie_domain,
        )
    ]


def _to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/login?next={quote(target)}", status_code=303)  # type: ignore[return-value]


def on_domain_error(request: Request, exc: DomainError) -> Response:
    _ensure_language(request.scope)
    if isinstance(exc, Refused):
        _note_refusal(request.scope, "security.refused", exc.status_code)
    if isinstance(exc, NotAuthenticated) and not wants_json(request):
        return _to_login(request)
    title = i18n._(exc.title)
    return problem_response(request, exc.status_code, title, exc.detail, exc.errors, exc.headers)


def on_http_error(request: Request, exc: HTTPException) -> Response:
    _ensure_language(request.scope)
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
        errors = {str(item.get("key") or item.get("source") or "body"): str(item.get("message")) for item in exc.extra if isinstance(item, dict)}
    detail = exc.detail
    if status == 403 and "CSRF" in detail:
        _note_refusal(request.scope, "security.csrf_refused", status)
        detail = i18n._("The form had expired or was sent from elsewhere. Reload the page and try again.")
    elif detail == _phrase(status):  # the framework's bare status phrase: say what it means instead
        detail = _explanation(status)
    return problem_response(request, status, _title(status), detail, errors, headers)


def _note_refusal(scope: Scope, action: str, status: int) -> None:
    """A security event for this refused request, written once its transaction has ended (`commit_before_answering`):
    the caller (when signed in) and address, the route's pattern and its numeric ids (never a path's secret token)."""
    user = scope.get("user")
    actor = user if user is not None else SystemActor(email="", ip=client_address(scope))
    route = f"{scope.get('method', '')} {scope.get('path_template') or scope.get('path', '')}"
    ids = {name: value for name, value in (scope.get("path_params") or {}).items() if isinstance(value, int)}
    audit.note_security_event(scope, actor, action, "route", route, {"status": status, **({"ids": ids} if ids else {})})


def on_database_unavailable(request: Request, exc: Exception) -> Response:
    _ensure_language(request.scope)
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(request, 503, _title(503), i18n._("The database is not reachable just now. Try again shortly."), headers={"Retry-After": "5"})


def on_write_while_reading(request: Request, exc: WriteWhileReading) -> Response:
    """Normally never seen: `ReadingMiddleware` drops this answer and runs the request again as a write."""
    _ensure_language(request.scope)
    log.info("%s %s wrote while reading (%s); running it again as a write", request.method, request.url.path, exc)
    return problem_response(request, 503, _title(503), i18n._("The database is not reachable just now. Try again shortly."), headers={"Retry-After": "1"})


def on_unexpected(request: Request, exc: Exception) -> Response:
    _ensure_language(request.scope)
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, 500, _title(500), i18n._("Something went wrong on our side. The error was logged."))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _title(status: int) -> str:
    titles = {
        400: i18n._("Bad request"), 401: i18n._("Not signed in"), 403: i18n._("Forbidden"), 404: i18n._("Not found"),
        405: i18n._("Method not allowed"), 409: i18n._("Conflict"), 410: i18n._("Gone"), 413: i18n._("Request too large"),
        415: i18n._("Unsupported media type"), 422: i18n._("Invalid input"), 429: i18n._("Too many requests"),
        500: i18n._("Server error"), 503: i18n._("Service unavailable"),
    }
    return titles.get(status) or i18n._("Error")


def _explanation(status: int) -> str:
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


def _database_error(request: Request, exc: DBAPIError) -> Response:
    if exc.connection_invalidated or isinstance(exc, OperationalError):
        return on_database_unavailable(request, exc)
    if _is_data_error(exc):
        # A value the service's own checks let through and the database cannot hold (a number beyond its column).
        _ensure_language(request.scope)
        log.warning("data error on %s %s: %s", request.method, request.url.path, exc.orig)
        return problem_response(request, 422, _title(422), i18n._("A value is too large or holds characters that cannot be stored."))
    if isinstance(exc, IntegrityError):
        # A constraint caught what the service's own check could not see: a change made at the same moment.
        _ensure_language(request.scope)
        log.warning("integrity error on %s %s: %s", request.method, request.url.path, exc.orig)
        return problem_response(
            request, 409, _title(409), i18n._("This conflicts with a change made at the same time. Reload and try again.")
        )
    return on_unexpected(request, exc)


async def refuse_ids_out_of_range(request: Request) -> None:
    """A number in a path beyond the ids the database holds names nothing (`ID_RANGE`)."""
    for value in request.path_params.values():
        if isinstance(value, int) and value not in ID_RANGE:
            raise NotFound(_explanation(404))


async def refuse_control_characters(request: Request) -> None:
    """Every query parameter and text in the path, before it reaches a handler (and a database): 422 naming it.
    Control characters (NUL among them) have no place there; the databases refuse some of them. Bodies are checked
    by `web.parse`."""
    values = [(name, value) for name, value in request.query_params.multi_items()]
    values += [(name, value) for name, value in request.path_params.items() if isinstance(value, str)]
    bad = {name: i18n._("Remove the control characters from this text.") for name, value in values if CONTROL_CHARACTERS.search(value)}
    if bad:
        raise Invalid(i18n._("Please correct: %(fields)s.", fields=", ".join(bad)), errors=bad)


async def check_request(request: Request) -> None:
    """The app's `before_request`: the checks every route's input passes first."""
    await refuse_ids_out_of_range(request)
    await refuse_control_characters(request)


# --- language -----------------------------------------------------------------------------------

LANGUAGE_CHOSEN = "market_language"  # scope key: the middleware has set the request's language


def _ensure_language(scope: Scope) -> None:
    """Errors raised before routing (unknown path, wrong method) never pass the middleware: choose here."""
    if LANGUAGE_CHOSEN not in scope:
        _choose_language(scope)


def _choose_language(scope: Scope) -> None:
    headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
    cookies = dict(part.strip().split("=", 1) for part in headers.get("cookie", "").split(";") if "=" in part)
    user = scope.get("user")
    settings: Settings = scope["litestar_app"].state["settings"]
    language = i18n.choose_language(
        cookies.get(settings.cookie(i18n.LANGUAGE_COOKIE)), getattr(user, "language", None), headers.get("accept-language"), settings.default_language,
    )
    i18n.current_language.set(language)
    scope[LANGUAGE_CHOSEN] = language  # type: ignore[literal-required]


class LanguageMiddleware:
    """Sets the request's language: the switch's cookie, the user's choice, the browser's, the default."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            _choose_language(scope)
        await self.app(scope, receive, send)


# --- reads beside writes -------------------------------------------------------------------------

READING_METHODS = frozenset({"GET", "HEAD"})


class ReadingMiddleware:
    """GET and HEAD requests read, so their transactions begin under `database.reading`: on SQLite they run
    beside a writer instead of queueing for its lock. The rare one that writes after all (an API token's or a
    login session's last use) is stopped at its first write and run again from the start as a write request;
    nothing of the first run reaches the client. Every other method begins IMMEDIATE and queues."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in READING_METHODS:
            await self.app(scope, receive, send)
            return
        pristine = _copy_scope(scope)
        with reading() as attempt:
            sent_anything = False

            async def send_unless_rerun(message: Message) -> None:
                nonlocal sent_anything
                if message["type"] == "http.response.start" and 200 <= message["status"] < 400 and not attempt.refused_write:
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
        scope.clear()  # type: ignore[attr-defined]
        scope.update(pristine)  # type: ignore[typeddict-item]
        await self.app(scope, receive, send)


def _copy_scope(scope: Scope) -> Scope:
    """The scope as it came in, for a second run: per-request state is copied, not shared with the first."""
    fresh = dict(scope)
    state = dict(scope.get("state", {}))
    if isinstance(cached := state.get(CONNECTION_STATE_KEY), ScopeState):
        state[CONNECTION_STATE_KEY] = copy.copy(cached)
    fresh["state"] = state
    return fresh  # type: ignore[return-value]


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


# --- API rate limit ------------------------------------------------------------------------------

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
    store: Store = RedisStore.with_client(url=settings.redis_url, namespace="market") if settings.redis_url else MemoryStore()
    config = RateLimitConfig(
        rate_limit=("minute", settings.api_requests_per_minute), identifier_for_request=_api_caller,
        check_throttle_handler=_is_api, store="rate_limit",
    )
    return config, store


# --- the request's transaction -------------------------------------------------------------------

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
    if message["type"] == "http.response.body" and scope.get(COMMIT_FAILED):  # type: ignore[misc]
        message["body"], message["more_body"] = scope[COMMIT_FAILED], False  # type: ignore[literal-required, typeddict-unknown-key]


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
        problem = {"type": "about:blank", "title": _title(503), "status": 503, "detail": detail, "instance": path}
        body, media_type = json.dumps(problem, ensure_ascii=False).encode(), PROBLEM_JSON.encode()
    else:
        body, media_type = detail.encode(), b"text/plain; charset=utf-8"
    message["status"] = 503  # type: ignore[typeddict-unknown-key]
    kept = [(name, value) for name, value in message.get("headers", []) if name.lower() not in {b"content-length", b"content-type", b"location"}]
    message["headers"] = [*kept, (b"content-type", media_type), (b"content-length", str(len(body)).encode()), (b"retry-after", b"5")]  # type: ignore[typeddict-unknown-key]
    scope[COMMIT_FAILED] = body  # type: ignore[literal-required]


# --- assembly -----------------------------------------------------------------------------------

def route_handlers() -> list[Any]:
    from market.controllers import routes as market_routes

    handlers: list[Any] = list(market_routes())
    for package in ("catalog", "committee", "contracts"):
        with contextlib.suppress(ModuleNotFoundError):
            module = __import__(f"{package}.controllers", fromlist=["routes"])
            handlers.extend(module.routes())
    return handlers


def create_app(settings: Settings | None = None, *, check_schema: bool = True, extra_routes: list[Any] | None = None) -> Litestar:
    """The whole application; `extra_routes` lets tests mount handlers of their own beside the real ones."""
    settings = configure(settings or Settings.from_env())
    schema_version.import_models()
    engine = create_engine(settings.database_url)
    db_config = SQLAlchemyAsyncConfig(
        engine_instance=engine,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        before_send_handler=None,  # set below, once the config has chosen its (unique) session key
        metadata=SQLModel.metadata,
        create_all=False,
    )
    db_config.before_send_handler = committing(db_config.session_scope_key)
    limit, limit_store = rate_limit(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        worker: asyncio.Task[None] | None = None
        try:
            if check_schema:
                await schema_version.ensure_current(engine)
            if settings.worker == "embedded":
                worker = asyncio.create_task(outbox.run_forever(sessions_of(app), settings))
            yield
        finally:
            if worker:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            # The plugin disposes only an engine under its default state key; ours may be renamed.
            await engine.dispose()

    app = Litestar(
        route_handlers=[*route_handlers(), *(extra_routes or []), create_static_files_router(path="/static", directories=[STATIC_DIR], include_in_schema=False)],
        plugins=[SQLAlchemyPlugin(config=db_config)],
        state=State({"settings": settings, "db_config": db_config}),
        stores={"rate_limit": limit_store},
        lifespan=[lifespan],
        template_config=TemplateConfig(instance=build_engine(settings)),
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_name=settings.cookie("csrftoken"),
            cookie_secure=settings.secure_cookies,
            cookie_httponly=True,
            exclude=["/api", "/webhooks", "/healthz"],
        ),
        before_send=[security_headers],
        middleware=[
            ForwardedMiddleware,  # first: the client address everything after counts under
            limit.middleware,  # a caller over the limit costs no database work
            ReadingMiddleware,  # authentication's queries belong to the request's transaction
            DefineMiddleware(AuthenticationMiddleware, exclude=["/static", "/healthz", "/schema"]),
            LanguageMiddleware,
        ],
        exception_handlers={
            WriteWhileReading: on_write_while_reading,
            DomainError: on_domain_error,
            HTTPException: on_http_error,
            DBAPIError: _database_error,
            Exception: on_unexpected,
        },
        openapi_config=OpenAPIConfig(
            title="Cloud service marketplace API",
            version="1",
            path="/schema",
            components=Components(security_schemes={"token": SecurityScheme(type="http", scheme="bearer")}),
            security=[{"token": []}],
        ),
        before_request=check_request,
        request_max_body_size=20 * 1024 * 1024,
        debug=False,
    )
    declare_api_errors(app)
    return app


def declare_api_errors(app: Litestar) -> None:
    """Every /api operation documents the problem answers it may give (`web.API_ERRORS`), before the OpenAPI
    document is first built; a handler's own `responses` for a status win."""
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path.startswith("/api/"):
            for handler in route.route_handlers:
                handler.responses = {**API_ERRORS, **(handler.responses or {})}
