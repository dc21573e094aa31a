"""The signed-in user's own account: profile, password, API tokens; and the /api twins."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, delete, get, post
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from market import accounts, i18n
from market.auth import SESSION_COOKIE, Principal, client_ip, end_session, start_session
from market.controllers.registration import PAGE
from market.controllers.signin import session_cookie
from market.database import utcnow
from market.errors import Conflict, Invalid
from market.guards import signed_in
from market.i18n import _
from market.models import TOKEN_LIFETIME_DEFAULT
from market.schemas import (
    Me,
    OrganisationBrief,
    PasswordChange,
    ProfileUpdate,
    TokenCreate,
    TokenCreated,
    TokenForm,
    TokenRead,
)
from market.web import DbSession, FormBody, cookie, form_dict, json_body, parse, read_cookie, redirect, render

NO_STORE = {"Cache-Control": "no-store"}


async def _account_page(
    request: Request, db_session: AsyncSession, status_code: int = 200, *, form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> Template:
    user, tokens = await accounts.account_overview(db_session, request.user)
    profile = {"name": user.name, "language": user.language or i18n.current_language.get()}
    return render(
        request, "market/account.html", status_code, account=user, profile={**profile, **(form or {})},
        tokens=tokens, errors=errors or {}, token_name=(form or {}).get("token_name", ""),
        lifetime_days=(form or {}).get("lifetime_days", TOKEN_LIFETIME_DEFAULT.days), now=utcnow(),
    )


@get("/account", guards=[signed_in], **PAGE)
async def account_page(request: Request, db_session: DbSession) -> Template:
    return await _account_page(request, db_session)


@post("/account/profile", guards=[signed_in], **PAGE)
async def update_profile(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    try:
        entry = parse(ProfileUpdate, form)
        user = await accounts.update_profile(db_session, request.user, name=entry.name, language=entry.language)
    except Invalid as exc:
        return await _account_page(request, db_session, exc.status_code, form=form, errors=exc.errors)
    # The language switch's cookie outranks the saved choice: align it so the change shows at once.
    chosen = cookie(request, i18n.LANGUAGE_COOKIE, user.language, max_age=365 * 24 * 3600)
    return redirect(request, "/account", _("Your profile is saved."), cookies=[chosen])


@post("/account/password", guards=[signed_in], **PAGE)
async def change_password(request: Request, data: FormBody, db_session: DbSession) -> Any:
    try:
        entry = parse(PasswordChange, form_dict(data))
        user = await accounts.change_password(
            db_session, request.user, current_password=entry.current_password, new_password=entry.password
        )
    except Invalid as exc:
        return await _account_page(request, db_session, exc.status_code, errors=exc.errors)
    # Every session ended, this browser's too: it gets a fresh one.
    await end_session(db_session, read_cookie(request, SESSION_COOKIE))
    raw = await start_session(db_session, user, client_ip(request), request.headers.get("user-agent", ""))
    message = _("Your password is changed. You were signed out everywhere else.")
    return redirect(request, "/account", message, cookies=[session_cookie(request, raw)])


@post("/account/tokens", guards=[signed_in], **PAGE)
async def create_token(request: Request, data: FormBody, db_session: DbSession) -> Template:
    form = form_dict(data)
    try:
        entry = parse(TokenForm, form)
        token, raw = await accounts.create_token(db_session, request.user, entry.token_name, entry.lifetime_days)
    except Invalid as exc:
        errors = {"token_name" if key == "name" else key: message for key, message in exc.errors.items()}
        kept = {"token_name": form.get("token_name", ""), "lifetime_days": form.get("lifetime_days", "")}
        return await _account_page(request, db_session, exc.status_code, form=kept, errors=errors)
    # Shown on this answer only (no redirect): the raw token is never stored and never shown again.
    page = render(request, "market/token_created.html", 201, token=token, raw=raw)
    page.headers.update(NO_STORE)
    return page


@get("/account/tokens/{token_id:int}/revoke", guards=[signed_in], **PAGE)
async def confirm_revoke(request: Request, token_id: FromPath[int], db_session: DbSession) -> Template:
    token = await accounts.get_own_token(db_session, request.user, token_id)
    return render(request, "market/token_revoke.html", token=token)


@post("/account/tokens/{token_id:int}/revoke", guards=[signed_in], **PAGE)
async def revoke_token(request: Request, token_id: FromPath[int], db_session: DbSession) -> Any:
    try:
        token = await accounts.revoke_token(db_session, request.user, token_id)
    except Conflict as exc:
        return redirect(request, "/account", exc.detail, category="error")
    return redirect(request, "/account", _("The token “%(name)s” is revoked.", name=token.name))


# --- /api -----------------------------------------------------------------------------------------

def _me(principal: Principal) -> Me:
    return Me(
        id=principal.user_id, email=principal.email, name=principal.name, role=principal.role,  # type: ignore[arg-type]
        language=principal.language,  # type: ignore[arg-type]
        organisation=OrganisationBrief(id=principal.organisation_id, kind=principal.organisation_kind, name=principal.organisation_name),
        via_token=principal.via_token,
    )


@get("/api/me", guards=[signed_in], tags=["account"])
async def api_me(request: Request) -> Me:
    """The user the token belongs to, and their organisation."""
    return _me(request.user)


@get("/api/tokens", guards=[signed_in], tags=["account"])
async def api_tokens(request: Request, db_session: DbSession) -> list[TokenRead]:
    """Your API tokens, newest first, revoked and expired ones included (hashes are never shown)."""
    return [TokenRead.model_validate(token) for token in await accounts.list_tokens(db_session, request.user)]


@post("/api/tokens", guards=[signed_in], tags=["account"])
async def api_create_token(
    request: Request, data: Annotated[dict[str, Any], json_body(TokenCreate)], db_session: DbSession,
) -> Response[TokenCreated]:
    """A new token, working for `lifetime_days` (1 to 365, default 90); `token` is in this answer only. Keep it secret: it acts as you."""
    entry = parse(TokenCreate, data)
    token, raw = await accounts.create_token(db_session, request.user, entry.name, entry.lifetime_days)
    body = TokenCreated(**TokenRead.model_validate(token).model_dump(), token=raw)
    return Response(body, status_code=201, headers=NO_STORE)


@delete("/api/tokens/{token_id:int}", guards=[signed_in], tags=["account"])
async def api_revoke_token(request: Request, token_id: FromPath[int], db_session: DbSession) -> None:
    """Revoke one of your tokens; it stops working at once."""
    await accounts.revoke_token(db_session, request.user, token_id)


routes = [
    account_page, update_profile, change_password, create_token, confirm_revoke, revoke_token,
    api_me, api_tokens, api_create_token, api_revoke_token,
]
