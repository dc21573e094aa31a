"""Signing in and out."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.params import FromQuery
from litestar.response import Template

from market import accounts, audit
from market.auth import SESSION_COOKIE, SystemActor, client_ip, end_session, start_session
from market.errors import TooManyRequests
from market.i18n import _
from market.state import settings_of
from market.web import DbSession, FormBody, cookie, form_dict, read_cookie, redirect, render, safe_next


def session_cookie(request: Request, value: str, max_age: int | None = None) -> Cookie:
    return cookie(request, SESSION_COOKIE, value, max_age=max_age)


@get("/login", include_in_schema=False)
async def login_page(request: Request, next: FromQuery[str | None] = None) -> Template:
    return render(request, "market/login.html", form={"email": ""}, errors={}, next=safe_next(next))


@post("/login", include_in_schema=False)
async def login(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    email, password = str(form.get("email", ""))[:254], str(form.get("password", ""))[:200]
    target = safe_next(form.get("next"))
    settings = settings_of(request.app)
    ip = client_ip(request)
    try:
        user = await accounts.authenticate(db_session, settings, email, password, ip)
    except TooManyRequests as exc:
        await db_session.commit()  # keep the security event although the answer is an error
        return render(
            request,
            "market/login.html",
            status_code=429,
            form={"email": email},
            errors={"form": exc.detail},
            next=target,
        )
    except accounts.AddressNotConfirmed as exc:
        await db_session.commit()  # the cleared failure count stays
        return render(
            request,
            "market/login.html",
            status_code=403,
            form={"email": email},
            errors={"form": exc.detail},
            next=target,
            unconfirmed=True,
        )
    if user is None:
        # Keep the counted failure and its security event although the answer is an error (errors roll the request back).
        await db_session.commit()
        message = _("The e-mail address or password is wrong.")
        return render(
            request, "market/login.html", status_code=401, form={"email": email}, errors={"form": message}, next=target
        )
    await end_session(db_session, read_cookie(request, SESSION_COOKIE))
    raw = await start_session(db_session, user, ip, request.headers.get("user-agent", ""))
    actor = SystemActor(email=user.email, user_id=user.id, organisation_id=user.organisation_id, ip=ip)
    await audit.record(db_session, actor, "user.login", "user", user.id)
    return redirect(request, target, _("Signed in."), cookies=[session_cookie(request, raw)])


@post("/logout", include_in_schema=False)
async def logout(request: Request, db_session: DbSession) -> Any:
    if request.user:
        await end_session(db_session, read_cookie(request, SESSION_COOKIE))
        await audit.record(db_session, request.user, "user.logout", "user", request.user.user_id)
    return redirect(request, "/", _("Signed out."), cookies=[session_cookie(request, "", max_age=0)])


routes = [login_page, login, logout]
