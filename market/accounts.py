"""Organisations and users: registration, invitations, members, passwords, API tokens.

Every function that changes state writes its audit event in the caller's transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from market import audit, outbox
from market.auth import (
    TOKEN_PREFIX,
    Principal,
    SystemActor,
    check_login_allowed,
    clear_login_failures,
    end_all_sessions,
    record_login_failure,
)
from market.database import utcnow
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.guards import ensure_owner
from market.i18n import _
from market.models import (
    AgencyDomain,
    ApiToken,
    Invitation,
    MemberRole,
    Organisation,
    OrganisationKind,
    PasswordReset,
    User,
)
from market.security import MIN_PASSWORD_LENGTH, hash_password, new_token, token_hash, verify_password
from market.settings import LANGUAGES, Settings

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,}$")
BRN_WEIGHTS = (1, 3, 7, 1, 3, 7, 1, 3, 5)
PASSWORD_RESET_VALIDITY = timedelta(hours=1)
INVITATION_VALIDITY = timedelta(days=7)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def valid_email(email: str) -> bool:
    return bool(EMAIL_PATTERN.match(email))


def valid_business_number(number: str) -> bool:
    """Korean business registration number (사업자등록번호): 10 digits, the last a check digit."""
    digits = re.sub(r"[-\s]", "", number)
    if not re.fullmatch(r"\d{10}", digits):
        return False
    values = [int(d) for d in digits]
    total = sum(v * w for v, w in zip(values, BRN_WEIGHTS, strict=False)) + (values[8] * 5) // 10
    return (10 - total % 10) % 10 == values[9]


def normalise_business_number(number: str) -> str:
    digits = re.sub(r"[-\s]", "", number)
    return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"


def valid_institution_code(code: str) -> bool:
    """An agency's 7-digit institution code (행정기관코드)."""
    return bool(re.fullmatch(r"\d{7}", code.strip()))


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            _("The password is too short."),
            errors={"password": _("At least %(n)s characters.", n=MIN_PASSWORD_LENGTH)},
        )
    if len(password) > 200:
        raise Invalid(_("The password is too long."), errors={"password": _("At most %(n)s characters.", n=200)})


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(sa.select(User).where(User.email == normalise_email(email)))


async def authenticate(session: AsyncSession, settings: Settings, email: str, password: str, ip: str) -> User | None:
    """None for a wrong address or password alike; failures are counted for throttling."""
    key = normalise_email(email)[:254]
    await check_login_allowed(session, settings, key, ip)
    user = await user_by_email(session, key)
    organisation = await session.get(Organisation, user.organisation_id) if user else None
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active or organisation is None or not organisation.active:
        await record_login_failure(session, key, ip)
        return None
    await clear_login_failures(session, key)
    return user


async def create_organisation(
    session: AsyncSession, actor: Principal | SystemActor | None, *, kind: str, name: str,
    registration_number: str | None = None, contact_email: str = "", contact_phone: str = "",
    address: str = "", website: str = "", is_sme: bool = False,
) -> Organisation:
    if kind not in OrganisationKind.__members__:
        raise Invalid(_("Unknown organisation kind."), errors={"kind": _("Choose one of the offered values.")})
    if kind == OrganisationKind.provider:
        if not registration_number or not valid_business_number(registration_number):
            raise Invalid(
                _("The business registration number is not valid."),
                errors={"registration_number": _("Enter the 10-digit business registration number; its last digit is a check digit.")},
            )
        registration_number = normalise_business_number(registration_number)
    elif kind == OrganisationKind.agency:
        if not registration_number or not valid_institution_code(registration_number):
            raise Invalid(
                _("The institution code is not valid."),
                errors={"registration_number": _("Enter the agency's 7-digit institution code.")},
            )
        registration_number = registration_number.strip()
    if registration_number and await session.scalar(
        sa.select(Organisation.id).where(Organisation.kind == kind, Organisation.registration_number == registration_number)
    ):
        raise Conflict(
            _("An organisation with this registration number is already registered."),
            errors={"registration_number": _("Already registered.")},
        )
    organisation = Organisation(
        kind=kind, name=name.strip(), registration_number=registration_number, contact_email=contact_email.strip(),
        contact_phone=contact_phone.strip(), address=address.strip(), website=website.strip(), is_sme=is_sme,
    )
    session.add(organisation)
    await session.flush()
    await audit.record(session, actor, "organisation.create", "organisation", organisation.id, {"kind": kind, "name": organisation.name})
    return organisation


async def create_user(
    session: AsyncSession, actor: Principal | SystemActor | None, *, organisation: Organisation, email: str,
    name: str, password: str, role: str = MemberRole.member,
) -> User:
    email = normalise_email(email)
    if not valid_email(email):
        raise Invalid(_("The e-mail address is not valid."), errors={"email": _("Enter an address like name@example.go.kr.")})
    check_password(password)
    if role not in MemberRole.__members__:
        raise Invalid(_("Unknown role."), errors={"role": _("Choose one of the offered values.")})
    if await user_by_email(session, email):
        raise Conflict(_("An account with this e-mail address exists already."), errors={"email": _("Already registered.")})
    user = User(email=email, name=name.strip(), password_hash=hash_password(password), organisation_id=organisation.id, role=role)  # type: ignore[arg-type]
    session.add(user)
    await session.flush()
    await audit.record(
        session, actor or _self_actor(user), "user.create", "user", user.id,
        {"email": email, "organisation_id": organisation.id, "role": role},
    )
    return user


def _self_actor(user: User) -> SystemActor:
    return SystemActor(email=user.email, user_id=user.id, organisation_id=user.organisation_id)


async def get_user_in_organisation(session: AsyncSession, principal: Principal, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None or (user.organisation_id != principal.organisation_id and not principal.is_kind("operator")):
        raise NotFound(_("No such user."))
    return user


# --- invitations ----------------------------------------------------------------------------------

async def create_invitation(
    session: AsyncSession, settings: Settings, actor: Principal | SystemActor, *, organisation: Organisation,
    email: str, role: str = MemberRole.member,
) -> Invitation:
    """Invite someone into `organisation`; the link goes out by e-mail through the outbox."""
    email = normalise_email(email)
    if not valid_email(email):
        raise Invalid(_("The e-mail address is not valid."), errors={"email": _("Enter an address like name@example.go.kr.")})
    if role not in MemberRole.__members__:
        raise Invalid(_("Unknown role."), errors={"role": _("Choose one of the offered values.")})
    if await user_by_email(session, email):
        raise Conflict(_("An account with this e-mail address exists already."), errors={"email": _("Already registered.")})
    raw = new_token()
    invitation = Invitation(
        organisation_id=organisation.id, email=email, role=role, token_hash=token_hash(raw),  # type: ignore[arg-type]
        invited_by_id=actor.user_id, expires_at=utcnow() + INVITATION_VALIDITY,
    )
    session.add(invitation)
    await session.flush()
    await audit.record(session, actor, "invitation.create", "invitation", invitation.id, {"email": email, "organisation_id": organisation.id, "role": role})
    await outbox.send_email(
        session, email, _("You are invited to %(org)s on the Cloud Service Marketplace", org=organisation.name),
        _("Accept the invitation within 7 days: %(link)s", link=f"{settings.base_url}/invitations/{raw}"),
        idempotency_key=f"invitation-{invitation.id}",
    )
    return invitation


async def open_invitation(session: AsyncSession, raw: str) -> Invitation:
    invitation = await session.scalar(sa.select(Invitation).where(Invitation.token_hash == token_hash(raw)))
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at < utcnow():
        raise NotFound(_("This invitation link is not valid: it was used already, has expired, or never existed."))
    return invitation


async def accept_invitation(session: AsyncSession, raw: str, *, name: str, password: str) -> User:
    invitation = await open_invitation(session, raw)
    organisation = await session.get(Organisation, invitation.organisation_id)
    assert organisation is not None  # foreign key
    user = await create_user(session, None, organisation=organisation, email=invitation.email, name=name, password=password, role=invitation.role)
    invitation.accepted_at = utcnow()
    await audit.record(session, _self_actor(user), "invitation.accept", "invitation", invitation.id)
    return user


# --- password reset -------------------------------------------------------------------------------

async def request_password_reset(session: AsyncSession, settings: Settings, email: str, ip: str) -> None:
    """Always the same outcome for the caller; a link is sent only to an active account."""
    user = await user_by_email(session, email)
    if user is None or not user.active:
        return
    raw = new_token()
    reset = PasswordReset(user_id=user.id, token_hash=token_hash(raw), expires_at=utcnow() + PASSWORD_RESET_VALIDITY)  # type: ignore[arg-type]
    session.add(reset)
    await session.flush()
    await audit.record(session, SystemActor(email=user.email, user_id=user.id, organisation_id=user.organisation_id, ip=ip), "password.reset_requested", "user", user.id)
    await outbox.send_email(
        session, user.email, _("Reset your password"),
        _("Set a new password within one hour: %(link)s\nIf you did not ask for this, ignore this message.", link=f"{settings.base_url}/password/reset/{raw}"),
        idempotency_key=f"password-reset-{reset.id}",
    )


async def open_password_reset(session: AsyncSession, raw: str) -> PasswordReset:
    reset = await session.scalar(sa.select(PasswordReset).where(PasswordReset.token_hash == token_hash(raw)))
    if reset is None or reset.used_at is not None or reset.expires_at < utcnow():
        raise NotFound(_("This reset link is not valid: it was used already, has expired, or never existed."))
    return reset


async def reset_password(session: AsyncSession, raw: str, password: str, ip: str) -> User:
    reset = await open_password_reset(session, raw)
    user = await session.get(User, reset.user_id)
    assert user is not None  # foreign key
    await set_password(session, user, password, actor=SystemActor(email=user.email, user_id=user.id, organisation_id=user.organisation_id, ip=ip))
    reset.used_at = utcnow()
    return user


async def set_password(session: AsyncSession, user: User, password: str, *, actor: Principal | SystemActor) -> None:
    """A new password ends every login session of the user."""
    check_password(password)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    await end_all_sessions(session, user.id)  # type: ignore[arg-type]
    await audit.record(session, actor, "password.change", "user", user.id)


# --- self-registration ----------------------------------------------------------------------------

PHONE_PATTERN = re.compile(r"^\+?[0-9][0-9()\-\s]{5,38}[0-9]$")


def valid_phone(phone: str) -> bool:
    return bool(PHONE_PATTERN.match(phone.strip()))


async def register_provider(
    session: AsyncSession, *, organisation_name: str, registration_number: str, contact_email: str,
    contact_phone: str, is_sme: bool, name: str, email: str, password: str, ip: str,
) -> User:
    """A provider organisation and its first user, an administrator, in the caller's transaction."""
    errors: dict[str, str] = {}
    if not valid_business_number(registration_number):
        errors["registration_number"] = _("Enter the 10-digit business registration number; its last digit is a check digit.")
    if not valid_email(normalise_email(contact_email)):
        errors["contact_email"] = _("Enter an address like name@example.go.kr.")
    if not valid_phone(contact_phone):
        errors["contact_phone"] = _("Enter a telephone number such as 02-123-4567.")
    if not valid_email(normalise_email(email)):
        errors["email"] = _("Enter an address like name@example.go.kr.")
    try:
        check_password(password)
    except Invalid as exc:
        errors.update(exc.errors)
    if errors:
        raise Invalid(_("Please correct: %(fields)s.", fields=", ".join(errors)), errors=errors)
    actor = SystemActor(email=normalise_email(email), ip=ip)
    organisation = await create_organisation(
        session, actor, kind=OrganisationKind.provider, name=organisation_name, registration_number=registration_number,
        contact_email=normalise_email(contact_email), contact_phone=contact_phone, is_sme=is_sme,
    )
    return await create_user(
        session, None, organisation=organisation, email=email, name=name, password=password, role=MemberRole.admin,
    )


async def register_agency_user(session: AsyncSession, *, name: str, email: str, password: str, ip: str) -> User:
    """Join an agency as a member: only with an address at a domain an operator approved for it."""
    email = normalise_email(email)
    if not valid_email(email):
        raise Invalid(_("The e-mail address is not valid."), errors={"email": _("Enter an address like name@example.go.kr.")})
    domain = email.rsplit("@", 1)[1]
    organisation = await session.scalar(
        sa.select(Organisation)
        .join(AgencyDomain, AgencyDomain.organisation_id == Organisation.id)
        .where(AgencyDomain.domain == domain, Organisation.kind == OrganisationKind.agency, Organisation.active.is_(True))
    )
    if organisation is None:
        raise Invalid(
            _("Addresses at %(domain)s cannot register themselves.", domain=domain),
            errors={"email": _("%(domain)s is not an approved agency domain. Ask your agency's administrator for an invitation.", domain=domain)},
        )
    return await create_user(session, None, organisation=organisation, email=email, name=name, password=password)


async def invitation_with_organisation(session: AsyncSession, raw: str) -> tuple[Invitation, Organisation]:
    invitation = await open_invitation(session, raw)
    organisation = await session.get(Organisation, invitation.organisation_id)
    if organisation is None or not organisation.active:
        raise NotFound(_("This invitation link is not valid: it was used already, has expired, or never existed."))
    return invitation, organisation


# --- own account ----------------------------------------------------------------------------------

async def _own_user(session: AsyncSession, principal: Principal) -> User:
    user = await session.get(User, principal.user_id)
    if user is None:
        raise NotFound(_("No such user."))
    return user


async def account_overview(session: AsyncSession, principal: Principal) -> tuple[User, list[ApiToken]]:
    return await _own_user(session, principal), await list_tokens(session, principal)


async def update_profile(session: AsyncSession, principal: Principal, *, name: str, language: str) -> User:
    if language not in LANGUAGES:
        raise Invalid(_("Unknown language."), errors={"language": _("Choose one of the offered values.")})
    user = await _own_user(session, principal)
    changes = {
        field: {"from": getattr(user, field), "to": value}
        for field, value in (("name", name.strip()), ("language", language))
        if getattr(user, field) != value
    }
    user.name, user.language = name.strip(), language
    await audit.record(session, principal, "user.update_profile", "user", user.id, changes)
    return user


async def change_password(session: AsyncSession, principal: Principal, *, current_password: str, new_password: str) -> User:
    """The current password must be given again; every session of the user ends (the caller starts a fresh one)."""
    user = await _own_user(session, principal)
    if not verify_password(user.password_hash, current_password):
        raise Invalid(_("The current password is wrong."), errors={"current_password": _("This is not your current password.")})
    await set_password(session, user, new_password, actor=principal)
    return user


# --- API tokens -----------------------------------------------------------------------------------

TOKEN_SHOWN_PREFIX = 12  # "mkt_" and 8 random characters, enough to tell tokens apart


async def create_token(session: AsyncSession, principal: Principal, name: str) -> tuple[ApiToken, str]:
    """A new API token for the principal; the raw token is returned once and stored only as its SHA-256."""
    name = name.strip()
    if not name or len(name) > 80:
        raise Invalid(_("Give the token a name."), errors={"name": _("Between 1 and %(n)s characters.", n=80)})
    raw = new_token(TOKEN_PREFIX)
    token = ApiToken(user_id=principal.user_id, name=name, token_hash=token_hash(raw), prefix=raw[:TOKEN_SHOWN_PREFIX])
    session.add(token)
    await session.flush()
    await audit.record(session, principal, "token.create", "api_token", token.id, {"name": name, "prefix": token.prefix})
    return token, raw


async def list_tokens(session: AsyncSession, principal: Principal) -> list[ApiToken]:
    rows = await session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == principal.user_id).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    return list(rows.all())


async def get_own_token(session: AsyncSession, principal: Principal, token_id: int) -> ApiToken:
    """Only the principal's own tokens; any other id answers 404."""
    token = await session.get(ApiToken, token_id)
    if token is None or token.user_id != principal.user_id:
        raise NotFound(_("No such token."))
    return token


async def revoke_token(session: AsyncSession, principal: Principal, token_id: int) -> ApiToken:
    token = await get_own_token(session, principal, token_id)
    if token.revoked_at is not None:
        raise Conflict(_("This token was revoked already."))
    token.revoked_at = utcnow()
    await audit.record(session, principal, "token.revoke", "api_token", token.id, {"name": token.name, "prefix": token.prefix})
    return token


# --- organisation members -------------------------------------------------------------------------

SELF_MANAGED_KINDS = (OrganisationKind.agency, OrganisationKind.provider)


def can_manage_members(principal: Principal) -> bool:
    """Agency and provider administrators manage their members; committee and operator staff are appointed by operators."""
    return principal.is_admin and principal.is_kind(*SELF_MANAGED_KINDS)


def _check_manager(principal: Principal) -> None:
    if not principal.is_kind(*SELF_MANAGED_KINDS):
        raise Forbidden(_("Members of this organisation are managed by the marketplace operators."))
    if not principal.is_admin:
        raise Forbidden(_("Only an administrator of your organisation can do this."))


@dataclass(frozen=True)
class OrganisationOverview:
    organisation: Organisation
    members: list[User]
    member_count: int
    invitations: list[Invitation]
    can_manage_members: bool


async def organisation_overview(
    session: AsyncSession, principal: Principal, *, offset: int = 0, limit: int | None = None,
) -> OrganisationOverview:
    """The principal's organisation, a slice of its members (all when `limit` is None) and its open invitations."""
    organisation = await session.get(Organisation, principal.organisation_id)
    if organisation is None:
        raise NotFound(_("No such organisation."))
    in_organisation = User.organisation_id == organisation.id
    total = await session.scalar(sa.select(sa.func.count()).select_from(User).where(in_organisation))
    query = sa.select(User).where(in_organisation).order_by(User.name, User.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    members = list((await session.scalars(query)).all())
    invitations = list(
        (
            await session.scalars(
                sa.select(Invitation)
                .where(Invitation.organisation_id == organisation.id, Invitation.accepted_at.is_(None), Invitation.expires_at > utcnow())
                .order_by(Invitation.created_at.desc(), Invitation.id.desc())
            )
        ).all()
    )
    return OrganisationOverview(organisation, members, int(total or 0), invitations, can_manage_members(principal))


async def invite_member(session: AsyncSession, settings: Settings, principal: Principal, *, email: str, role: str) -> Invitation:
    _check_manager(principal)
    organisation = await session.get(Organisation, principal.organisation_id)
    assert organisation is not None  # the principal's own organisation
    return await create_invitation(session, settings, principal, organisation=organisation, email=email, role=role)


async def _member(session: AsyncSession, principal: Principal, user_id: int) -> User:
    """A member of the principal's own organisation; anyone else answers 404."""
    user = await session.get(User, user_id)
    ensure_owner(principal, user.organisation_id if user else None)
    assert user is not None  # ensure_owner raised otherwise
    return user


async def set_member_active(session: AsyncSession, principal: Principal, user_id: int, *, active: bool) -> User:
    """Disable (sessions end at once; tokens stop working while disabled) or enable a member."""
    _check_manager(principal)
    user = await _member(session, principal, user_id)
    if user.id == principal.user_id:
        raise Conflict(_("You cannot disable or enable your own account. Ask another administrator."))
    if user.active == active:
        raise Conflict(_("%(name)s is already active.", name=user.name) if active else _("%(name)s is already disabled.", name=user.name))
    user.active = active
    if not active:
        await end_all_sessions(session, user.id)  # type: ignore[arg-type]
    await audit.record(session, principal, "user.enable" if active else "user.disable", "user", user.id, {"email": user.email})
    return user


async def change_member_role(session: AsyncSession, principal: Principal, user_id: int, *, role: str) -> User:
    _check_manager(principal)
    if role not in MemberRole.__members__:
        raise Invalid(_("Unknown role."), errors={"role": _("Choose one of the offered values.")})
    user = await _member(session, principal, user_id)
    if user.id == principal.user_id:
        raise Conflict(_("You cannot change your own role. Ask another administrator."))
    if user.role == role:
        raise Conflict(_("%(name)s has this role already.", name=user.name))
    previous, user.role = user.role, role
    await audit.record(session, principal, "user.role_change", "user", user.id, {"email": user.email, "from": previous, "to": role})
    return user


async def set_password_signing(session: AsyncSession, principal: Principal, *, allowed: bool) -> Organisation:
    """An administrator decides whether the organisation's members may sign contracts by re-entering their
    password; when not, only a passkey or a registered signing key signs."""
    _check_manager(principal)
    organisation = await session.get(Organisation, principal.organisation_id)
    assert organisation is not None  # the principal's own organisation
    if organisation.password_signing != allowed:
        organisation.password_signing = allowed
        await audit.record(session, principal, "organisation.signing_policy", "organisation", organisation.id, {"password_signing": allowed})
    return organisation
