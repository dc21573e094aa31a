"""Organisations and users: registration, address confirmation, invitations, members, passwords, API tokens.

Every function that changes state writes its audit event in the caller's transaction.

Self-registration proves the mailbox: the account cannot sign in (page or token) until the single-use link
e-mailed to the address is opened. Registering answers the same whether or not the address has an account
already; only the mail differs ("you already have an account"). Mails about an account are throttled per
address (`ACCOUNT_MAILS_PER_HOUR` of each purpose).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from zxcvbn import zxcvbn

from market import audit, outbox
from market.auth import (
    TOKEN_PREFIX,
    Principal,
    SystemActor,
    check_login_allowed,
    clear_login_failures,
    end_all_sessions,
    record_login_failure,
    revoke_all_tokens,
)
from market.database import changed_rows, row_id, utcnow
from market.errors import Conflict, Forbidden, Invalid, NotFound, Refused, TooManyRequests
from market.formatting import number
from market.guards import ensure_owner
from market.i18n import _
from market.models import (
    TOKEN_LIFETIME_DEFAULT,
    AccountMail,
    AgencyDomain,
    ApiToken,
    EmailVerification,
    Invitation,
    MemberRole,
    Organisation,
    OrganisationKind,
    PasswordReset,
    User,
    default_role,
    roles_for,
)
from market.schemas import MONEY_MAX
from market.security import MIN_PASSWORD_LENGTH, hash_password, new_token, token_hash, verify_password
from market.settings import LANGUAGES, Settings

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,}$")
BRN_WEIGHTS = (1, 3, 7, 1, 3, 7, 1, 3, 5)
PASSWORD_RESET_VALIDITY = timedelta(hours=1)
INVITATION_VALIDITY = timedelta(days=7)
VERIFICATION_VALIDITY = timedelta(hours=24)
# At most this many mails of one purpose (confirmation link, reset link, "you have an account") per address an hour.
ACCOUNT_MAILS_PER_HOUR = 3
MIN_PASSWORD_SCORE = 3  # zxcvbn's 0..4: 3 is "safely unguessable: moderate protection from offline attacks"
TOKEN_LIFETIME_MAX_DAYS = 365


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


class AddressNotConfirmed(Forbidden):
    """The right password, but the address was never confirmed through the e-mailed link."""


def _guessable_words(*texts: str) -> list[str]:
    """The user's own words a password must not lean on: the address, its parts, the name and its parts."""
    words: list[str] = []
    for text in texts:
        text = text.strip().lower()
        if text:
            words.append(text)
            words.extend(part for part in re.split(r"[^\w]+", text) if len(part) > 1)
    return words


def check_password(password: str, *, email: str = "", name: str = "") -> None:
    """Long enough, not too long, and not common or guessable from the user's own address and name (zxcvbn)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            _("The password is too short."),
            errors={"password": _("At least %(n)s characters.", n=MIN_PASSWORD_LENGTH)},
        )
    if len(password) > 200:
        raise Invalid(_("The password is too long."), errors={"password": _("At most %(n)s characters.", n=200)})
    if zxcvbn(password, user_inputs=_guessable_words(email, name))["score"] < MIN_PASSWORD_SCORE:
        raise Invalid(
            _("The password is too easy to guess."),
            errors={
                "password": _(
                    "Too easy to guess: it is a common password, or close to your name or address. Choose a few unrelated words."
                )
            },
        )


async def _recent_mails(session: AsyncSession, email: str, purpose: str) -> int:
    since = utcnow() - timedelta(hours=1)
    return int(
        await session.scalar(
            sa.select(sa.func.count())
            .select_from(AccountMail)
            .where(col(AccountMail.email) == email, col(AccountMail.purpose) == purpose, col(AccountMail.at) >= since)
        )
        or 0
    )


async def _may_mail(session: AsyncSession, email: str, purpose: str) -> AccountMail | None:
    """The mail, counted, when fewer than `ACCOUNT_MAILS_PER_HOUR` of this purpose went to `email` this hour; else None."""
    if await _recent_mails(session, email, purpose) >= ACCOUNT_MAILS_PER_HOUR:
        return None
    mail = AccountMail(email=email, purpose=purpose)
    session.add(mail)
    await session.flush()
    return mail


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(sa.select(User).where(col(User.email) == normalise_email(email)))


async def authenticate(session: AsyncSession, settings: Settings, email: str, password: str, ip: str) -> User | None:
    """None for a wrong address or password alike; failures are counted for throttling. Each failure and each
    refusal by the throttle is a security event (`security.login_failed`, `security.locked_out`) naming the account
    when it exists (an unknown address is not written down: it may be a mistyped password) and the address.
    The caller commits them although it answers an error."""
    key = normalise_email(email)[:254]
    try:
        await check_login_allowed(session, settings, key, ip)
    except TooManyRequests:
        user = await user_by_email(session, key)
        await audit.record(
            session,
            _attempt_by(user, ip),
            "security.locked_out",
            "user",
            user.id if user else "",
            {"account_known": user is not None},
        )
        raise
    user = await user_by_email(session, key)
    organisation = await session.get(Organisation, user.organisation_id) if user else None
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active or organisation is None or not organisation.active:
        await record_login_failure(session, key, ip)
        await audit.record(
            session,
            _attempt_by(user, ip),
            "security.login_failed",
            "user",
            user.id if user else "",
            {"account_known": user is not None},
        )
        return None
    await clear_login_failures(session, key)
    if user.email_verified_at is None:
        raise AddressNotConfirmed(
            _("Confirm your e-mail address first: open the link we sent to it when you registered.")
        )
    return user


def _attempt_by(user: User | None, ip: str) -> SystemActor:
    if user is None:
        return SystemActor(email="", ip=ip)
    return SystemActor(email=user.email, user_id=user.id, organisation_id=user.organisation_id, ip=ip)


async def create_organisation(
    session: AsyncSession,
    actor: Principal | SystemActor | None,
    *,
    kind: str,
    name: str,
    registration_number: str | None = None,
    contact_email: str = "",
    contact_phone: str = "",
    address: str = "",
    website: str = "",
    is_sme: bool = False,
) -> Organisation:
    if kind not in OrganisationKind.__members__:
        raise Invalid(_("Unknown organisation kind."), errors={"kind": _("Choose one of the offered values.")})
    if kind == OrganisationKind.provider:
        if not registration_number or not valid_business_number(registration_number):
            raise Invalid(
                _("The business registration number is not valid."),
                errors={
                    "registration_number": _(
                        "Enter the 10-digit business registration number; its last digit is a check digit."
                    )
                },
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
        sa.select(col(Organisation.id)).where(
            col(Organisation.kind) == kind, col(Organisation.registration_number) == registration_number
        )
    ):
        raise Conflict(
            _("An organisation with this registration number is already registered."),
            errors={"registration_number": _("Already registered.")},
        )
    organisation = Organisation(
        kind=kind,
        name=name.strip(),
        registration_number=registration_number,
        contact_email=contact_email.strip(),
        contact_phone=contact_phone.strip(),
        address=address.strip(),
        website=website.strip(),
        is_sme=is_sme,
    )
    session.add(organisation)
    await session.flush()
    await audit.record(
        session,
        actor,
        "organisation.create",
        "organisation",
        organisation.id,
        {"kind": kind, "name": organisation.name},
    )
    return organisation


def check_role(kind: str, role: str) -> None:
    """The role must be one that members of this kind of organisation hold (agency: buyer, signer, admin;
    provider: signer, admin; committee and operator: member, admin)."""
    if role not in roles_for(kind):
        raise Invalid(
            _("Unknown role."),
            errors={"role": _("Choose one of the offered values: %(roles)s.", roles=", ".join(roles_for(kind)))},
        )


def signs_with_limit(kind: str, role: str) -> bool:
    """Agency signers and administrators sign up to a signing limit; nobody else has one."""
    return kind == OrganisationKind.agency and role in (MemberRole.signer, MemberRole.admin)


async def create_user(
    session: AsyncSession,
    actor: Principal | SystemActor | None,
    *,
    organisation: Organisation,
    email: str,
    name: str,
    password: str,
    role: str | None = None,
    signing_limit: int = 0,
    verified: bool = True,
) -> User:
    """A new user of `organisation`; `role` defaults to the kind's first (an agency's buyer, a provider's signer).

    `verified=False` (self-registration only) leaves the address to be confirmed before signing in. Every other
    way in proves the address or is vouched for: an invitation's link went to the mailbox, and operators, the
    CLI and the demo loader create accounts they answer for.
    """
    role = role or default_role(organisation.kind)
    email = normalise_email(email)
    if not valid_email(email):
        raise Invalid(
            _("The e-mail address is not valid."), errors={"email": _("Enter an address like name@example.go.kr.")}
        )
    check_password(password, email=email, name=name)
    check_role(organisation.kind, role)
    if signing_limit and not signs_with_limit(organisation.kind, role):
        raise Invalid(
            _("Only an agency's signers and administrators have a signing limit."),
            errors={"signing_limit": _("Leave it at 0.")},
        )
    if await user_by_email(session, email):
        raise Conflict(
            _("An account with this e-mail address exists already."), errors={"email": _("Already registered.")}
        )
    user = User(
        email=email,
        name=name.strip(),
        password_hash=hash_password(password),
        organisation_id=row_id(organisation),
        role=role,
        signing_limit=signing_limit,
        email_verified_at=utcnow() if verified else None,
    )
    session.add(user)
    await session.flush()
    summary: dict[str, object] = {
        "email": email,
        "organisation_id": organisation.id,
        "role": role,
        "verified": verified,
    }
    if signing_limit:
        summary["signing_limit"] = signing_limit
    await audit.record(session, actor or _self_actor(user), "user.create", "user", user.id, summary)
    return user


def _self_actor(user: User) -> SystemActor:
    return SystemActor(email=user.email, user_id=user.id, organisation_id=user.organisation_id)


async def get_user_in_organisation(session: AsyncSession, principal: Principal, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(_("No such user."))
    if user.organisation_id != principal.organisation_id and not principal.is_kind("operator"):
        raise Refused(_("No such user."))
    return user


# --- invitations ----------------------------------------------------------------------------------


async def create_invitation(
    session: AsyncSession,
    settings: Settings,
    actor: Principal | SystemActor,
    *,
    organisation: Organisation,
    email: str,
    role: str | None = None,
) -> Invitation:
    """Invite someone into `organisation` with one of its kind's roles (its first unless told); the link goes out
    by e-mail through the outbox. A signing limit is set once they have joined."""
    role = role or default_role(organisation.kind)
    email = normalise_email(email)
    if not valid_email(email):
        raise Invalid(
            _("The e-mail address is not valid."), errors={"email": _("Enter an address like name@example.go.kr.")}
        )
    check_role(organisation.kind, role)
    if await user_by_email(session, email):
        raise Conflict(
            _("An account with this e-mail address exists already."), errors={"email": _("Already registered.")}
        )
    raw = new_token()
    invitation = Invitation(
        organisation_id=row_id(organisation),
        email=email,
        role=role,
        token_hash=token_hash(raw),
        invited_by_id=actor.user_id,
        expires_at=utcnow() + INVITATION_VALIDITY,
    )
    session.add(invitation)
    await session.flush()
    await audit.record(
        session,
        actor,
        "invitation.create",
        "invitation",
        invitation.id,
        {"email": email, "organisation_id": organisation.id, "role": role},
    )
    await outbox.send_email(
        session,
        email,
        _("You are invited to %(org)s on the Cloud Service Marketplace", org=organisation.name),
        _("Accept the invitation within 7 days: %(link)s", link=f"{settings.base_url}/invitations/{raw}"),
        idempotency_key=f"invitation-{invitation.id}",
    )
    return invitation


async def open_invitation(session: AsyncSession, raw: str) -> Invitation:
    invitation = await session.scalar(sa.select(Invitation).where(col(Invitation.token_hash) == token_hash(raw)))
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at < utcnow():
        raise NotFound(_("This invitation link is not valid: it was used already, has expired, or never existed."))
    return invitation


async def accept_invitation(session: AsyncSession, raw: str, *, name: str, password: str) -> User:
    """The link went to the invited address, so the new account's address is confirmed."""
    invitation = await open_invitation(session, raw)
    organisation = await session.get(Organisation, invitation.organisation_id)
    assert organisation is not None  # foreign key
    user = await create_user(
        session,
        None,
        organisation=organisation,
        email=invitation.email,
        name=name,
        password=password,
        role=invitation.role,
    )
    invitation.accepted_at = utcnow()
    await audit.record(session, _self_actor(user), "invitation.accept", "invitation", invitation.id)
    return user


# --- password reset -------------------------------------------------------------------------------


async def request_password_reset(session: AsyncSession, settings: Settings, email: str, ip: str) -> None:
    """Always the same outcome for the caller; a link is sent only to an active account, at most
    `ACCOUNT_MAILS_PER_HOUR` an hour (a further request is recorded in the audit trail and sends nothing)."""
    user = await user_by_email(session, email)
    if user is None or not user.active:
        return
    await _send_link(
        session,
        settings,
        user,
        ip,
        kind="reset",
        table=PasswordReset,
        validity=PASSWORD_RESET_VALIDITY,
        actions=("password.reset_throttled", "password.reset_requested"),
        path="/password/reset",
        key="password-reset",
        mail=lambda link: (
            _("Reset your password"),
            _(
                "Set a new password within one hour: %(link)s\nIf you did not ask for this, ignore this message.",
                link=link,
            ),
        ),
    )


async def _send_link(
    session: AsyncSession,
    settings: Settings,
    user: User,
    ip: str,
    *,
    kind: str,
    table: type[PasswordReset] | type[EmailVerification],
    validity: timedelta,
    actions: tuple[str, str],
    path: str,
    key: str,
    mail: Callable[[str], tuple[str, str]],
) -> None:
    """A fresh single-use link mailed to the user (only its hash kept, in `table`, valid for `validity`), at most
    `ACCOUNT_MAILS_PER_HOUR` an hour per address and kind; `actions` are the audit events of a throttled and a
    sent link; `mail(link)` gives the subject and the body."""
    actor = SystemActor(email=user.email, user_id=user.id, organisation_id=user.organisation_id, ip=ip)
    throttled, sent = actions
    if not await _may_mail(session, user.email, kind):
        await audit.record(session, actor, throttled, "user", user.id)
        return
    raw = new_token()
    link = table(user_id=row_id(user), token_hash=token_hash(raw), expires_at=utcnow() + validity)
    session.add(link)
    await session.flush()
    await audit.record(session, actor, sent, "user", user.id)
    subject, body = mail(f"{settings.base_url}{path}/{raw}")
    await outbox.send_email(session, user.email, subject, body, idempotency_key=f"{key}-{link.id}")


async def open_password_reset(session: AsyncSession, raw: str) -> PasswordReset:
    reset = await session.scalar(sa.select(PasswordReset).where(col(PasswordReset.token_hash) == token_hash(raw)))
    if reset is None or reset.used_at is not None or reset.expires_at < utcnow():
        raise NotFound(_("This reset link is not valid: it was used already, has expired, or never existed."))
    return reset


async def reset_password(session: AsyncSession, settings: Settings, raw: str, password: str, ip: str) -> User:
    """The link went to the mailbox, so a completed reset also confirms an address not yet confirmed."""
    reset = await open_password_reset(session, raw)
    user = await session.get(User, reset.user_id)
    assert user is not None  # foreign key
    actor = SystemActor(email=user.email, user_id=user.id, organisation_id=user.organisation_id, ip=ip)
    await set_password(session, user, password, actor=actor)  # ends every open link, this one too
    reset.used_at = utcnow()
    if user.email_verified_at is None:
        await _confirm_address(session, settings, user, actor)
    return user


async def set_password(session: AsyncSession, user: User, password: str, *, actor: Principal | SystemActor) -> None:
    """A new password ends every login session of the user, every reset link still open and every API token."""
    check_password(password, email=user.email, name=user.name)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    now = utcnow()
    await end_all_sessions(session, row_id(user))
    ended_resets = await changed_rows(
        session,
        sa.update(PasswordReset)
        .where(
            col(PasswordReset.user_id) == user.id,
            col(PasswordReset.used_at).is_(None),
            col(PasswordReset.expires_at) > now,
        )
        .values(expires_at=now),
    )
    revoked = await revoke_all_tokens(session, row_id(user))
    await audit.record(
        session,
        actor,
        "password.change",
        "user",
        user.id,
        {"reset_links_ended": ended_resets, "api_keys_revoked": revoked},
    )


# --- self-registration ----------------------------------------------------------------------------

PHONE_PATTERN = re.compile(r"^\+?[0-9][0-9()\-\s]{5,38}[0-9]$")


def valid_phone(phone: str) -> bool:
    return bool(PHONE_PATTERN.match(phone.strip()))


async def register_provider(
    session: AsyncSession,
    settings: Settings,
    *,
    organisation_name: str,
    registration_number: str,
    contact_email: str,
    contact_phone: str,
    is_sme: bool,
    name: str,
    email: str,
    password: str,
    ip: str,
) -> User | None:
    """A provider organisation and its first user, an administrator whose address is still to be confirmed.

    When the address has an account already, nothing is created and the address is told so by mail; the
    caller answers the same either way (None then). A registered business number is refused as before:
    organisations are public.
    """
    errors: dict[str, str] = {}
    if not valid_business_number(registration_number):
        errors["registration_number"] = _(
            "Enter the 10-digit business registration number; its last digit is a check digit."
        )
    if not valid_email(normalise_email(contact_email)):
        errors["contact_email"] = _("Enter an address like name@example.go.kr.")
    if not valid_phone(contact_phone):
        errors["contact_phone"] = _("Enter a telephone number such as 02-123-4567.")
    if not valid_email(normalise_email(email)):
        errors["email"] = _("Enter an address like name@example.go.kr.")
    try:
        check_password(password, email=email, name=name)
    except Invalid as exc:
        errors.update(exc.errors)
    if errors:
        raise Invalid(_("Please correct: %(fields)s.", fields=", ".join(errors)), errors=errors)
    email = normalise_email(email)
    if await session.scalar(
        sa.select(col(Organisation.id)).where(
            col(Organisation.kind) == OrganisationKind.provider,
            col(Organisation.registration_number) == normalise_business_number(registration_number),
        )
    ):
        raise Conflict(
            _("An organisation with this registration number is already registered."),
            errors={"registration_number": _("Already registered.")},
        )
    existing = await user_by_email(session, email)
    if existing is not None:
        await _tell_existing_account(session, settings, existing, password, ip)
        return None
    actor = SystemActor(email=email, ip=ip)
    organisation = await create_organisation(
        session,
        actor,
        kind=OrganisationKind.provider,
        name=organisation_name,
        registration_number=registration_number,
        contact_email=normalise_email(contact_email),
        contact_phone=contact_phone,
        is_sme=is_sme,
    )
    user = await create_user(
        session,
        None,
        organisation=organisation,
        email=email,
        name=name,
        password=password,
        role=MemberRole.admin,
        verified=False,
    )
    await _send_confirmation(session, settings, user, ip)
    return user


async def register_agency_user(
    session: AsyncSession, settings: Settings, *, name: str, email: str, password: str, ip: str
) -> User | None:
    """Join an agency as a buyer: only with an address at a domain an operator approved for it, and only once
    the address is confirmed. An address with an account already is told so by mail instead (None)."""
    email = normalise_email(email)
    if not valid_email(email):
        raise Invalid(
            _("The e-mail address is not valid."), errors={"email": _("Enter an address like name@example.go.kr.")}
        )
    domain = email.rsplit("@", 1)[1]
    organisation = await session.scalar(
        sa.select(Organisation)
        .join(AgencyDomain, col(AgencyDomain.organisation_id) == col(Organisation.id))
        .where(
            col(AgencyDomain.domain) == domain,
            col(Organisation.kind) == OrganisationKind.agency,
            col(Organisation.active).is_(True),
        )
    )
    if organisation is None:
        raise Invalid(
            _("Addresses at %(domain)s cannot register themselves.", domain=domain),
            errors={
                "email": _(
                    "%(domain)s is not an approved agency domain. Ask your agency's administrator for an invitation.",
                    domain=domain,
                )
            },
        )
    check_password(password, email=email, name=name)
    existing = await user_by_email(session, email)
    if existing is not None:
        await _tell_existing_account(session, settings, existing, password, ip)
        return None
    user = await create_user(
        session, None, organisation=organisation, email=email, name=name, password=password, verified=False
    )
    await _send_confirmation(session, settings, user, ip)
    return user


async def _tell_existing_account(session: AsyncSession, settings: Settings, user: User, password: str, ip: str) -> None:
    """Someone registered with an address that has an account: the mailbox is told, the answer says nothing."""
    hash_password(password)  # the same work as creating an account, so the answer takes as long
    actor = SystemActor(email=user.email, user_id=user.id, organisation_id=user.organisation_id, ip=ip)
    mail = await _may_mail(session, user.email, "exists")
    if mail is None:
        await audit.record(session, actor, "registration.existing_address_throttled", "user", user.id)
        return
    await audit.record(session, actor, "registration.existing_address", "user", user.id)
    await outbox.send_email(
        session,
        user.email,
        _("You already have an account on the Cloud Service Marketplace"),
        _(
            "Someone, perhaps you, tried to register on the Cloud Service Marketplace with this address, but you already "
            "have an account. Sign in: %(login)s\nForgotten your password? Set a new one: %(forgot)s\n"
            "If this was not you, ignore this message: nothing was changed.",
            login=f"{settings.base_url}/login",
            forgot=f"{settings.base_url}/password/forgot",
        ),
        idempotency_key=f"account-exists-{mail.id}",
    )


# --- address confirmation -------------------------------------------------------------------------


async def _send_confirmation(session: AsyncSession, settings: Settings, user: User, ip: str) -> None:
    """A fresh single-use link to confirm the address, valid for `VERIFICATION_VALIDITY`; throttled per address."""
    await _send_link(
        session,
        settings,
        user,
        ip,
        kind="confirm",
        table=EmailVerification,
        validity=VERIFICATION_VALIDITY,
        actions=("user.confirmation_throttled", "user.confirmation_sent"),
        path="/register/confirm",
        key="email-verification",
        mail=lambda link: (
            _("Confirm your e-mail address for the Cloud Service Marketplace"),
            _(
                "Open this link within 24 hours to confirm your address and finish registering: %(link)s\n"
                "If you did not register, ignore this message: the account will not be usable.",
                link=link,
            ),
        ),
    )


async def resend_confirmation(session: AsyncSession, settings: Settings, email: str, ip: str) -> None:
    """A new link for an account still to be confirmed; the caller answers the same whatever the address."""
    user = await user_by_email(session, email)
    if user is None or not user.active or user.email_verified_at is not None:
        return
    await _send_confirmation(session, settings, user, ip)


async def confirm_address(session: AsyncSession, settings: Settings, raw: str, ip: str) -> User:
    """Open a confirmation link: the address is confirmed, every link of the user is spent."""
    verification = await session.scalar(
        sa.select(EmailVerification).where(col(EmailVerification.token_hash) == token_hash(raw))
    )
    user = await session.get(User, verification.user_id) if verification else None
    if (
        verification is None
        or user is None
        or verification.used_at is not None
        or verification.expires_at < utcnow()
        or user.email_verified_at is not None
        or not user.active
    ):
        raise NotFound(
            _(
                "This confirmation link is not valid: it was used already, has expired, or never existed. You can ask for a new one."
            )
        )
    await _confirm_address(
        session,
        settings,
        user,
        SystemActor(email=user.email, user_id=user.id, organisation_id=user.organisation_id, ip=ip),
    )
    return user


async def _confirm_address(session: AsyncSession, settings: Settings, user: User, actor: SystemActor) -> None:
    """The address is proven: the account may sign in, and the organisation's administrators learn of the newcomer."""
    now = utcnow()
    user.email_verified_at = now
    await session.execute(
        sa.update(EmailVerification)
        .where(col(EmailVerification.user_id) == user.id, col(EmailVerification.used_at).is_(None))
        .values(used_at=now)
    )
    await audit.record(session, actor, "user.confirm_email", "user", user.id, {"email": user.email})
    await _tell_administrators(session, settings, user)


async def _tell_administrators(session: AsyncSession, settings: Settings, newcomer: User) -> None:
    organisation = await session.get(Organisation, newcomer.organisation_id)
    assert organisation is not None  # foreign key
    admins = (
        await session.scalars(
            sa.select(User)
            .where(
                col(User.organisation_id) == organisation.id,
                col(User.role) == MemberRole.admin,
                col(User.active).is_(True),
                col(User.email_verified_at).is_not(None),
                col(User.id) != newcomer.id,
            )
            .order_by(col(User.id))
        )
    ).all()
    for admin in admins:
        await outbox.send_email(
            session,
            admin.email,
            _("%(name)s joined %(org)s on the Cloud Service Marketplace", name=newcomer.name, org=organisation.name),
            _(
                "%(name)s (%(email)s) registered themselves and is now a member of %(org)s: "
                "they see its contracts and invoices. If you do not know them, remove them on your organisation's page: %(link)s",
                name=newcomer.name,
                email=newcomer.email,
                org=organisation.name,
                link=f"{settings.base_url}/organisation",
            ),
            idempotency_key=f"member-joined-{newcomer.id}-{admin.id}",
        )


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


async def change_password(
    session: AsyncSession, principal: Principal, *, current_password: str, new_password: str
) -> User:
    """The current password must be given again; every session of the user ends (the caller starts a fresh one)."""
    user = await _own_user(session, principal)
    if not verify_password(user.password_hash, current_password):
        raise Invalid(
            _("The current password is wrong."), errors={"current_password": _("This is not your current password.")}
        )
    await set_password(session, user, new_password, actor=principal)
    return user


# --- API tokens -----------------------------------------------------------------------------------

TOKEN_SHOWN_PREFIX = 12  # "mkt_" and 8 random characters, enough to tell tokens apart


async def create_token(
    session: AsyncSession,
    principal: Principal,
    name: str,
    lifetime_days: int = TOKEN_LIFETIME_DEFAULT.days,
) -> tuple[ApiToken, str]:
    """A new API token for the principal, valid for `lifetime_days` (1 to 365); the raw token is returned once
    and stored only as its SHA-256."""
    name = name.strip()
    if not name or len(name) > 80:
        raise Invalid(_("Give the token a name."), errors={"name": _("Between 1 and %(n)s characters.", n=80)})
    if not 1 <= lifetime_days <= TOKEN_LIFETIME_MAX_DAYS:
        raise Invalid(
            _("A token lives between 1 and %(n)s days.", n=TOKEN_LIFETIME_MAX_DAYS),
            errors={"lifetime_days": _("Between 1 and %(n)s days.", n=TOKEN_LIFETIME_MAX_DAYS)},
        )
    raw = new_token(TOKEN_PREFIX)
    token = ApiToken(
        user_id=principal.user_id,
        name=name,
        token_hash=token_hash(raw),
        prefix=raw[:TOKEN_SHOWN_PREFIX],
        expires_at=utcnow() + timedelta(days=lifetime_days),
    )
    session.add(token)
    await session.flush()
    await audit.record(
        session,
        principal,
        "token.create",
        "api_token",
        token.id,
        {"name": name, "prefix": token.prefix, "expires_at": token.expires_at.isoformat()},
    )
    return token, raw


async def list_tokens(session: AsyncSession, principal: Principal) -> list[ApiToken]:
    rows = await session.scalars(
        sa.select(ApiToken)
        .where(col(ApiToken.user_id) == principal.user_id)
        .order_by(col(ApiToken.created_at).desc(), col(ApiToken.id).desc())
    )
    return list(rows.all())


async def get_own_token(session: AsyncSession, principal: Principal, token_id: int) -> ApiToken:
    """Only the principal's own tokens; any other id answers 404."""
    token = await session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(_("No such token."))
    if token.user_id != principal.user_id:
        raise Refused(_("No such token."))
    return token


async def revoke_token(session: AsyncSession, principal: Principal, token_id: int) -> ApiToken:
    token = await get_own_token(session, principal, token_id)
    if token.revoked_at is not None:
        raise Conflict(_("This token was revoked already."))
    token.revoked_at = utcnow()
    await audit.record(
        session, principal, "token.revoke", "api_token", token.id, {"name": token.name, "prefix": token.prefix}
    )
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
    session: AsyncSession,
    principal: Principal,
    *,
    offset: int = 0,
    limit: int | None = None,
) -> OrganisationOverview:
    """The principal's organisation, a slice of its members (all when `limit` is None) and its open invitations."""
    organisation = await session.get(Organisation, principal.organisation_id)
    if organisation is None:
        raise NotFound(_("No such organisation."))
    in_organisation = col(User.organisation_id) == organisation.id
    total = await session.scalar(sa.select(sa.func.count()).select_from(User).where(in_organisation))
    query = sa.select(User).where(in_organisation).order_by(col(User.name), col(User.id)).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    members = list((await session.scalars(query)).all())
    invitations = list(
        (
            await session.scalars(
                sa.select(Invitation)
                .where(
                    col(Invitation.organisation_id) == organisation.id,
                    col(Invitation.accepted_at).is_(None),
                    col(Invitation.expires_at) > utcnow(),
                )
                .order_by(col(Invitation.created_at).desc(), col(Invitation.id).desc())
            )
        ).all()
    )
    return OrganisationOverview(organisation, members, int(total or 0), invitations, can_manage_members(principal))


async def invite_member(
    session: AsyncSession, settings: Settings, principal: Principal, *, email: str, role: str | None
) -> Invitation:
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
    if user.removed_at is not None:
        raise Conflict(
            _(
                "%(name)s was removed from the organisation; only the marketplace operators can restore the account.",
                name=user.name,
            )
        )
    if user.active == active:
        raise Conflict(
            _("%(name)s is already active.", name=user.name)
            if active
            else _("%(name)s is already disabled.", name=user.name)
        )
    user.active = active
    if not active:
        await end_all_sessions(session, row_id(user))
    await audit.record(
        session, principal, "user.enable" if active else "user.disable", "user", user.id, {"email": user.email}
    )
    return user


async def member_to_remove(session: AsyncSession, principal: Principal, user_id: int) -> User:
    """The member an administrator is about to remove (not themselves)."""
    _check_manager(principal)
    user = await _member(session, principal, user_id)
    if user.id == principal.user_id:
        raise Conflict(_("You cannot remove yourself from the organisation. Ask another administrator."))
    return user


async def remove_member(session: AsyncSession, principal: Principal, user_id: int) -> User:
    """Remove a member from the organisation for good: they are disabled, signed out everywhere, and every API
    token of theirs is revoked; only the marketplace operators can restore the account."""
    user = await member_to_remove(session, principal, user_id)
    if user.removed_at is not None:
        raise Conflict(_("%(name)s was removed already.", name=user.name))
    user.active = False
    user.removed_at = utcnow()
    await end_all_sessions(session, row_id(user))
    revoked = await revoke_all_tokens(session, row_id(user))
    await audit.record(
        session, principal, "user.remove", "user", user.id, {"email": user.email, "api_keys_revoked": revoked}
    )
    return user


async def change_member_role(session: AsyncSession, principal: Principal, user_id: int, *, role: str) -> User:
    """Another member's role, one of the organisation's kind. A member who no longer signs loses their signing limit."""
    _check_manager(principal)
    check_role(principal.organisation_kind, role)
    user = await _member(session, principal, user_id)
    if user.id == principal.user_id:
        raise Conflict(_("You cannot change your own role. Ask another administrator."))
    if user.removed_at is not None:
        raise Conflict(_("%(name)s was removed from the organisation.", name=user.name))
    if user.role == role:
        raise Conflict(_("%(name)s has this role already.", name=user.name))
    previous, user.role = user.role, role
    summary: dict[str, object] = {"email": user.email, "from": previous, "to": role}
    if user.signing_limit and not signs_with_limit(principal.organisation_kind, role):
        summary["signing_limit"] = {"from": user.signing_limit, "to": 0}
        user.signing_limit = 0
    await audit.record(session, principal, "user.role_change", "user", user.id, summary)
    return user


MAX_SIGNING_LIMIT = MONEY_MAX  # won; as much as any contract the marketplace can price


async def set_signing_limit(session: AsyncSession, principal: Principal, user_id: int, *, amount: int) -> User:
    """An agency administrator sets how much (total value with VAT, in won) another signer or administrator may sign."""
    _check_manager(principal)
    if not principal.is_kind(OrganisationKind.agency):
        raise Forbidden(_("Signing limits are an agency's: a provider's signers and administrators sign without one."))
    if not 0 <= amount <= MAX_SIGNING_LIMIT:
        raise Invalid(
            _("Please correct: %(fields)s.", fields="signing_limit"),
            errors={"signing_limit": _("A whole number of won from 0 to %(n)s.", n=number(MAX_SIGNING_LIMIT))},
        )
    user = await _member(session, principal, user_id)
    if user.id == principal.user_id:
        raise Conflict(_("You cannot set your own signing limit. Ask another administrator."))
    if not signs_with_limit(principal.organisation_kind, user.role):
        raise Conflict(
            _("%(name)s is a buyer and cannot sign: make them a signer first.", name=user.name),
            errors={"signing_limit": _("Buyers do not sign.")},
        )
    if user.signing_limit == amount:
        raise Conflict(_("%(name)s's signing limit is ₩%(amount)s already.", name=user.name, amount=number(amount)))
    previous, user.signing_limit = user.signing_limit, amount
    await audit.record(
        session, principal, "user.signing_limit", "user", user.id, {"email": user.email, "from": previous, "to": amount}
    )
    return user


async def set_password_signing(session: AsyncSession, principal: Principal, *, allowed: bool) -> Organisation:
    """An administrator decides whether the organisation's members may sign contracts by re-entering their
    password; when not, only a passkey or a registered signing key signs."""
    _check_manager(principal)
    organisation = await session.get(Organisation, principal.organisation_id)
    assert organisation is not None  # the principal's own organisation
    if organisation.password_signing != allowed:
        organisation.password_signing = allowed
        await audit.record(
            session,
            principal,
            "organisation.signing_policy",
            "organisation",
            organisation.id,
            {"password_signing": allowed},
        )
    return organisation
