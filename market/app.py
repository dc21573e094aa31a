"""The application factory: the shell's plugins, middleware and error answers, and every package's parts, in one place."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from advanced_alchemy.extensions.litestar import AsyncSessionConfig, SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from market import outbox, schema_version
from market.assembly import assemble
from market.auth import AuthenticationMiddleware
from market.commit import committing
from market.database import create_engine
from market.error_handlers import EXCEPTION_HANDLERS
from market.forwarded import ForwardedMiddleware
from market.headers import security_headers
from market.language import LanguageMiddleware
from market.parts import Parts
from market.rate_limit import rate_limit
from market.reading import ReadingMiddleware
from market.request_checks import check_request
from market.settings import Settings, configure
from market.state import sessions_of
from market.templating import TEMPLATES_DIR, build_engine
from market.web import API_ERRORS

STATIC_DIR = TEMPLATES_DIR.parent / "market" / "static"


def create_app(
    settings: Settings | None = None,
    *,
    check_schema: bool = True,
    extra_routes: list[Any] | None = None,
    parts: Parts | None = None,
) -> Litestar:
    """The whole application: the shell, and the parts every package includes (`market.assembly`). `extra_routes`
    lets tests mount handlers of their own beside the real ones; `parts` lets them share one registry between apps."""
    settings = configure(settings or Settings.from_env())
    parts = parts or assemble()
    db_config = database(settings, parts)
    limit, limit_store = rate_limit(settings)
    app = Litestar(
        route_handlers=[
            *parts.routes,
            *(extra_routes or []),
            create_static_files_router(path="/static", directories=[STATIC_DIR], include_in_schema=False),
        ],
        plugins=[SQLAlchemyPlugin(config=db_config)],
        state=State({"settings": settings, "db_config": db_config, "parts": parts}),
        stores={"rate_limit": limit_store},
        lifespan=[running(db_config.get_engine(), settings, check_schema=check_schema)],
        template_config=TemplateConfig(instance=build_engine(settings)),
        csrf_config=csrf(settings),
        before_send=[security_headers],
        middleware=[
            ForwardedMiddleware,  # first: the client address everything after counts under
            limit.middleware,  # a caller over the limit costs no database work
            ReadingMiddleware,  # authentication's queries belong to the request's transaction
            DefineMiddleware(AuthenticationMiddleware, exclude=["/static", "/healthz", "/schema"]),
            LanguageMiddleware,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi(),
        before_request=check_request,
        request_max_body_size=20 * 1024 * 1024,
        debug=False,
    )
    declare_api_errors(app)
    return app


def database(settings: Settings, parts: Parts) -> SQLAlchemyAsyncConfig:
    """The engine and the request's session, committed by `market.commit`; every session carries the app's parts,
    where the hooks find them."""
    db_config = SQLAlchemyAsyncConfig(
        engine_instance=create_engine(settings.database_url),
        session_config=AsyncSessionConfig(expire_on_commit=False, info=parts.session_info()),
        before_send_handler=None,  # set below, once the config has chosen its (unique) session key
        metadata=SQLModel.metadata,
        create_all=False,
    )
    db_config.before_send_handler = committing(db_config.session_scope_key)
    return db_config


def running(
    engine: AsyncEngine, settings: Settings, *, check_schema: bool
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The app's lifespan: the schema checked, the embedded worker started, the engine disposed at the end."""

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

    return lifespan


def csrf(settings: Settings) -> CSRFConfig:
    return CSRFConfig(
        secret=settings.secret_key,
        cookie_name=settings.cookie("csrftoken"),
        cookie_secure=settings.secure_cookies,
        cookie_httponly=True,
        exclude=["/api", "/webhooks", "/healthz"],
    )


def openapi() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Cloud service marketplace API",
        version="1",
        path="/schema",
        components=Components(security_schemes={"token": SecurityScheme(type="http", scheme="bearer")}),
        security=[{"token": []}],
    )


def declare_api_errors(app: Litestar) -> None:
    """Every /api operation documents the problem answers it may give (`web.API_ERRORS`), before the OpenAPI
    document is first built; a handler's own `responses` for a status win."""
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path.startswith("/api/"):
            for handler in route.route_handlers:
                handler.responses = {**API_ERRORS, **(handler.responses or {})}
