"""Registering: a provider organisation, an agency user by approved domain, an invited member; confirming the
address of a self-registered account; password reset."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from market import accounts, audit
from market.auth import SESSION_COOKIE, SystemActor, client_ip, end_session, start_session
from market.controllers.signin import session_cookie
from market.errors import Conflict, Invalid
from market.i18n import N_, _
from market.models import User
from market.schemas import (
    AgencyRegistration,
    ConfirmationResend,
    InvitationAcceptance,
    PasswordForgot,
    PasswordResetForm,
    ProviderRegistration,
)
from market.state import settings_of
from market.web import DbSession, FormBody, form_dict, parse, read_cookie, redirect, render

FormError = (Invalid, Conflict)
# Page routes. The media type is set because a POST handler returns either a redirect or the form
# again; without it a re-rendered form would be sent as JSON.
PAGE: dict[str, Any] = {"include_in_schema": False, "media_type": MediaType.HTML}
# Registration and the resend form answer alike whether or not the address has an account: a redirect here.
CHECK_MAIL = "/register/check-mail"


async def sign_in(request: Request, db_session: AsyncSession, user: User) -> Cookie:
    """Start a fresh login session for `user` in this browser (the previous one, if any, ends)."""
    ip = client_ip(request)
    await end_session(db_session, read_cookie(request, SESSION_COOKIE))
    raw = await start_session(db_session, user, ip, request.headers.get("user-agent", ""))
    actor = SystemActor(email=user.email, user_id=user.id, organisation_id=user.organisation_id, ip=ip)
    await audit.record(db_session, actor, "user.login", "user", user.id)
    return session_cookie(request, raw)


def _without_passwords(form: dict[str, Any]) -> dict[str, Any]:
    """What a re-rendered form may show again: never the passwords."""
    return {key: value for key, value in form.items() if "password" not in key}


# --- provider -------------------------------------------------------------------------------------


@get("/register/provider", **PAGE)
async def provider_form(request: Request) -> Template:
    return render(request, "market/register_provider.html", form={}, errors={})


@post("/register/provider", **PAGE)
async def register_provider(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    try:
        entry = parse(ProviderRegistration, form)
        await accounts.register_provider(
            db_session,
            settings_of(request.app),
            organisation_name=entry.organisation_name,
            registration_number=entry.registration_number,
            contact_email=entry.contact_email,
            contact_phone=entry.contact_phone,
            is_sme=entry.is_sme,
            name=entry.name,
            email=entry.email,
            password=entry.password,
            ip=client_ip(request),
        )
    except FormError as exc:
        return render(
            request,
            "market/register_provider.html",
            exc.status_code,
            form=_without_passwords(form),
            errors=exc.errors or {"form": exc.detail},
        )
    return redirect(request, CHECK_MAIL)


# --- agency ---------------------------------------------------------------------------------------


@get("/register/agency", **PAGE)
async def agency_form(request: Request) -> Template:
    return render(request, "market/register_agency.html", form={}, errors={})


@post("/register/agency", **PAGE)
async def register_agency(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    try:
        entry = parse(AgencyRegistration, form)
        await accounts.register_agency_user(
            db_session,
            settings_of(request.app),
            name=entry.name,
            email=entry.email,
            password=entry.password,
            ip=client_ip(request),
        )
    except FormError as exc:
        return render(
            request,
            "market/register_agency.html",
            exc.status_code,
            form=_without_passwords(form),
            errors=exc.errors or {"form": exc.detail},
        )
    return redirect(request, CHECK_MAIL)


# --- confirming the address -----------------------------------------------------------------------


@get(CHECK_MAIL, **PAGE)
async def check_mail(request: Request) -> Template:
    return render(request, "market/check_mail.html")


@get("/register/confirm/{token:str}", **PAGE)
async def confirm_address(request: Request, token: FromPath[str], db_session: DbSession) -> Any:
    """Opening the e-mailed link confirms the address; the person then signs in with their password."""
    await accounts.confirm_address(db_session, settings_of(request.app), token, client_ip(request))
    return redirect(request, "/login", _("Your e-mail address is confirmed. Sign in to continue."))


# The two pages that ask for an address and send a link to it: (heading, explanation), shown by `_email_link_page`.
EMAIL_LINK_PAGES = {
    "/register/resend": (
        N_("Send the confirmation link again"),
        N_(
            "Enter the address you registered with. If it still needs confirming, we send it a new link, valid for 24 hours."
        ),
    ),
    "/password/forgot": (
        N_("Forgotten password"),
        N_(
            "Enter the e-mail address you sign in with. If an account exists for it, we send it a link to set a new password."
        ),
    ),
}


def _email_link_page(
    request: Request,
    action: str,
    status_code: int = 200,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> Template:
    heading, intro = EMAIL_LINK_PAGES[action]
    return render(
        request,
        "market/email_link.html",
        status_code,
        heading=_(heading),
        intro=_(intro),
        action=action,
        form=form or {},
        errors=errors or {},
    )


@get("/register/resend", **PAGE)
async def resend_form(request: Request) -> Template:
    return _email_link_page(request, "/register/resend")


@post("/register/resend", **PAGE)
async def resend(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    try:
        entry = parse(ConfirmationResend, form)
    except Invalid as exc:
        return _email_link_page(request, "/register/resend", exc.status_code, form, exc.errors)
    await accounts.resend_confirmation(db_session, settings_of(request.app), entry.email, client_ip(request))
    return redirect(request, CHECK_MAIL)


# --- invitation -----------------------------------------------------------------------------------


@get("/invitations/{token:str}", **PAGE)
async def invitation_form(request: Request, token: FromPath[str], db_session: DbSession) -> Template:
    invitation, organisation = await accounts.invitation_with_organisation(db_session, token)
    return render(
        request,
        "market/invitation.html",
        invitation=invitation,
        organisation=organisation,
        token=token,
        form={},
        errors={},
    )


@post("/invitations/{token:str}", **PAGE)
async def accept_invitation(request: Request, token: FromPath[str], data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    try:
        entry = parse(InvitationAcceptance, form)
        user = await accounts.accept_invitation(db_session, token, name=entry.name, password=entry.password)
    except FormError as exc:
        invitation, organisation = await accounts.invitation_with_organisation(db_session, token)
        return render(
            request,
            "market/invitation.html",
            exc.status_code,
            invitation=invitation,
            organisation=organisation,
            token=token,
            form=_without_passwords(form),
            errors=exc.errors or {"form": exc.detail},
        )
    cookie = await sign_in(request, db_session, user)
    return redirect(request, "/", _("Welcome. You have joined your organisation and are signed in."), cookies=[cookie])


# --- password reset -------------------------------------------------------------------------------


@get("/password/forgot", **PAGE)
async def forgot_form(request: Request) -> Template:
    return _email_link_page(request, "/password/forgot")


@post("/password/forgot", **PAGE)
async def forgot(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    try:
        entry = parse(PasswordForgot, form)
    except Invalid as exc:
        return _email_link_page(request, "/password/forgot", exc.status_code, form, exc.errors)
    await accounts.request_password_reset(db_session, settings_of(request.app), entry.email, client_ip(request))
    message = _(
        "If an account exists for that address, we have sent it a link to set a new password. The link works once, within one hour."
    )
    return redirect(request, "/login", message)


@get("/password/reset/{token:str}", **PAGE)
async def reset_form(request: Request, token: FromPath[str], db_session: DbSession) -> Template:
    await accounts.open_password_reset(db_session, token)
    return render(request, "market/password_reset.html", token=token, errors={})


@post("/password/reset/{token:str}", **PAGE)
async def reset(request: Request, token: FromPath[str], data: FormBody, db_session: DbSession) -> Any:
    try:
        entry = parse(PasswordResetForm, form_dict(data))
        await accounts.reset_password(db_session, settings_of(request.app), token, entry.password, client_ip(request))
    except Invalid as exc:
        await accounts.open_password_reset(db_session, token)  # a dead link answers 404, not the form
        return render(request, "market/password_reset.html", exc.status_code, token=token, errors=exc.errors)
    cookie = session_cookie(request, "", max_age=0)  # every session of the account ended
    return redirect(request, "/login", _("Your password is changed. Sign in with the new one."), cookies=[cookie])


routes = [
    provider_form,
    register_provider,
    agency_form,
    register_agency,
    check_mail,
    confirm_address,
    resend_form,
    resend,
    invitation_form,
    accept_invitation,
    forgot_form,
    forgot,
    reset_form,
    reset,
]
