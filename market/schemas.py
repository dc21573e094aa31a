"""Input and read models of the shell's account, organisation and token pages and their /api twins.

Input models check presence, size and shape; the rules (check digits, password strength, approved
domains, who may change whom) live in `market.accounts`. Read models never carry password or token
hashes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from market.i18n import _

# Ids are the databases' INTEGER (32 bits on PostgreSQL): a larger number names no row, and must not reach a
# query, where SQLite and asyncpg refuse to bind it.
ID_RANGE = range(-(2**31), 2**31)
RowId = Annotated[int, Field(ge=ID_RANGE.start, le=ID_RANGE.stop - 1)]
# The largest number an INTEGER column holds on both databases (ids, quantities): a value beyond it must be
# refused with a message before it reaches the database.
INTEGER_MAX = ID_RANGE.stop - 1
# The largest amount of money, in won (KRW has no minor unit), the marketplace takes or computes: plan and unit
# prices, contract totals, budgets, payments, signing limits and approval thresholds. Money columns are BIGINT;
# this is far inside them, and inside JavaScript's safe integers, so a JSON number carries it exactly.
MONEY_MAX = 10**15 - 1

# Which of these a member may hold depends on the organisation's kind (market.models.ROLES_BY_KIND).
Role = Literal["member", "admin", "buyer", "signer"]
Language = Literal["ko", "en"]


def _required(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(_("This field is required."))
    return value


def _present(value: str) -> str:
    if not value:
        raise ValueError(_("This field is required."))
    return value


def _optional(value: str) -> str:
    return value.strip()


# Stripped text that must not be empty, at most n characters.
Name = Annotated[str, StringConstraints(max_length=120), AfterValidator(_required)]
OrganisationName = Annotated[str, StringConstraints(max_length=200), AfterValidator(_required)]
Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(_required)]
BusinessNumber = Annotated[str, StringConstraints(max_length=20), AfterValidator(_required)]
Phone = Annotated[str, StringConstraints(max_length=40), AfterValidator(_required)]
TokenName = Annotated[str, StringConstraints(max_length=80), AfterValidator(_required)]
# Passwords are taken as typed (no stripping); their strength is checked by the service.
Password = Annotated[str, StringConstraints(max_length=200), AfterValidator(_present)]


def _matches_password(value: str, info: ValidationInfo) -> str:
    if "password" in info.data and value != info.data["password"]:
        raise ValueError(_("The two passwords do not match."))
    return value


# A new password typed twice: declare `password` before `password_confirm`, then attach this check.
PasswordConfirm = Annotated[str, StringConstraints(max_length=200)]


def _confirmed() -> Callable[[str, ValidationInfo], str]:
    return field_validator("password_confirm")(_matches_password)


# --- pages ----------------------------------------------------------------------------------------


class ProviderRegistration(BaseModel):
    organisation_name: OrganisationName
    registration_number: BusinessNumber
    contact_email: Email
    contact_phone: Phone
    is_sme: bool
    name: Name
    email: Email
    password: Password
    password_confirm: PasswordConfirm
    _confirm = _confirmed()


class AgencyRegistration(BaseModel):
    name: Name
    email: Email
    password: Password
    password_confirm: PasswordConfirm
    _confirm = _confirmed()


class InvitationAcceptance(BaseModel):
    name: Name
    password: Password
    password_confirm: PasswordConfirm
    _confirm = _confirmed()


class PasswordForgot(BaseModel):
    email: Email


class PasswordResetForm(BaseModel):
    password: Password
    password_confirm: PasswordConfirm
    _confirm = _confirmed()


class PasswordChange(BaseModel):
    current_password: Password
    password: Password
    password_confirm: PasswordConfirm
    _confirm = _confirmed()


class ProfileUpdate(BaseModel):
    name: Name
    language: Language


class TokenForm(BaseModel):
    """The account page's token form (its field is `token_name`: the profile form has a `name`)."""

    token_name: TokenName
    lifetime_days: int = 90


class ConfirmationResend(BaseModel):
    email: Email


class RoleChange(BaseModel):
    """Another member's new role: an agency's buyer, signer or admin; a provider's signer or admin."""

    role: Role


class SigningLimitChange(BaseModel):
    """An agency signer's or administrator's signing limit: the largest total value with VAT, in won, they may sign."""

    signing_limit: int = Field(ge=0, le=MONEY_MAX)

    @field_validator("signing_limit", mode="before")
    @classmethod
    def _digits(cls, value: object) -> object:
        return value.replace(",", "").replace("₩", "").strip() if isinstance(value, str) else value


# --- /api input -----------------------------------------------------------------------------------


class TokenCreate(BaseModel):
    """A new API token: its name, which tells your tokens apart, and how many days it works (1 to 365, default 90)."""

    model_config = ConfigDict(extra="forbid")

    name: TokenName
    lifetime_days: int = Field(default=90, description="Days the token works, from 1 to 365.")


class SigningKeyCreate(BaseModel):
    """An Ed25519 public key (PEM, or the 32 raw bytes in base64) that a program signs contracts with."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    public_key: str = Field(min_length=1, max_length=2000)


class PasskeyCreate(BaseModel):
    """A passkey: a name, the `nonce` of `POST /api/passkeys/options`, and what `navigator.credentials.create` answered."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    nonce: str = Field(min_length=1, max_length=64)
    credential: dict[str, Any] | str


class SigningPolicy(BaseModel):
    """Whether the organisation's members may sign contracts by re-entering their password (otherwise only with a
    passkey or a signing key)."""

    model_config = ConfigDict(extra="forbid")

    password_signing: bool


class InvitationCreate(BaseModel):
    """Invite someone into your organisation by e-mail with one of its kind's roles (agency: buyer, signer or admin;
    provider: signer or admin); without one, an agency's buyer or a provider's signer."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    role: Role | None = None


# --- read models ----------------------------------------------------------------------------------


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class OrganisationBrief(_Read):
    id: int
    kind: str
    name: str


class Me(_Read):
    id: int
    email: str
    name: str
    role: Role
    language: Language | None
    organisation: OrganisationBrief
    via_token: bool


class TokenRead(_Read):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime


class TokenCreated(TokenRead):
    token: str  # the only time the raw token is ever returned


class SigningKeyRead(_Read):
    id: int
    kind: str  # passkey or ed25519
    name: str
    credential_id: str
    algorithm: int
    created_at: datetime
    last_used_at: datetime | None
    removed_at: datetime | None


class MemberRead(_Read):
    id: int
    name: str
    email: str
    role: Role
    signing_limit: int  # won; agency signers and administrators sign contracts up to this total value with VAT
    active: bool
    removed_at: datetime | None
    email_verified_at: datetime | None
    last_login_at: datetime | None


class InvitationRead(_Read):
    id: int
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime


class OrganisationRead(_Read):
    id: int
    kind: str
    name: str
    registration_number: str | None
    contact_email: str
    contact_phone: str
    is_sme: bool
    password_signing: bool
    members: list[MemberRead]
    invitations: list[InvitationRead]
    can_manage_members: bool
