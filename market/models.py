"""The shell's tables: organisations, users, login sessions, tokens, invitations, audit events, outbox."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from market.database import utc_field, utcnow


class OrganisationKind(StrEnum):
    agency = "agency"
    provider = "provider"
    committee = "committee"
    operator = "operator"


class MemberRole(StrEnum):
    member = "member"  # committee and operator staff
    admin = "admin"  # manages the organisation's members (an agency's also its budgets, limits and approval threshold)
    buyer = "buyer"  # agency: searches, runs projects, drafts and sends contracts; never signs
    signer = "signer"  # agency: signs up to their signing limit and approves drafts; provider: signs


# The roles a member of each kind of organisation can hold; the first is what a new member gets unless told.
ROLES_BY_KIND: dict[str, tuple[str, ...]] = {
    OrganisationKind.agency: (MemberRole.buyer, MemberRole.signer, MemberRole.admin),
    OrganisationKind.provider: (MemberRole.signer, MemberRole.admin),
    OrganisationKind.committee: (MemberRole.member, MemberRole.admin),
    OrganisationKind.operator: (MemberRole.member, MemberRole.admin),
}


def roles_for(kind: str) -> tuple[str, ...]:
    return ROLES_BY_KIND.get(kind, (MemberRole.member, MemberRole.admin))


def default_role(kind: str) -> str:
    return roles_for(kind)[0]


class Organisation(SQLModel, table=True):
    __tablename__ = "organisation"
    __table_args__ = (sa.UniqueConstraint("kind", "registration_number", name="uq_organisation_registration"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16, index=True)
    name: str = Field(max_length=200)
    # providers: the 10-digit business registration number; agencies: the 7-digit institution code
    registration_number: str | None = Field(default=None, max_length=20)
    contact_email: str = Field(default="", max_length=254)
    contact_phone: str = Field(default="", max_length=40)
    address: str = Field(default="", max_length=300)
    website: str = Field(default="", max_length=300)
    is_sme: bool = Field(default=False)
    active: bool = Field(default=True)
    # May members sign contracts by re-entering their password? Otherwise only with a passkey or a signing key.
    password_signing: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    created_at: datetime = utc_field(default_factory=utcnow)


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)  # stored lower-cased: unique regardless of case
    name: str = Field(max_length=120)
    password_hash: str = Field(max_length=200)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    role: str = Field(default=MemberRole.member, max_length=16)
    # An agency's signer (or administrator) signs contracts whose total value with VAT is at most this many won;
    # set by another administrator of the agency. 0: signs nothing. Providers' members sign without a limit.
    signing_limit: int = Field(default=0, sa_type=sa.BigInteger)
    active: bool = Field(default=True)
    language: str | None = Field(default=None, max_length=5)
    last_login_at: datetime | None = utc_field(default=None, nullable=True)
    # None until the link e-mailed at self-registration is opened: such an account cannot sign in
    email_verified_at: datetime | None = utc_field(default=None, nullable=True)
    # an administrator removed the member from the organisation (the account is disabled for good)
    removed_at: datetime | None = utc_field(default=None, nullable=True)
    password_changed_at: datetime = utc_field(default_factory=utcnow)
    created_at: datetime = utc_field(default_factory=utcnow)


class LoginSession(SQLModel, table=True):
    __tablename__ = "login_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    created_at: datetime = utc_field(default_factory=utcnow)
    last_seen_at: datetime = utc_field(default_factory=utcnow)
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)


TOKEN_LIFETIME_DEFAULT = timedelta(days=90)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=80)
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)  # shown in lists so a holder can tell tokens apart
    created_at: datetime = utc_field(default_factory=utcnow)
    last_used_at: datetime | None = utc_field(default=None, nullable=True)
    revoked_at: datetime | None = utc_field(default=None, nullable=True)
    expires_at: datetime = utc_field(default_factory=lambda: utcnow() + TOKEN_LIFETIME_DEFAULT)


class SigningKeyKind(StrEnum):
    passkey = "passkey"  # a WebAuthn credential of the user's authenticator (browser, phone, security key)
    ed25519 = "ed25519"  # a program's public key, for signing through the API


class SigningKey(SQLModel, table=True):
    """A key a user signs contracts with. Removing one keeps the row (signatures name it) but refuses its use."""

    __tablename__ = "signing_key"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    kind: str = Field(max_length=16)
    name: str = Field(max_length=80)
    # passkey: the WebAuthn credential id; ed25519: SHA-256 of the raw public key (both base64url)
    credential_id: str = Field(max_length=1400, index=True)
    # passkey: the COSE key as registered; ed25519: the 32 raw bytes (both base64url)
    public_key: str = Field(sa_type=sa.Text)
    algorithm: int  # COSE: -7 ES256, -8 EdDSA, -257 RS256
    sign_count: int = Field(default=0)
    created_at: datetime = utc_field(default_factory=utcnow)
    last_used_at: datetime | None = utc_field(default=None, nullable=True)
    removed_at: datetime | None = utc_field(default=None, nullable=True)


class SigningNonce(SQLModel, table=True):
    """A single-use challenge: for registering a passkey, or the nonce inside a contract's signing payload."""

    __tablename__ = "signing_nonce"

    id: int | None = Field(default=None, primary_key=True)
    nonce: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    purpose: str = Field(max_length=24)
    payload: str = Field(default="", sa_type=sa.Text)  # what is to be signed (empty for a registration)
    expires_at: datetime = utc_field()
    used_at: datetime | None = utc_field(default=None, nullable=True)
    created_at: datetime = utc_field(default_factory=utcnow)


class LoginFailure(SQLModel, table=True):
    """One failed login; throttling counts recent rows per account key and per address."""

    __tablename__ = "login_failure"

    id: int | None = Field(default=None, primary_key=True)
    account_key: str = Field(max_length=254, index=True)
    ip: str = Field(max_length=64, index=True)
    at: datetime = utc_field(default_factory=utcnow, index=True)


class PasswordReset(SQLModel, table=True):
    __tablename__ = "password_reset"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True)
    expires_at: datetime = utc_field()
    used_at: datetime | None = utc_field(default=None, nullable=True)
    created_at: datetime = utc_field(default_factory=utcnow)


class EmailVerification(SQLModel, table=True):
    """A single-use link e-mailed to a self-registered address; opening it proves the mailbox."""

    __tablename__ = "email_verification"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True)
    expires_at: datetime = utc_field()
    used_at: datetime | None = utc_field(default=None, nullable=True)
    created_at: datetime = utc_field(default_factory=utcnow)


class AccountMail(SQLModel, table=True):
    """One message about an account sent to an address (a confirmation link, a reset link, "you have an account");
    counting recent rows per address and purpose throttles them."""

    __tablename__ = "account_mail"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, index=True)
    purpose: str = Field(max_length=16)
    at: datetime = utc_field(default_factory=utcnow, index=True)


class Invitation(SQLModel, table=True):
    __tablename__ = "invitation"

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    email: str = Field(max_length=254)
    role: str = Field(default=MemberRole.member, max_length=16)
    token_hash: str = Field(max_length=64, unique=True)
    invited_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    expires_at: datetime = utc_field()
    accepted_at: datetime | None = utc_field(default=None, nullable=True)
    created_at: datetime = utc_field(default_factory=utcnow)


class AgencyDomain(SQLModel, table=True):
    """An e-mail domain an operator approved: users with addresses there may register into the agency."""

    __tablename__ = "agency_domain"

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    domain: str = Field(max_length=253, unique=True)
    created_at: datetime = utc_field(default_factory=utcnow)


class Appointment(SQLModel, table=True):
    """A committee member's term; outside it the member has no access to cases."""

    __tablename__ = "appointment"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    starts_on: date
    ends_on: date
    is_chair: bool = Field(default=False)
    created_at: datetime = utc_field(default_factory=utcnow)


class AuditEvent(SQLModel, table=True):
    """An append-only, hash-chained record of one state change."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True)
    at: datetime = utc_field(index=True)
    actor_id: int | None = Field(default=None, index=True)
    actor_email: str = Field(default="", max_length=254)
    organisation_id: int | None = Field(default=None, index=True)
    action: str = Field(max_length=80, index=True)
    object_type: str = Field(max_length=40)
    object_id: str = Field(default="", max_length=64)
    summary: str = Field(default="{}", sa_type=sa.Text)
    ip: str = Field(default="", max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class OutboxMessage(SQLModel, table=True):
    """An external action (e-mail, webhook, payment call) carried out by the worker after commit."""

    __tablename__ = "outbox_message"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40)
    payload: str = Field(sa_type=sa.Text)
    idempotency_key: str = Field(max_length=200, unique=True)
    status: str = Field(default="pending", max_length=16, index=True)
    attempts: int = Field(default=0)
    max_attempts: int = Field(default=8)
    next_attempt_at: datetime = utc_field(default_factory=utcnow, index=True)
    locked_until: datetime | None = utc_field(default=None, nullable=True)
    last_error: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = utc_field(default_factory=utcnow)
    done_at: datetime | None = utc_field(default=None, nullable=True)
