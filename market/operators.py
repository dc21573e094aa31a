"""The secretariat's work: organisations and accounts, agency e-mail domains, committee appointments, the audit log.

Every function that changes state writes its audit event in the caller's transaction.

Appointing someone who has no account yet is two steps. An `Appointment` names a user (`user_id`
is required), and a term recorded for an address that may never register would be a term without
a member. So `appoint` for an address without an account only sends the invitation into the
committee organisation (through `accounts.create_invitation`) and records no term; once the person
has accepted, the operator appoints them with the same form, and the appointments page lists the
invitations still waiting. For a user who already belongs to the committee organisation, `appoint`
records the term at once.

A term covers `starts_on` to `ends_on`, both days included, in the marketplace's time zone. Ending a
term early makes yesterday its last day; a term that had not started yet (or started today) is
cancelled, which leaves it with `ends_on` before `starts_on`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from market import accounts, audit, hooks
from market.auth import Principal, end_all_sessions
from market.database import changed_rows, row_id, utcnow
from market.errors import Conflict, Invalid, NotFound
from market.i18n import _
from market.models import AgencyDomain, Appointment, Invitation, LoginSession, Organisation, OrganisationKind, User
from market.operator_schemas import (
    AppointmentCreate,
    AppointmentList,
    AppointmentRead,
    AppointmentResult,
    AppointmentStatus,
    AuditEventList,
    AuditEventRead,
    AuditQuery,
    DomainCreate,
    DomainList,
    DomainRead,
    OrganisationCreate,
    OrganisationDetails,
    OrganisationList,
    OrganisationQuery,
    OrganisationRead,
    PendingInvitationRead,
    UserRead,
)
from market.settings import Settings
from market.web import PAGE_SIZE, Page, check_page, page_number

AUDIT_PAGE_SIZE = 50
DOMAIN_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
TOP_LEVEL = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")


# --- organisations --------------------------------------------------------------------------------

_user_count = (
    sa.select(sa.func.count(col(User.id)))
    .where(col(User.organisation_id) == col(Organisation.id))
    .correlate(Organisation)
    .scalar_subquery()
)


def _organisation_read(organisation: Organisation, user_count: int = 0) -> OrganisationRead:
    return OrganisationRead.model_validate({**organisation.model_dump(), "user_count": user_count})


async def list_organisations(session: AsyncSession, query: OrganisationQuery) -> OrganisationList:
    where: list[sa.ColumnElement[bool]] = []
    if query.kind:
        where.append(col(Organisation.kind) == query.kind)
    if query.active is not None:
        where.append(col(Organisation.active).is_(query.active))
    if query.q:
        where.append(sa.func.lower(col(Organisation.name)).contains(query.q.lower(), autoescape=True))
    total = int(await session.scalar(sa.select(sa.func.count()).select_from(Organisation).where(*where)) or 0)
    page = check_page(Page(page_number(query.page), PAGE_SIZE, total))
    order = (
        (col(Organisation.created_at).desc(), col(Organisation.id).desc())
        if query.sort == "newest"
        else (sa.func.lower(col(Organisation.name)), col(Organisation.id))
    )
    rows = (
        await session.execute(
            sa.select(Organisation, _user_count).where(*where).order_by(*order).offset(page.offset).limit(page.size)
        )
    ).all()
    return OrganisationList(
        items=[_organisation_read(organisation, count) for organisation, count in rows],
        page=page.number,
        pages=page.count,
        total=total,
    )


async def create_organisation(session: AsyncSession, actor: Principal, data: OrganisationCreate) -> Organisation:
    """An agency (name and 7-digit institution code) or a committee or operator organisation (name only)."""
    contact_email = accounts.normalise_email(data.contact_email or "")
    if contact_email and not accounts.valid_email(contact_email):
        raise Invalid(
            _("The e-mail address is not valid."),
            errors={"contact_email": _("Enter an address like name@example.go.kr.")},
        )
    number = data.registration_number if data.kind == OrganisationKind.agency else None
    return await accounts.create_organisation(
        session,
        actor,
        kind=data.kind,
        name=data.name,
        registration_number=number,
        contact_email=contact_email,
    )


async def _organisation(session: AsyncSession, organisation_id: int) -> Organisation:
    organisation = await session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound(_("No such organisation."))
    return organisation


async def organisation_details(session: AsyncSession, organisation_id: int) -> OrganisationDetails:
    organisation = await _organisation(session, organisation_id)
    users = (
        await session.scalars(
            sa.select(User)
            .where(col(User.organisation_id) == organisation_id)
            .order_by(sa.func.lower(col(User.name)), col(User.id))
        )
    ).all()
    domains = (
        await session.scalars(
            sa.select(AgencyDomain)
            .where(col(AgencyDomain.organisation_id) == organisation_id)
            .order_by(col(AgencyDomain.domain))
        )
    ).all()
    return OrganisationDetails(
        organisation=_organisation_read(organisation, len(users)),
        users=[UserRead.model_validate(user) for user in users],
        domains=[_domain_read(domain, organisation.name) for domain in domains],
    )


async def set_organisation_active(
    session: AsyncSession, actor: Principal, organisation_id: int, active: bool
) -> Organisation:
    """Deactivating signs every user of the organisation out and stops their logins and API tokens."""
    organisation = await _organisation(session, organisation_id)
    if organisation.active == active:
        raise Conflict(
            _("%(name)s is already active.", name=organisation.name)
            if active
            else _("%(name)s is already deactivated.", name=organisation.name)
        )
    if not active and organisation.id == actor.organisation_id:
        raise Conflict(_("You cannot deactivate your own organisation."))
    organisation.active = active
    summary: dict[str, object] = {"name": organisation.name, "kind": organisation.kind}
    if not active:
        user_ids = sa.select(col(User.id)).where(col(User.organisation_id) == organisation.id).scalar_subquery()
        summary["sessions_ended"] = await changed_rows(
            session, sa.delete(LoginSession).where(col(LoginSession.user_id).in_(user_ids))
        )
    await session.flush()
    action = "organisation.activate" if active else "organisation.deactivate"
    await audit.record(session, actor, action, "organisation", organisation.id, summary)
    # A deactivated provider's services leave the catalogue's search until it is active again.
    await hooks.emit(
        "organisation.activated" if active else "organisation.deactivated", session, organisation_id=organisation.id
    )
    return organisation


async def set_user_active(session: AsyncSession, actor: Principal, user_id: int, active: bool) -> User:
    """Disabling signs the user out everywhere; the account keeps its data and can be enabled again."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(_("No such user."))
    if user.active == active:
        raise Conflict(
            _("%(email)s is already enabled.", email=user.email)
            if active
            else _("%(email)s is already disabled.", email=user.email)
        )
    if not active and user.id == actor.user_id:
        raise Conflict(_("You cannot disable your own account."))
    user.active = active
    if active:
        user.removed_at = None  # an operator may restore a member an administrator removed
    else:
        await end_all_sessions(session, row_id(user))
    await session.flush()
    action = "user.enable" if active else "user.disable"
    await audit.record(
        session, actor, action, "user", user.id, {"email": user.email, "organisation_id": user.organisation_id}
    )
    return user


async def user_organisation_id(session: AsyncSession, user_id: int) -> int:
    organisation_id = await session.scalar(sa.select(col(User.organisation_id)).where(col(User.id) == user_id))
    if organisation_id is None:
        raise NotFound(_("No such user."))
    return organisation_id


# --- agency e-mail domains ------------------------------------------------------------------------


def normalise_domain(raw: str) -> str:
    return raw.strip().lower().removeprefix("@").rstrip(".")


def valid_domain(domain: str) -> bool:
    """A host name of at least two labels: letters, digits and inner hyphens, a top-level domain of letters."""
    labels = domain.split(".")
    if len(domain) > 253 or len(labels) < 2:
        return False
    return all(DOMAIN_LABEL.match(label) for label in labels) and bool(TOP_LEVEL.match(labels[-1]))


def _domain_read(domain: AgencyDomain, organisation_name: str) -> DomainRead:
    return DomainRead(
        id=domain.id,
        domain=domain.domain,
        organisation_id=domain.organisation_id,
        organisation_name=organisation_name,
        created_at=domain.created_at,
    )


async def list_domains(session: AsyncSession, page_requested: int | None) -> DomainList:
    total = int(await session.scalar(sa.select(sa.func.count()).select_from(AgencyDomain)) or 0)
    page = check_page(Page(page_number(page_requested), PAGE_SIZE, total))
    rows = (
        await session.execute(
            sa.select(AgencyDomain, col(Organisation.name))
            .join(Organisation, col(Organisation.id) == col(AgencyDomain.organisation_id))
            .order_by(col(AgencyDomain.domain))
            .offset(page.offset)
            .limit(page.size)
        )
    ).all()
    return DomainList(
        items=[_domain_read(domain, name) for domain, name in rows], page=page.number, pages=page.count, total=total
    )


async def approve_domain(session: AsyncSession, actor: Principal, data: DomainCreate) -> DomainRead:
    """People with addresses at the domain may then register themselves into the agency."""
    domain = normalise_domain(data.domain)
    if not valid_domain(domain):
        raise Invalid(
            _("The domain is not valid."),
            errors={"domain": _("Enter a domain like busan.go.kr, without the part before @.")},
        )
    organisation = await session.get(Organisation, data.organisation_id)
    if organisation is None or organisation.kind != OrganisationKind.agency:
        raise Invalid(_("Choose an agency."), errors={"organisation_id": _("Choose an agency organisation.")})
    if not organisation.active:
        raise Invalid(_("The agency is deactivated."), errors={"organisation_id": _("Activate the agency first.")})
    holder = (
        await session.execute(
            sa.select(col(Organisation.name))
            .join(AgencyDomain, col(AgencyDomain.organisation_id) == col(Organisation.id))
            .where(col(AgencyDomain.domain) == domain)
        )
    ).scalar()
    if holder is not None:
        raise Conflict(
            _("The domain %(domain)s is already approved.", domain=domain),
            errors={"domain": _("Already approved for %(name)s.", name=holder)},
        )
    approved = AgencyDomain(organisation_id=row_id(organisation), domain=domain)
    session.add(approved)
    await session.flush()
    await audit.record(
        session,
        actor,
        "agency_domain.approve",
        "agency_domain",
        approved.id,
        {"domain": domain, "organisation_id": organisation.id},
    )
    return _domain_read(approved, organisation.name)


async def get_domain(session: AsyncSession, domain_id: int) -> DomainRead:
    row = (
        await session.execute(
            sa.select(AgencyDomain, col(Organisation.name))
            .join(Organisation, col(Organisation.id) == col(AgencyDomain.organisation_id))
            .where(col(AgencyDomain.id) == domain_id)
        )
    ).first()
    if row is None:
        raise NotFound(_("No such domain."))
    return _domain_read(row[0], row[1])


async def remove_domain(session: AsyncSession, actor: Principal, domain_id: int) -> DomainRead:
    """New registrations from the domain stop; accounts already registered stay."""
    removed = await get_domain(session, domain_id)
    await session.execute(sa.delete(AgencyDomain).where(col(AgencyDomain.id) == domain_id))
    await audit.record(
        session,
        actor,
        "agency_domain.remove",
        "agency_domain",
        domain_id,
        {"domain": removed.domain, "organisation_id": removed.organisation_id},
    )
    return removed


# --- committee appointments -----------------------------------------------------------------------


def appointment_status(appointment: Appointment, on: date) -> AppointmentStatus:
    if appointment.ends_on < appointment.starts_on:
        return "cancelled"
    if on < appointment.starts_on:
        return "upcoming"
    if on > appointment.ends_on:
        return "ended"
    return "current"


def _appointment_query() -> sa.Select[tuple[Appointment, User, Organisation]]:
    return (
        sa.select(Appointment, User, Organisation)
        .join(User, col(User.id) == col(Appointment.user_id))
        .join(Organisation, col(Organisation.id) == col(User.organisation_id))
    )


def _appointment_read(appointment: Appointment, user: User, organisation: Organisation, on: date) -> AppointmentRead:
    return AppointmentRead(
        id=appointment.id,
        user_id=user.id,
        email=user.email,
        name=user.name,
        organisation_id=organisation.id,
        organisation_name=organisation.name,
        starts_on=appointment.starts_on,
        ends_on=appointment.ends_on,
        is_chair=appointment.is_chair,
        status=appointment_status(appointment, on),
        created_at=appointment.created_at,
    )


def _invitation_read(invitation: Invitation, organisation_name: str) -> PendingInvitationRead:
    return PendingInvitationRead(
        id=invitation.id,
        email=invitation.email,
        organisation_id=invitation.organisation_id,
        organisation_name=organisation_name,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
    )


async def list_appointments(session: AsyncSession, page_requested: int | None, on: date) -> AppointmentList:
    """Terms, latest ending first, and the committee invitations not yet accepted."""
    total = int(await session.scalar(sa.select(sa.func.count()).select_from(Appointment)) or 0)
    page = check_page(Page(page_number(page_requested), PAGE_SIZE, total))
    rows = (
        await session.execute(
            _appointment_query()
            .order_by(col(Appointment.ends_on).desc(), col(Appointment.id).desc())
            .offset(page.offset)
            .limit(page.size)
        )
    ).all()
    pending = (
        await session.execute(
            sa.select(Invitation, col(Organisation.name))
            .join(Organisation, col(Organisation.id) == col(Invitation.organisation_id))
            .where(
                col(Organisation.kind) == OrganisationKind.committee,
                col(Invitation.accepted_at).is_(None),
                col(Invitation.expires_at) > utcnow(),
            )
            .order_by(col(Invitation.created_at).desc())
        )
    ).all()
    has_term = sa.exists().where(
        col(Appointment.user_id) == col(User.id),
        col(Appointment.ends_on) >= on,
        col(Appointment.ends_on) >= col(Appointment.starts_on),
    )
    without_term = (
        await session.scalars(
            sa.select(User)
            .join(Organisation, col(Organisation.id) == col(User.organisation_id))
            .where(
                col(Organisation.kind) == OrganisationKind.committee,
                col(Organisation.active).is_(True),
                col(User.active).is_(True),
                ~has_term,
            )
            .order_by(sa.func.lower(col(User.name)), col(User.id))
        )
    ).all()
    return AppointmentList(
        items=[_appointment_read(appointment, user, organisation, on) for appointment, user, organisation in rows],
        pending_invitations=[_invitation_read(invitation, name) for invitation, name in pending],
        members_without_term=[UserRead.model_validate(user) for user in without_term],
        page=page.number,
        pages=page.count,
        total=total,
    )


async def committee_organisations(session: AsyncSession) -> Sequence[Organisation]:
    return (
        await session.scalars(
            sa.select(Organisation)
            .where(col(Organisation.kind) == OrganisationKind.committee, col(Organisation.active).is_(True))
            .order_by(col(Organisation.name))
        )
    ).all()


async def agency_organisations(session: AsyncSession) -> Sequence[Organisation]:
    return (
        await session.scalars(
            sa.select(Organisation)
            .where(col(Organisation.kind) == OrganisationKind.agency, col(Organisation.active).is_(True))
            .order_by(col(Organisation.name))
        )
    ).all()


def _overlapping(starts_on: date, ends_on: date) -> list[sa.ColumnElement[bool]]:
    return [
        col(Appointment.starts_on) <= ends_on,
        col(Appointment.ends_on) >= starts_on,
        col(Appointment.ends_on) >= col(Appointment.starts_on),  # a cancelled term overlaps nothing
    ]


async def appoint(
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    data: AppointmentCreate,
    on: date,
) -> AppointmentResult:
    """Record a term for a member of the committee organisation, or invite a person without an account.

    See the module's docstring: an invitation records no term; appoint the person after they accept.
    """
    if data.ends_on <= data.starts_on:
        raise Invalid(
            _("The term must end after it starts."),
            errors={"ends_on": _("Choose a day after the first day of the term.")},
        )
    if data.ends_on < on:
        raise Invalid(_("The term has already ended."), errors={"ends_on": _("Choose today or a later day.")})
    committee = await session.get(Organisation, data.organisation_id)
    if committee is None or committee.kind != OrganisationKind.committee or not committee.active:
        raise Invalid(
            _("Choose a committee."), errors={"organisation_id": _("Choose an active committee organisation.")}
        )
    email = accounts.normalise_email(data.email)
    if not accounts.valid_email(email):
        raise Invalid(
            _("The e-mail address is not valid."), errors={"email": _("Enter an address like name@example.go.kr.")}
        )

    user = await accounts.user_by_email(session, email)
    if user is None:
        return await _invite(session, settings, actor, committee, email)
    if user.organisation_id != committee.id:
        raise Invalid(
            _("This person belongs to another organisation."),
            errors={"email": _("%(email)s is not a user of %(name)s.", email=email, name=committee.name)},
        )
    if not user.active:
        raise Invalid(_("The account is disabled."), errors={"email": _("Enable the account before appointing it.")})
    overlapping = await session.scalar(
        sa.select(Appointment)
        .where(col(Appointment.user_id) == user.id, *_overlapping(data.starts_on, data.ends_on))
        .limit(1)
    )
    if overlapping is not None:
        raise Conflict(
            _("%(email)s already has a term that overlaps these dates.", email=email),
            errors={
                "starts_on": _(
                    "Overlaps the term %(start)s to %(end)s.", start=overlapping.starts_on, end=overlapping.ends_on
                )
            },
        )
    if data.is_chair:
        other_chair = await session.scalar(
            sa.select(col(User.email))
            .join(Appointment, col(Appointment.user_id) == col(User.id))
            .where(
                col(User.organisation_id) == committee.id,
                col(Appointment.is_chair).is_(True),
                *_overlapping(data.starts_on, data.ends_on),
            )
            .limit(1)
        )
        if other_chair is not None:
            raise Conflict(
                _("The committee already has a chair for these dates."),
                errors={"is_chair": _("%(email)s is chair during these dates.", email=other_chair)},
            )
    appointment = Appointment(
        user_id=row_id(user), starts_on=data.starts_on, ends_on=data.ends_on, is_chair=data.is_chair
    )
    session.add(appointment)
    await session.flush()
    await audit.record(
        session,
        actor,
        "appointment.create",
        "appointment",
        appointment.id,
        {
            "user_id": user.id,
            "email": email,
            "organisation_id": committee.id,
            "starts_on": data.starts_on.isoformat(),
            "ends_on": data.ends_on.isoformat(),
            "is_chair": data.is_chair,
        },
    )
    return AppointmentResult(status="appointed", appointment=_appointment_read(appointment, user, committee, on))


async def _invite(
    session: AsyncSession, settings: Settings, actor: Principal, committee: Organisation, email: str
) -> AppointmentResult:
    waiting = await session.scalar(
        sa.select(Invitation)
        .where(
            col(Invitation.email) == email, col(Invitation.accepted_at).is_(None), col(Invitation.expires_at) > utcnow()
        )
        .limit(1)
    )
    if waiting is not None:
        raise Conflict(
            _("%(email)s was invited already and has not accepted yet.", email=email),
            errors={
                "email": _(
                    "Invitation waiting for acceptance until %(day)s.",
                    day=waiting.expires_at.astimezone(settings.zone).date(),
                )
            },
        )
    invitation = await accounts.create_invitation(
        session, settings, actor, organisation=committee, email=email, role="member"
    )
    return AppointmentResult(status="invited", invitation=_invitation_read(invitation, committee.name))


async def get_appointment(session: AsyncSession, appointment_id: int, on: date) -> AppointmentRead:
    row = (await session.execute(_appointment_query().where(col(Appointment.id) == appointment_id))).first()
    if row is None:
        raise NotFound(_("No such appointment."))
    appointment, user, organisation = row
    return _appointment_read(appointment, user, organisation, on)


async def end_appointment(session: AsyncSession, actor: Principal, appointment_id: int, on: date) -> AppointmentRead:
    """The member loses access today: yesterday becomes the last day, or the term is cancelled before it starts."""
    row = (await session.execute(_appointment_query().where(col(Appointment.id) == appointment_id))).first()
    if row is None:
        raise NotFound(_("No such appointment."))
    appointment, user, committee = row
    status = appointment_status(appointment, on)
    if status in ("ended", "cancelled"):
        raise Conflict(_("This term is already over."))
    previous = appointment.ends_on
    yesterday = on - timedelta(days=1)
    appointment.ends_on = yesterday if yesterday >= appointment.starts_on else appointment.starts_on - timedelta(days=1)
    await session.flush()
    await audit.record(
        session,
        actor,
        "appointment.end",
        "appointment",
        appointment.id,
        {
            "user_id": user.id,
            "email": user.email,
            "ends_on": appointment.ends_on.isoformat(),
            "was_ending_on": previous.isoformat(),
        },
    )
    return _appointment_read(appointment, user, committee, on)


# --- the audit log --------------------------------------------------------------------------------


def audit_filter(query: AuditQuery, zone: ZoneInfo) -> audit.AuditFilter:
    """Local calendar days to UTC instants: from the start of `since` to the end of `until`."""
    if query.since and query.until and query.until < query.since:
        raise Invalid(_("The date range is reversed."), errors={"until": _("Choose a day on or after the first day.")})

    def start_of(day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)

    return audit.AuditFilter(
        since=start_of(query.since) if query.since else None,
        until=start_of(query.until + timedelta(days=1)) if query.until else None,
        organisation_id=query.organisation_id,
        actor=query.actor or "",
        action=query.action or "",
        object_type=query.object_type or "",
        object_id=query.object_id or "",
        security_only=query.security,
    )


async def organisation_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = (
        await session.execute(
            sa.select(col(Organisation.id), col(Organisation.name)).where(col(Organisation.id).in_(ids))
        )
    ).all()
    return {row.id: row.name for row in rows}


async def search_audit(session: AsyncSession, query: AuditQuery, zone: ZoneInfo) -> AuditEventList:
    """Newest first, 50 a page."""
    filters = audit_filter(query, zone)
    number = page_number(query.page)
    events, total = await audit.search(session, filters, offset=(number - 1) * AUDIT_PAGE_SIZE, limit=AUDIT_PAGE_SIZE)
    page = check_page(Page(number, AUDIT_PAGE_SIZE, total))
    names = await organisation_names(session, {event.organisation_id for event in events if event.organisation_id})
    return AuditEventList(
        items=[AuditEventRead.of(event, names.get(event.organisation_id or 0, "")) for event in events],
        page=page.number,
        pages=page.count,
        total=total,
    )
