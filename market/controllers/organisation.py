"""The user's organisation: details, members, invitations; administrators manage members. And the /api twins."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post, put
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from market import accounts
from market.controllers.registration import PAGE
from market.errors import Conflict, Invalid
from market.formatting import number
from market.guards import org_admin, signed_in
from market.i18n import _
from market.models import roles_for
from market.schemas import (
    InvitationCreate,
    InvitationRead,
    MemberRead,
    OrganisationRead,
    RoleChange,
    SigningLimitChange,
    SigningPolicy,
)
from market.state import settings_of
from market.web import (
    PAGE_SIZE,
    ApiInput,
    DbSession,
    FormBody,
    Page,
    check_page,
    form_dict,
    page_number,
    parse,
    redirect,
    render,
)


def role_label(role: str) -> str:
    return {"admin": _("Administrator"), "buyer": _("Buyer"), "signer": _("Signer")}.get(role) or _("Member")


def role_options(kind: str) -> list[tuple[str, str]]:
    """The roles a member of this kind of organisation can hold, with their labels."""
    return [(role, role_label(role)) for role in roles_for(kind)]


async def _organisation_page(
    request: Request,
    db_session: AsyncSession,
    page: int | None = None,
    status_code: int = 200,
    *,
    invite: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> Template:
    number = page_number(page)
    overview = await accounts.organisation_overview(
        db_session, request.user, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    paging = check_page(Page(number, PAGE_SIZE, overview.member_count))
    options = role_options(overview.organisation.kind)
    return render(
        request,
        "market/organisation.html",
        status_code,
        overview=overview,
        page=paging,
        invite=invite or {"email": "", "role": options[0][0]},
        errors=errors or {},
        role_label=role_label,
        role_options=options,
        signs_with_limit=accounts.signs_with_limit,
    )


@get("/organisation", guards=[signed_in], **PAGE)
async def organisation_page(request: Request, db_session: DbSession, page: FromQuery[int | None] = None) -> Template:
    return await _organisation_page(request, db_session, page)


@post("/organisation/invitations", guards=[signed_in, org_admin], **PAGE)
async def invite(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    try:
        entry = parse(InvitationCreate, form)
        invitation = await accounts.invite_member(
            db_session, settings_of(request.app), request.user, email=entry.email, role=entry.role
        )
    except (Invalid, Conflict) as exc:
        invite_form = {"email": form.get("email", ""), "role": form.get("role", "")}
        return await _organisation_page(
            request,
            db_session,
            status_code=exc.status_code,
            invite=invite_form,
            errors=exc.errors or {"form": exc.detail},
        )
    return redirect(
        request,
        "/organisation",
        _("An invitation was sent to %(email)s. It is valid for 7 days.", email=invitation.email),
    )


async def _set_active(request: Request, db_session: AsyncSession, member_id: int, active: bool) -> Any:
    try:
        member = await accounts.set_member_active(db_session, request.user, member_id, active=active)
    except Conflict as exc:
        return redirect(request, "/organisation", exc.detail, category="error")
    message = (
        _("%(name)s can sign in again.", name=member.name)
        if active
        else _("%(name)s is disabled and was signed out.", name=member.name)
    )
    return redirect(request, "/organisation", message)


@post("/organisation/members/{member_id:int}/disable", guards=[signed_in, org_admin], **PAGE)
async def disable_member(request: Request, member_id: FromPath[int], db_session: DbSession) -> Any:
    return await _set_active(request, db_session, member_id, False)


@post("/organisation/members/{member_id:int}/enable", guards=[signed_in, org_admin], **PAGE)
async def enable_member(request: Request, member_id: FromPath[int], db_session: DbSession) -> Any:
    return await _set_active(request, db_session, member_id, True)


@get("/organisation/members/{member_id:int}/remove", guards=[signed_in, org_admin], **PAGE)
async def confirm_remove(request: Request, member_id: FromPath[int], db_session: DbSession) -> Template:
    member = await accounts.member_to_remove(db_session, request.user, member_id)
    return render(request, "market/member_remove.html", member=member)


@post("/organisation/members/{member_id:int}/remove", guards=[signed_in, org_admin], **PAGE)
async def remove_member(request: Request, member_id: FromPath[int], db_session: DbSession) -> Any:
    try:
        member = await accounts.remove_member(db_session, request.user, member_id)
    except Conflict as exc:
        return redirect(request, "/organisation", exc.detail, category="error")
    return redirect(
        request,
        "/organisation",
        _("%(name)s is removed from the organisation: signed out, with every API token revoked.", name=member.name),
    )


@post("/organisation/members/{member_id:int}/role", guards=[signed_in, org_admin], **PAGE)
async def change_role(request: Request, member_id: FromPath[int], data: FormBody, db_session: DbSession) -> Any:
    # A refusal (unknown role, own role, someone else's member) answers its 4xx page with the reason.
    entry = parse(RoleChange, form_dict(data))
    member = await accounts.change_member_role(db_session, request.user, member_id, role=entry.role)
    return redirect(
        request, "/organisation", _("%(name)s's role is now %(role)s.", name=member.name, role=role_label(member.role))
    )


@post("/organisation/members/{member_id:int}/signing-limit", guards=[signed_in, org_admin], **PAGE)
async def change_signing_limit(
    request: Request, member_id: FromPath[int], data: FormBody, db_session: DbSession
) -> Any:
    # A refusal (a buyer, own limit, a provider, someone else's member) answers its 4xx page with the reason.
    entry = parse(SigningLimitChange, form_dict(data))
    member = await accounts.set_signing_limit(db_session, request.user, member_id, amount=entry.signing_limit)
    return redirect(
        request,
        "/organisation",
        _(
            "%(name)s may now sign contracts worth up to ₩%(amount)s with VAT.",
            name=member.name,
            amount=number(member.signing_limit),
        ),
    )


@post("/organisation/signing-policy", guards=[signed_in, org_admin], **PAGE)
async def signing_policy(request: Request, data: FormBody, db_session: DbSession) -> Any:
    allowed = form_dict(data).get("password_signing") == "yes"
    await accounts.set_password_signing(db_session, request.user, allowed=allowed)
    message = (
        _("Members may sign contracts with their password again, as well as with a passkey or a signing key.")
        if allowed
        else _("Members now sign contracts only with a passkey or a signing key.")
    )
    return redirect(request, "/organisation", message)


# --- /api -----------------------------------------------------------------------------------------


@get("/api/organisation", guards=[signed_in], tags=["organisation"])
async def api_organisation(request: Request, db_session: DbSession) -> OrganisationRead:
    """Your organisation with all its members and open invitations."""
    overview = await accounts.organisation_overview(db_session, request.user)
    organisation = overview.organisation
    return OrganisationRead(
        id=organisation.id,
        kind=organisation.kind,
        name=organisation.name,
        registration_number=organisation.registration_number,
        contact_email=organisation.contact_email,
        contact_phone=organisation.contact_phone,
        is_sme=organisation.is_sme,
        password_signing=organisation.password_signing,
        members=[MemberRead.model_validate(member) for member in overview.members],
        invitations=[InvitationRead.model_validate(invitation) for invitation in overview.invitations],
        can_manage_members=overview.can_manage_members,
    )


@post("/api/organisation/invitations", guards=[signed_in, org_admin], tags=["organisation"])
async def api_invite(
    request: Request,
    data: ApiInput[InvitationCreate],
    db_session: DbSession,
) -> InvitationRead:
    """Invite someone by e-mail; the link goes to them, never into this answer."""
    entry = parse(InvitationCreate, data)
    invitation = await accounts.invite_member(
        db_session, settings_of(request.app), request.user, email=entry.email, role=entry.role
    )
    return InvitationRead.model_validate(invitation)


@post(
    "/api/organisation/members/{member_id:int}/disable",
    guards=[signed_in, org_admin],
    tags=["organisation"],
    status_code=200,
)
async def api_disable_member(request: Request, member_id: FromPath[int], db_session: DbSession) -> MemberRead:
    """Disable a member: their sessions end and their tokens stop working at once."""
    return MemberRead.model_validate(
        await accounts.set_member_active(db_session, request.user, member_id, active=False)
    )


@post(
    "/api/organisation/members/{member_id:int}/enable",
    guards=[signed_in, org_admin],
    tags=["organisation"],
    status_code=200,
)
async def api_enable_member(request: Request, member_id: FromPath[int], db_session: DbSession) -> MemberRead:
    """Enable a disabled member again."""
    return MemberRead.model_validate(await accounts.set_member_active(db_session, request.user, member_id, active=True))


@post(
    "/api/organisation/members/{member_id:int}/remove",
    guards=[signed_in, org_admin],
    tags=["organisation"],
    status_code=200,
)
async def api_remove_member(request: Request, member_id: FromPath[int], db_session: DbSession) -> MemberRead:
    """Remove a member from your organisation: they are signed out, their tokens are revoked, and they can no longer
    sign in; only the marketplace operators can restore the account. You cannot remove yourself."""
    return MemberRead.model_validate(await accounts.remove_member(db_session, request.user, member_id))


@post(
    "/api/organisation/members/{member_id:int}/role",
    guards=[signed_in, org_admin],
    tags=["organisation"],
    status_code=200,
)
async def api_change_role(
    request: Request,
    member_id: FromPath[int],
    data: ApiInput[RoleChange],
    db_session: DbSession,
) -> MemberRead:
    """Another member's role, one of your organisation kind's (agency: buyer, signer, admin; provider: signer, admin).
    A member who becomes a buyer loses their signing limit."""
    entry = parse(RoleChange, data)
    return MemberRead.model_validate(
        await accounts.change_member_role(db_session, request.user, member_id, role=entry.role)
    )


@post(
    "/api/organisation/members/{member_id:int}/signing-limit",
    guards=[signed_in, org_admin],
    tags=["organisation"],
    status_code=200,
)
async def api_change_signing_limit(
    request: Request,
    member_id: FromPath[int],
    data: ApiInput[SigningLimitChange],
    db_session: DbSession,
) -> MemberRead:
    """An agency administrator sets another signer's or administrator's signing limit: the largest total value
    with VAT, in won, of a contract or amendment they may sign (0: none). Providers have no limits (403)."""
    entry = parse(SigningLimitChange, data)
    return MemberRead.model_validate(
        await accounts.set_signing_limit(db_session, request.user, member_id, amount=entry.signing_limit)
    )


@put("/api/organisation/signing-policy", guards=[signed_in, org_admin], tags=["organisation"])
async def api_signing_policy(request: Request, data: ApiInput[SigningPolicy], db_session: DbSession) -> SigningPolicy:
    """Whether members may still sign contracts by re-entering their password (`password_signing`, default true);
    false leaves passkeys and signing keys only. Administrators of agencies and providers."""
    entry = parse(SigningPolicy, data)
    organisation = await accounts.set_password_signing(db_session, request.user, allowed=entry.password_signing)
    return SigningPolicy(password_signing=organisation.password_signing)


routes = [
    organisation_page,
    invite,
    disable_member,
    enable_member,
    confirm_remove,
    remove_member,
    change_role,
    change_signing_limit,
    signing_policy,
    api_organisation,
    api_invite,
    api_disable_member,
    api_enable_member,
    api_remove_member,
    api_change_role,
    api_change_signing_limit,
    api_signing_policy,
]
