"""The signed-in user's own account: profile, password, API tokens; and the /api twins."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from market import accounts, i18n, signing_keys
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
    PasskeyCreate,
    PasswordChange,
    ProfileUpdate,
    SigningKeyCreate,
    SigningKeyRead,
    TokenCreate,
    TokenCreated,
    TokenForm,
    TokenRead,
)
from market.state import settings_of
from market.web import ApiInput, DbSession, FormBody, cookie, form_dict, parse, read_cookie, redirect, render

NO_STORE = {"Cache-Control": "no-store"}


async def _account_page(
    request: Request,
    db_session: AsyncSession,
    status_code: int = 200,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> Template:
    user, tokens = await accounts.account_overview(db_session, request.user)
    keys = await signing_keys.list_keys(db_session, request.user.user_id)
    profile = {"name": user.name, "language": user.language or i18n.current_language.get()}
    return render(
        request,
        "market/account.html",
        status_code,
        account=user,
        profile={**profile, **(form or {})},
        tokens=tokens,
        errors=errors or {},
        token_name=(form or {}).get("token_name", ""),
        lifetime_days=(form or {}).get("lifetime_days", TOKEN_LIFETIME_DEFAULT.days),
        now=utcnow(),
        passkeys=[key for key in keys if key.kind == "passkey"],
        signing_keys=[key for key in keys if key.kind == "ed25519"],
        key_form={name: (form or {}).get(name, "") for name in ("passkey_name", "key_name", "public_key")},
    )


@get("/account", guards=[signed_in], **PAGE)
async def account_page(request: Request, db_session: DbSession) -> Template:
    return await _account_page(request, db_session)


@post("/account/profile", guards=[signed_in], **PAGE)
async def update_profile(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    try:
        entry = parse(ProfileUpdate, form)
        await accounts.update_profile(db_session, request.user, name=entry.name, language=entry.language)
    except Invalid as exc:
        return await _account_page(request, db_session, exc.status_code, form=form, errors=exc.errors)
    # The language switch's cookie outranks the saved choice: align it so the change shows at once.
    chosen = cookie(request, i18n.LANGUAGE_COOKIE, entry.language, max_age=365 * 24 * 3600)
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


# --- passkeys and signing keys -------------------------------------------------------------------------


@post("/account/passkeys/options", guards=[signed_in], status_code=201, **PAGE)
async def passkey_options(request: Request, db_session: DbSession) -> Response[dict[str, Any]]:
    """The account page's script asks what to pass to `navigator.credentials.create` (JSON)."""
    answer = await signing_keys.passkey_options(db_session, settings_of(request.app), request.user)
    return Response(answer, status_code=201, media_type="application/json", headers=NO_STORE)


@post("/account/passkeys", guards=[signed_in], **PAGE)
async def register_passkey(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    try:
        key = await signing_keys.register_passkey(
            db_session,
            settings_of(request.app),
            request.user,
            name=str(form.get("passkey_name", "")),
            nonce=str(form.get("nonce", "")),
            credential=form.get("credential", ""),
        )
    except (Invalid, Conflict) as exc:
        errors = {
            "passkey_name" if key == "name" else key: message
            for key, message in (exc.errors or {"credential": exc.detail}).items()
        }
        return await _account_page(
            request, db_session, exc.status_code, form={"passkey_name": form.get("passkey_name", "")}, errors=errors
        )
    return redirect(
        request, "/account", _("The passkey “%(name)s” is registered; you can sign contracts with it.", name=key.name)
    )


@post("/account/signing-keys", guards=[signed_in], **PAGE)
async def register_signing_key(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    try:
        key = await signing_keys.register_ed25519(
            db_session, request.user, name=str(form.get("key_name", "")), public_key=str(form.get("public_key", ""))
        )
    except (Invalid, Conflict) as exc:
        errors = {
            "key_name" if key == "name" else key: message
            for key, message in (exc.errors or {"public_key": exc.detail}).items()
        }
        kept = {name: form.get(name, "") for name in ("key_name", "public_key")}
        return await _account_page(request, db_session, exc.status_code, form=kept, errors=errors)
    return redirect(request, "/account", _("The signing key “%(name)s” is registered.", name=key.name))


@get("/account/signing-keys/{key_id:int}/remove", guards=[signed_in], **PAGE)
async def confirm_remove_key(request: Request, key_id: FromPath[int], db_session: DbSession) -> Template:
    key = await signing_keys.own_key(db_session, request.user, key_id)
    return render(request, "market/signing_key_remove.html", key=key)


@post("/account/signing-keys/{key_id:int}/remove", guards=[signed_in], **PAGE)
async def remove_key(request: Request, key_id: FromPath[int], db_session: DbSession) -> Any:
    try:
        key = await signing_keys.remove_key(db_session, request.user, key_id)
    except Conflict as exc:
        return redirect(request, "/account", exc.detail, category="error")
    return redirect(request, "/account", _("“%(name)s” is removed: it can no longer sign.", name=key.name))


# --- /api -----------------------------------------------------------------------------------------


def _me(principal: Principal) -> Me:
    return Me(
        id=principal.user_id,
        email=principal.email,
        name=principal.name,
        role=principal.role,
        language=principal.language,
        organisation=OrganisationBrief(
            id=principal.organisation_id, kind=principal.organisation_kind, name=principal.organisation_name
        ),
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
    request: Request,
    data: ApiInput[TokenCreate],
    db_session: DbSession,
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


@get("/api/signing-keys", guards=[signed_in], tags=["account"])
async def api_signing_keys(request: Request, db_session: DbSession) -> list[SigningKeyRead]:
    """Your passkeys and Ed25519 signing keys, newest first, removed ones included."""
    keys = await signing_keys.list_keys(db_session, request.user.user_id, include_removed=True)
    return [SigningKeyRead.model_validate(key) for key in keys]


@post("/api/signing-keys", guards=[signed_in], tags=["account"], status_code=201)
async def api_register_signing_key(
    request: Request,
    data: ApiInput[SigningKeyCreate],
    db_session: DbSession,
) -> SigningKeyRead:
    """Register an Ed25519 public key (PEM, or the 32 raw bytes in base64); a program holding its private key signs
    contracts through the API (`POST /api/contracts/{id}/versions/{n}/signing-requests`, then `.../signatures`)."""
    entry = parse(SigningKeyCreate, data)
    return SigningKeyRead.model_validate(
        await signing_keys.register_ed25519(db_session, request.user, name=entry.name, public_key=entry.public_key)
    )


@delete("/api/signing-keys/{key_id:int}", guards=[signed_in], tags=["account"])
async def api_remove_signing_key(request: Request, key_id: FromPath[int], db_session: DbSession) -> None:
    """Remove one of your passkeys or signing keys; it can no longer sign (signatures it made stay verifiable)."""
    await signing_keys.remove_key(db_session, request.user, key_id)


@post("/api/passkeys/options", guards=[signed_in], tags=["account"], status_code=201)
async def api_passkey_options(request: Request, db_session: DbSession) -> Response[dict[str, Any]]:
    """What to pass to `navigator.credentials.create` (`publicKey`) and the `nonce` that registration answers (valid five minutes)."""
    return Response(
        await signing_keys.passkey_options(db_session, settings_of(request.app), request.user),
        status_code=201,
        headers=NO_STORE,
    )


@post("/api/passkeys", guards=[signed_in], tags=["account"], status_code=201)
async def api_register_passkey(
    request: Request, data: ApiInput[PasskeyCreate], db_session: DbSession
) -> SigningKeyRead:
    """Register a passkey: its name, the options' `nonce`, and the authenticator's answer (`credential`)."""
    entry = parse(PasskeyCreate, data)
    key = await signing_keys.register_passkey(
        db_session,
        settings_of(request.app),
        request.user,
        name=entry.name,
        nonce=entry.nonce,
        credential=entry.credential,
    )
    return SigningKeyRead.model_validate(key)


routes = [
    account_page,
    update_profile,
    change_password,
    create_token,
    confirm_revoke,
    revoke_token,
    passkey_options,
    register_passkey,
    register_signing_key,
    confirm_remove_key,
    remove_key,
    api_me,
    api_tokens,
    api_create_token,
    api_revoke_token,
    api_signing_keys,
    api_register_signing_key,
    api_remove_signing_key,
    api_passkey_options,
    api_register_passkey,
]
