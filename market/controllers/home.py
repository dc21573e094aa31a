"""Home per role, the language switch, and the health check."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Template

from market import hooks, i18n, schema_version
from market.web import DbSession, FormBody, cookie, form_dict, redirect, render, safe_next


@get("/", include_in_schema=False)
async def home(request: Request, db_session: DbSession) -> Template:
    user = request.user
    if not user:
        return render(request, "market/home_public.html")
    panels = await hooks.home_panels(db_session, user)
    return render(request, f"market/home_{user.organisation_kind}.html", panels=panels)


@post("/language", include_in_schema=False)
async def switch_language(request: Request, data: FormBody) -> Any:
    form = form_dict(data)
    language = form.get("language")
    if language not in i18n.LANGUAGE_NAMES:
        language = i18n.current_language.get()
    chosen = cookie(request, i18n.LANGUAGE_COOKIE, language, max_age=365 * 24 * 3600)
    return redirect(request, safe_next(form.get("next")), cookies=[chosen])


@get("/healthz", exclude_from_auth=True, tags=["health"])
async def healthz(request: Request, db_session: DbSession) -> Response[dict[str, str]]:
    """Database reachable and schema current: 200; otherwise 503 saying which."""
    engine = db_session.bind
    try:
        at = await schema_version.current(engine)  # type: ignore[arg-type]
    except Exception as exc:  # any failure to reach the database is the answer itself
        return Response({"status": "unavailable", "database": f"unreachable: {type(exc).__name__}"}, status_code=503)
    expected = schema_version.head()
    if at != expected:
        return Response(
            {"status": "unavailable", "database": "ok", "schema": f"behind: at {at}, needs {expected}"}, status_code=503
        )
    return Response({"status": "ok", "database": "ok", "schema": "current"})


routes = [home, switch_language, healthz]
