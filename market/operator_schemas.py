"""Input and read models of the operator (secretariat) pages and their /api/operator twins.

Input models check presence, size and shape; the rules (institution codes, domain syntax, terms,
who may be appointed) live in `market.operators`. Query models take the raw strings of a GET form,
so a bad filter answers 422 naming the field like any other form.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StringConstraints

from market.i18n import _
from market.schemas import RowId

CreatableKind = Literal["agency", "committee", "operator"]  # providers register themselves
Kind = Literal["agency", "provider", "committee", "operator"]
OrganisationSort = Literal["name", "newest"]
AppointmentStatus = Literal["upcoming", "current", "ended", "cancelled"]


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _present(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(_("This field is required."))
    return value


def _required(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(_("This field is required."))
    return value


def _stripped(value: str) -> str:
    return value.strip()


BlankIsNone = BeforeValidator(_blank_is_none)


def _ticked(value: Any) -> Any:
    """A checkbox or query flag: absent or blank is no; on, true, yes and 1 are yes."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in {"", "0", "false", "no", "off"}:
            return False
        if text in {"1", "true", "yes", "on"}:
            return True
    return value


Present = BeforeValidator(_present)
RequiredText = AfterValidator(_required)
OrganisationName = Annotated[str, StringConstraints(max_length=200), RequiredText]
Email = Annotated[str, StringConstraints(max_length=254), RequiredText]
Domain = Annotated[str, StringConstraints(max_length=253), RequiredText]
Id = Annotated[RowId, Present]


Stripped = AfterValidator(_stripped)
# Stripped text, possibly empty; or (the optional ones) None when left blank.
RegistrationNumber: TypeAlias = Annotated[
    Annotated[str, StringConstraints(max_length=20), Stripped] | None, BlankIsNone
]
ContactEmail: TypeAlias = Annotated[Annotated[str, StringConstraints(max_length=254), Stripped] | None, BlankIsNone]
SearchText: TypeAlias = Annotated[str, StringConstraints(max_length=100), Stripped]
EmailFilter: TypeAlias = Annotated[str, StringConstraints(max_length=254), Stripped]
ActionFilter: TypeAlias = Annotated[str, StringConstraints(max_length=80), Stripped]
ObjectTypeFilter: TypeAlias = Annotated[str, StringConstraints(max_length=40), Stripped]
ObjectIdFilter: TypeAlias = Annotated[str, StringConstraints(max_length=64), Stripped]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- input ----------------------------------------------------------------------------------------


class OrganisationCreate(_Input):
    """An agency needs its 7-digit institution code; committee and operator organisations only a name."""

    kind: CreatableKind
    name: OrganisationName
    registration_number: RegistrationNumber = None
    contact_email: ContactEmail = None


class OrganisationQuery(_Input):
    kind: Annotated[Kind | None, BlankIsNone] = None
    active: Annotated[bool | None, BlankIsNone] = None
    q: SearchText = ""
    sort: Annotated[OrganisationSort, BeforeValidator(lambda v: _blank_is_none(v) or "name")] = "name"
    page: Annotated[int | None, BlankIsNone] = None


class DomainCreate(_Input):
    domain: Domain
    organisation_id: Id


class AppointmentCreate(_Input):
    """Appoint a committee member by e-mail address; without an account the person is invited first."""

    email: Email
    organisation_id: Id
    starts_on: Annotated[date, Present]
    ends_on: Annotated[date, Present]
    is_chair: bool = False


class AuditQuery(_Input):
    """The audit log's filters: dates are local calendar days, both ends included."""

    since: Annotated[date | None, BlankIsNone] = None
    until: Annotated[date | None, BlankIsNone] = None
    organisation_id: Annotated[RowId | None, BlankIsNone] = None
    actor: EmailFilter = ""
    action: ActionFilter = ""
    object_type: ObjectTypeFilter = ""
    object_id: ObjectIdFilter = ""
    security: Annotated[bool, BeforeValidator(_ticked)] = False  # security events only (`security.*`)
    page: Annotated[int | None, BlankIsNone] = None


class PageQuery(_Input):
    page: Annotated[int | None, BlankIsNone] = None


# --- read models ----------------------------------------------------------------------------------


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class OrganisationRead(_Read):
    id: int
    kind: str
    name: str
    registration_number: str | None
    contact_email: str
    active: bool
    created_at: datetime
    user_count: int = 0


class UserRead(_Read):
    id: int
    email: str
    name: str
    organisation_id: int
    role: str
    active: bool
    last_login_at: datetime | None
    created_at: datetime


class DomainRead(_Read):
    id: int
    domain: str
    organisation_id: int
    organisation_name: str
    created_at: datetime


class AppointmentRead(_Read):
    id: int
    user_id: int
    email: str
    name: str
    organisation_id: int
    organisation_name: str
    starts_on: date
    ends_on: date
    is_chair: bool
    status: AppointmentStatus
    created_at: datetime

    @property
    def cancelled(self) -> bool:
        """Ended before it started."""
        return self.status == "cancelled"

    @property
    def may_end_early(self) -> bool:
        return self.status in ("current", "upcoming")


class PendingInvitationRead(_Read):
    id: int
    email: str
    organisation_id: int
    organisation_name: str
    created_at: datetime
    expires_at: datetime


class AppointmentResult(BaseModel):
    """`appointed`: the term is recorded. `invited`: no account existed; appoint them after they accept."""

    status: Literal["appointed", "invited"]
    appointment: AppointmentRead | None = None
    invitation: PendingInvitationRead | None = None


class AuditEventRead(_Read):
    seq: int
    at: datetime
    actor_id: int | None
    actor_email: str
    organisation_id: int | None
    organisation_name: str
    action: str
    object_type: str
    object_id: str
    summary: dict[str, Any]
    ip: str
    hash: str

    @classmethod
    def of(cls, event: Any, organisation_name: str) -> AuditEventRead:
        try:
            summary = json.loads(event.summary or "{}")
        except ValueError:
            summary = {"text": event.summary}
        if not isinstance(summary, dict):
            summary = {"value": summary}
        return cls(
            seq=event.seq,
            at=event.at,
            actor_id=event.actor_id,
            actor_email=event.actor_email,
            organisation_id=event.organisation_id,
            organisation_name=organisation_name,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            summary=summary,
            ip=event.ip,
            hash=event.hash,
        )


class Listing(BaseModel):
    page: int
    pages: int
    total: int


class OrganisationList(Listing):
    items: list[OrganisationRead]


class DomainList(Listing):
    items: list[DomainRead]


class AppointmentList(Listing):
    items: list[AppointmentRead]
    pending_invitations: list[PendingInvitationRead]
    members_without_term: list[UserRead]


class AuditEventList(Listing):
    items: list[AuditEventRead]


class OrganisationDetails(BaseModel):
    organisation: OrganisationRead
    users: list[UserRead]
    domains: list[DomainRead]
