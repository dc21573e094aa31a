"""The secretariat's pages and their /api/operator twins: organisations, accounts, agency domains,
committee appointments and the audit log. Every route is for operators only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, delete, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Stream, Template

from market import audit, clock, operators
from market.csv_export import CsvWriter
from market.errors import Conflict, Invalid
from market.guards import operator
from market.i18n import _
from market.operator_schemas import (
    AppointmentCreate,
    AppointmentList,
    AppointmentRead,
    AppointmentResult,
    AuditEventList,
    AuditQuery,
    DomainCreate,
    DomainList,
    DomainRead,
    OrganisationCreate,
    OrganisationDetails,
    OrganisationList,
    OrganisationQuery,
    OrganisationRead,
    PageQuery,
    UserRead,
)
from market.state import sessions_of, settings_of
from market.web import ApiInput, DbSession, FormBody, form_dict, parse, redirect, render

GUARDS = [operator]
PAGE: dict[str, Any] = {"guards": GUARDS, "include_in_schema": False}
API: dict[str, Any] = {"guards": GUARDS, "tags": ["operator"]}
FORM_ERRORS = (Invalid, Conflict)  # input the operator can correct: the form comes back with the messages


def _query(**values: Any) -> dict[str, Any]:
    """Query parameters given, for `parse`; absent ones take the model's default."""
    return {key: value for key, value in values.items() if value is not None}


def _link(path: str, **params: Any) -> str:
    """`path` with the non-empty filters, for pagination and the CSV link."""
    given = {
        key: str(value).lower() if isinstance(value, bool) else value
        for key, value in params.items()
        if value not in (None, "")
    }
    return f"{path}?{urlencode(given)}" if given else path


# --- organisations: pages -------------------------------------------------------------------------


@get("/operator/organisations", **PAGE)
async def organisations_page(
    request: Request,
    db_session: DbSession,
    kind: FromQuery[str | None] = None,
    active: FromQuery[str | None] = None,
    q: FromQuery[str | None] = None,
    sort: FromQuery[str | None] = None,
    page: FromQuery[str | None] = None,
) -> Template:
    raw = _query(kind=kind, active=active, q=q, sort=sort, page=page)
    try:
        query = parse(OrganisationQuery, raw)
    except Invalid as exc:
        return render(
            request,
            "market/operator/organisations.html",
            422,
            listing=None,
            filters=raw,
            errors=exc.errors,
            base_url="",
        )
    listing = await operators.list_organisations(db_session, query)
    filters = {
        "kind": query.kind or "",
        "active": "" if query.active is None else str(query.active).lower(),
        "q": query.q,
        "sort": query.sort,
    }
    base_url = _link(
        "/operator/organisations",
        kind=query.kind,
        active=query.active,
        q=query.q,
        sort=None if query.sort == "name" else query.sort,
    )
    return render(
        request, "market/operator/organisations.html", listing=listing, filters=filters, errors={}, base_url=base_url
    )


@get("/operator/organisations/new", **PAGE)
async def new_organisation_page(request: Request) -> Template:
    return render(request, "market/operator/organisation_new.html", form={"kind": "agency"}, errors={})


@post("/operator/organisations", **PAGE)
async def create_organisation(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    try:
        organisation = await operators.create_organisation(db_session, request.user, parse(OrganisationCreate, form))
    except FORM_ERRORS as exc:
        return render(
            request,
            "market/operator/organisation_new.html",
            exc.status_code,
            form=form,
            errors=exc.errors or {"form": exc.detail},
        )
    return redirect(
        request, f"/operator/organisations/{organisation.id}", _("%(name)s was created.", name=organisation.name)
    )


@get("/operator/organisations/{organisation_id:int}", **PAGE)
async def organisation_page(request: Request, db_session: DbSession, organisation_id: FromPath[int]) -> Template:
    details = await operators.organisation_details(db_session, organisation_id)
    return render(request, "market/operator/organisation.html", details=details)


def _activation_text(details: OrganisationDetails, active: bool) -> dict[str, Any]:
    name = details.organisation.name
    if active:
        return {
            "title": _("Activate %(name)s?", name=name),
            "explanation": _("Its users can sign in again and their API tokens work again."),
            "button": _("Activate"),
        }
    return {
        "title": _("Deactivate %(name)s?", name=name),
        "explanation": _(
            "All %(n)s users of the organisation are signed out at once and can no longer sign in or use their API tokens. "
            "Its data stays; you can activate it again later.",
            n=details.organisation.user_count,
        ),
        "button": _("Deactivate"),
    }


async def _activation_confirm(request: Request, db_session: DbSession, organisation_id: int, active: bool) -> Template:
    details = await operators.organisation_details(db_session, organisation_id)
    verb = "activate" if active else "deactivate"
    return render(
        request,
        "market/operator/confirm.html",
        **_activation_text(details, active),
        action=f"/operator/organisations/{organisation_id}/{verb}",
        cancel=f"/operator/organisations/{organisation_id}",
        danger=not active,
    )


@get("/operator/organisations/{organisation_id:int}/deactivate", **PAGE)
async def deactivate_organisation_page(
    request: Request, db_session: DbSession, organisation_id: FromPath[int]
) -> Template:
    return await _activation_confirm(request, db_session, organisation_id, active=False)


@get("/operator/organisations/{organisation_id:int}/activate", **PAGE)
async def activate_organisation_page(
    request: Request, db_session: DbSession, organisation_id: FromPath[int]
) -> Template:
    return await _activation_confirm(request, db_session, organisation_id, active=True)


@post("/operator/organisations/{organisation_id:int}/deactivate", **PAGE)
async def deactivate_organisation(request: Request, db_session: DbSession, organisation_id: FromPath[int]) -> Any:
    organisation = await operators.set_organisation_active(db_session, request.user, organisation_id, False)
    return redirect(
        request,
        f"/operator/organisations/{organisation_id}",
        _("%(name)s was deactivated and its users signed out.", name=organisation.name),
    )


@post("/operator/organisations/{organisation_id:int}/activate", **PAGE)
async def activate_organisation(request: Request, db_session: DbSession, organisation_id: FromPath[int]) -> Any:
    organisation = await operators.set_organisation_active(db_session, request.user, organisation_id, True)
    return redirect(
        request, f"/operator/organisations/{organisation_id}", _("%(name)s was activated.", name=organisation.name)
    )


@post("/operator/users/{user_id:int}/disable", **PAGE)
async def disable_user(request: Request, db_session: DbSession, user_id: FromPath[int]) -> Any:
    user = await operators.set_user_active(db_session, request.user, user_id, False)
    return redirect(
        request,
        f"/operator/organisations/{user.organisation_id}",
        _("%(email)s was disabled and signed out.", email=user.email),
    )


@post("/operator/users/{user_id:int}/enable", **PAGE)
async def enable_user(request: Request, db_session: DbSession, user_id: FromPath[int]) -> Any:
    user = await operators.set_user_active(db_session, request.user, user_id, True)
    return redirect(
        request, f"/operator/organisations/{user.organisation_id}", _("%(email)s was enabled.", email=user.email)
    )


# --- agency domains: pages ------------------------------------------------------------------------


async def _domains_page(
    request: Request,
    db_session: DbSession,
    page: str | None,
    status_code: int = 200,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> Template:
    listing = await operators.list_domains(db_session, parse(PageQuery, _query(page=page)).page)
    agencies = [(str(agency.id), agency.name) for agency in await operators.agency_organisations(db_session)]
    return render(
        request,
        "market/operator/domains.html",
        status_code,
        listing=listing,
        agencies=agencies,
        form=form or {"domain": "", "organisation_id": ""},
        errors=errors or {},
    )


@get("/operator/domains", **PAGE)
async def domains_page(request: Request, db_session: DbSession, page: FromQuery[str | None] = None) -> Template:
    return await _domains_page(request, db_session, page)


@post("/operator/domains", **PAGE)
async def approve_domain(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    try:
        approved = await operators.approve_domain(db_session, request.user, parse(DomainCreate, form))
    except FORM_ERRORS as exc:
        return await _domains_page(request, db_session, None, exc.status_code, form, exc.errors or {"form": exc.detail})
    return redirect(
        request,
        "/operator/domains",
        _("%(domain)s was approved for %(name)s.", domain=approved.domain, name=approved.organisation_name),
    )


@get("/operator/domains/{domain_id:int}/remove", **PAGE)
async def remove_domain_page(request: Request, db_session: DbSession, domain_id: FromPath[int]) -> Template:
    domain = await operators.get_domain(db_session, domain_id)
    return render(
        request,
        "market/operator/confirm.html",
        title=_("Remove the domain %(domain)s?", domain=domain.domain),
        explanation=_(
            "People with addresses at %(domain)s can no longer register themselves into %(name)s. "
            "Accounts registered already stay.",
            domain=domain.domain,
            name=domain.organisation_name,
        ),
        button=_("Remove"),
        action=f"/operator/domains/{domain_id}/remove",
        cancel="/operator/domains",
        danger=True,
    )


@post("/operator/domains/{domain_id:int}/remove", **PAGE)
async def remove_domain(request: Request, db_session: DbSession, domain_id: FromPath[int]) -> Any:
    removed = await operators.remove_domain(db_session, request.user, domain_id)
    return redirect(request, "/operator/domains", _("%(domain)s was removed.", domain=removed.domain))


# --- appointments: pages --------------------------------------------------------------------------


async def _appointments_page(
    request: Request,
    db_session: DbSession,
    page: str | None,
    status_code: int = 200,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> Template:
    on = clock.today(settings_of(request.app).zone)
    listing = await operators.list_appointments(db_session, parse(PageQuery, _query(page=page)).page, on)
    committees = [
        (str(committee.id), committee.name) for committee in await operators.committee_organisations(db_session)
    ]
    default_committee = committees[0][0] if len(committees) == 1 else ""
    blank = {
        "email": "",
        "organisation_id": default_committee,
        "starts_on": on.isoformat(),
        "ends_on": "",
        "is_chair": "",
    }
    return render(
        request,
        "market/operator/appointments.html",
        status_code,
        listing=listing,
        committees=committees,
        form={**blank, **(form or {})},
        errors=errors or {},
    )


@get("/operator/appointments", **PAGE)
async def appointments_page(
    request: Request,
    db_session: DbSession,
    page: FromQuery[str | None] = None,
    email: FromQuery[str | None] = None,
    organisation_id: FromQuery[str | None] = None,
) -> Template:
    prefill = _query(email=email, organisation_id=organisation_id)
    return await _appointments_page(request, db_session, page, form=prefill)


@post("/operator/appointments", **PAGE)
async def appoint(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    settings = settings_of(request.app)
    try:
        result = await operators.appoint(
            db_session, settings, request.user, parse(AppointmentCreate, form), clock.today(settings.zone)
        )
    except FORM_ERRORS as exc:
        return await _appointments_page(
            request, db_session, None, exc.status_code, form, exc.errors or {"form": exc.detail}
        )
    if result.appointment:
        term = result.appointment
        message = _(
            "%(email)s is appointed from %(start)s to %(end)s.",
            email=term.email,
            start=term.starts_on,
            end=term.ends_on,
        )
    else:
        invitation = result.invitation
        assert invitation is not None  # no term was recorded, so an invitation was sent
        message = _(
            "%(email)s has no account yet, so no term was recorded: an invitation to %(name)s was sent. "
            "Appoint them here once they have accepted it.",
            email=invitation.email,
            name=invitation.organisation_name,
        )
    return redirect(request, "/operator/appointments", message)


@get("/operator/appointments/{appointment_id:int}/end", **PAGE)
async def end_appointment_page(request: Request, db_session: DbSession, appointment_id: FromPath[int]) -> Template:
    term = await operators.get_appointment(db_session, appointment_id, clock.today(settings_of(request.app).zone))
    return render(
        request,
        "market/operator/confirm.html",
        title=_("End the term of %(name)s early?", name=term.name),
        explanation=_(
            "%(email)s loses access to committee work today; yesterday becomes the last day of the term "
            "(a term that has not started yet is cancelled). This cannot be undone: a new term needs a new appointment.",
            email=term.email,
        ),
        button=_("End the term"),
        action=f"/operator/appointments/{appointment_id}/end",
        cancel="/operator/appointments",
        danger=True,
    )


@post("/operator/appointments/{appointment_id:int}/end", **PAGE)
async def end_appointment(request: Request, db_session: DbSession, appointment_id: FromPath[int]) -> Any:
    term = await operators.end_appointment(
        db_session, request.user, appointment_id, clock.today(settings_of(request.app).zone)
    )
    return redirect(request, "/operator/appointments", _("The term of %(email)s was ended.", email=term.email))


# --- audit log: pages -----------------------------------------------------------------------------


@get("/operator/audit", **PAGE)
async def audit_page(
    request: Request,
    db_session: DbSession,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    organisation_id: FromQuery[str | None] = None,
    actor: FromQuery[str | None] = None,
    action: FromQuery[str | None] = None,
    object_type: FromQuery[str | None] = None,
    object_id: FromQuery[str | None] = None,
    security: FromQuery[str | None] = None,
    page: FromQuery[str | None] = None,
) -> Template:
    raw = _query(
        since=since,
        until=until,
        organisation_id=organisation_id,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        security=security,
    )
    settings = settings_of(request.app)
    try:
        query = parse(AuditQuery, {**raw, **_query(page=page)})
        listing = await operators.search_audit(db_session, query, settings.zone)
    except Invalid as exc:
        return render(
            request,
            "market/operator/audit.html",
            422,
            listing=None,
            filters=raw,
            errors=exc.errors,
            base_url="",
            csv_url="",
        )
    base_url = _link("/operator/audit", **raw)
    return render(
        request,
        "market/operator/audit.html",
        listing=listing,
        filters=raw,
        errors={},
        base_url=base_url,
        csv_url=_link("/operator/audit.csv", **raw),
    )


CSV_COLUMNS = (
    "seq",
    "time",
    "actor_email",
    "actor_id",
    "organisation_id",
    "organisation",
    "action",
    "object_type",
    "object_id",
    "summary",
    "ip",
    "hash",
)
CSV_CHUNK = 64 * 1024


async def _csv_lines(request: Request, filters: audit.AuditFilter) -> AsyncIterator[bytes]:
    """UTF-8 with a byte order mark, so spreadsheet programs read Korean text correctly."""
    zone = settings_of(request.app).zone
    writer = CsvWriter()
    writer.writerow(CSV_COLUMNS)
    yield writer.text().encode()
    async for event, organisation_name in audit.stream(sessions_of(request.app), filters):
        writer.writerow(
            (
                event.seq,
                event.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                event.actor_email,
                event.actor_id or "",
                event.organisation_id or "",
                organisation_name,
                event.action,
                event.object_type,
                event.object_id,
                event.summary,
                event.ip,
                event.hash,
            )
        )
        if writer.size > CSV_CHUNK:
            yield writer.take().encode()
    if writer.size:
        yield writer.take().encode()


@get("/operator/audit.csv", **PAGE)
async def audit_csv(
    request: Request,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    organisation_id: FromQuery[str | None] = None,
    actor: FromQuery[str | None] = None,
    action: FromQuery[str | None] = None,
    object_type: FromQuery[str | None] = None,
    object_id: FromQuery[str | None] = None,
    security: FromQuery[str | None] = None,
) -> Stream:
    settings = settings_of(request.app)
    raw = _query(
        since=since,
        until=until,
        organisation_id=organisation_id,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        security=security,
    )
    filters = operators.audit_filter(parse(AuditQuery, raw), settings.zone)
    filename = f"audit-{clock.today(settings.zone).isoformat()}.csv"
    return Stream(
        _csv_lines(request, filters),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- the API --------------------------------------------------------------------------------------


@get("/api/operator/organisations", **API)
async def api_organisations(
    db_session: DbSession,
    kind: FromQuery[str | None] = None,
    active: FromQuery[str | None] = None,
    q: FromQuery[str | None] = None,
    sort: FromQuery[str | None] = None,
    page: FromQuery[str | None] = None,
) -> OrganisationList:
    """Organisations, 20 a page; filter by kind, active (true/false) and name (q); sort by name or newest."""
    query = parse(OrganisationQuery, _query(kind=kind, active=active, q=q, sort=sort, page=page))
    return await operators.list_organisations(db_session, query)


@post("/api/operator/organisations", **API)
async def api_create_organisation(
    request: Request, db_session: DbSession, data: ApiInput[OrganisationCreate]
) -> OrganisationRead:
    """Create an agency (with its 7-digit institution code), committee or operator organisation."""
    organisation = await operators.create_organisation(db_session, request.user, parse(OrganisationCreate, data))
    return OrganisationRead.model_validate(organisation)


@get("/api/operator/organisations/{organisation_id:int}", **API)
async def api_organisation(db_session: DbSession, organisation_id: FromPath[int]) -> OrganisationDetails:
    """An organisation with its users and, for an agency, its approved e-mail domains."""
    return await operators.organisation_details(db_session, organisation_id)


@post("/api/operator/organisations/{organisation_id:int}/deactivate", status_code=200, **API)
async def api_deactivate_organisation(
    request: Request, db_session: DbSession, organisation_id: FromPath[int]
) -> OrganisationRead:
    """Deactivate: its users are signed out and can no longer sign in or use API tokens."""
    return OrganisationRead.model_validate(
        await operators.set_organisation_active(db_session, request.user, organisation_id, False)
    )


@post("/api/operator/organisations/{organisation_id:int}/activate", status_code=200, **API)
async def api_activate_organisation(
    request: Request, db_session: DbSession, organisation_id: FromPath[int]
) -> OrganisationRead:
    return OrganisationRead.model_validate(
        await operators.set_organisation_active(db_session, request.user, organisation_id, True)
    )


@post("/api/operator/users/{user_id:int}/disable", status_code=200, **API)
async def api_disable_user(request: Request, db_session: DbSession, user_id: FromPath[int]) -> UserRead:
    """Disable an account: it is signed out everywhere and its API tokens stop working."""
    return UserRead.model_validate(await operators.set_user_active(db_session, request.user, user_id, False))


@post("/api/operator/users/{user_id:int}/enable", status_code=200, **API)
async def api_enable_user(request: Request, db_session: DbSession, user_id: FromPath[int]) -> UserRead:
    return UserRead.model_validate(await operators.set_user_active(db_session, request.user, user_id, True))


@get("/api/operator/domains", **API)
async def api_domains(db_session: DbSession, page: FromQuery[str | None] = None) -> DomainList:
    """Approved agency e-mail domains, 20 a page."""
    return await operators.list_domains(db_session, parse(PageQuery, _query(page=page)).page)


@post("/api/operator/domains", **API)
async def api_approve_domain(request: Request, db_session: DbSession, data: ApiInput[DomainCreate]) -> DomainRead:
    """Approve an e-mail domain for an agency: people with addresses there may register into it."""
    return await operators.approve_domain(db_session, request.user, parse(DomainCreate, data))


@delete("/api/operator/domains/{domain_id:int}", **API)
async def api_remove_domain(request: Request, db_session: DbSession, domain_id: FromPath[int]) -> None:
    """Remove an approved domain; accounts registered already stay."""
    await operators.remove_domain(db_session, request.user, domain_id)


@get("/api/operator/appointments", **API)
async def api_appointments(
    request: Request, db_session: DbSession, page: FromQuery[str | None] = None
) -> AppointmentList:
    """Committee terms (20 a page), invitations waiting for acceptance, and committee users without a term."""
    on = clock.today(settings_of(request.app).zone)
    return await operators.list_appointments(db_session, parse(PageQuery, _query(page=page)).page, on)


@post("/api/operator/appointments", **API)
async def api_appoint(
    request: Request, db_session: DbSession, data: ApiInput[AppointmentCreate]
) -> Response[AppointmentResult]:
    """201 with the term for a user of the committee; 202 with the invitation when the person has no account yet
    (no term is recorded then: appoint them again after they accept)."""
    settings = settings_of(request.app)
    result = await operators.appoint(
        db_session, settings, request.user, parse(AppointmentCreate, data), clock.today(settings.zone)
    )
    return Response(result, status_code=201 if result.status == "appointed" else 202)


@post("/api/operator/appointments/{appointment_id:int}/end", status_code=200, **API)
async def api_end_appointment(
    request: Request, db_session: DbSession, appointment_id: FromPath[int]
) -> AppointmentRead:
    """End a term early: yesterday becomes its last day (a term not started yet is cancelled)."""
    return await operators.end_appointment(
        db_session, request.user, appointment_id, clock.today(settings_of(request.app).zone)
    )


@get("/api/operator/audit-events", **API)
async def api_audit_events(
    request: Request,
    db_session: DbSession,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    organisation_id: FromQuery[str | None] = None,
    actor: FromQuery[str | None] = None,
    action: FromQuery[str | None] = None,
    object_type: FromQuery[str | None] = None,
    object_id: FromQuery[str | None] = None,
    security: FromQuery[str | None] = None,
    page: FromQuery[str | None] = None,
) -> AuditEventList:
    """Audit events, newest first, 50 a page. `since`/`until` are local days (YYYY-MM-DD), both included;
    `action` matches a prefix (e.g. `organisation.`); `actor` is an e-mail address; `security=true` keeps only security
    events (`security.*`: failed sign-ins, lock-outs, refused forms and refusals on another organisation's object)."""
    query = parse(
        AuditQuery,
        _query(
            since=since,
            until=until,
            organisation_id=organisation_id,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            security=security,
            page=page,
        ),
    )
    return await operators.search_audit(db_session, query, settings_of(request.app).zone)


routes = [
    organisations_page,
    new_organisation_page,
    create_organisation,
    organisation_page,
    deactivate_organisation_page,
    activate_organisation_page,
    deactivate_organisation,
    activate_organisation,
    disable_user,
    enable_user,
    domains_page,
    approve_domain,
    remove_domain_page,
    remove_domain,
    appointments_page,
    appoint,
    end_appointment_page,
    end_appointment,
    audit_page,
    audit_csv,
    api_organisations,
    api_create_organisation,
    api_organisation,
    api_deactivate_organisation,
    api_activate_organisation,
    api_disable_user,
    api_enable_user,
    api_domains,
    api_approve_domain,
    api_remove_domain,
    api_appointments,
    api_appoint,
    api_end_appointment,
    api_audit_events,
]
