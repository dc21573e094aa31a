"""Providers' service listings: the only place that changes a service, its versions and plans.

A service's texts are versions. Its provider edits one open version at a time (a draft: the first
listing, or a revision of a listed service); the committee lists or refuses what was submitted. A listed
version is never changed: a revision is a new version, and the listed one stays visible until the
revision is listed in its place. Every change writes an audit event in the same transaction, and the
search projection (`ListedService`) is rewritten whenever what is listed changes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from catalog import diff, schemas, search_cache, workflow
from catalog.models import (
    Document,
    ListedService,
    Plan,
    Service,
    ServiceStatus,
    ServiceVersion,
    VersionEdit,
    VersionState,
)
from catalog.storage import Storage
from market import audit, hooks
from market.auth import Principal
from market.database import id_column, row_id, utcnow
from market.errors import Conflict, Forbidden, Gone, Invalid, NotFound, Refused
from market.guards import ensure_owner
from market.i18n import _
from market.models import Organisation
from market.web import PAGE_SIZE, Page, check_page

DEFAULT_ZONE = ZoneInfo("Asia/Seoul")


class StaleEdit(Conflict):
    """A save or submission named a lock_version that is no longer current: someone saved meanwhile."""

    def __init__(self, changes: list[diff.Change], current_lock_version: int):
        errors = {change.field: f"{change.old or '-'} → {change.new or '-'}" for change in changes}
        errors["lock_version"] = str(current_lock_version)
        super().__init__(
            _(
                "Someone else saved this service while you were editing it; nothing of yours was saved. "
                "Review what changed meanwhile, then save again (now at edit %(n)s).",
                n=current_lock_version,
            ),
            errors=errors,
        )
        self.changes = changes
        self.current_lock_version = current_lock_version


# --- loading -------------------------------------------------------------------------------------


async def get_service(session: AsyncSession, service_id: int, *, for_update: bool = False) -> Service:
    found = await session.get(Service, service_id, with_for_update=for_update or None, populate_existing=for_update)
    if found is None:
        raise NotFound(_("No such service."))
    return found


async def _version(session: AsyncSession, version_id: int | None, *, for_update: bool = False) -> ServiceVersion:
    found = None
    if version_id is not None:
        found = await session.get(
            ServiceVersion, version_id, with_for_update=for_update or None, populate_existing=for_update
        )
    if found is None:
        raise NotFound(_("No such service version."))
    return found


async def _owned(session: AsyncSession, actor: Principal, service_id: int) -> Service:
    """The actor's own service, locked for the change; another organisation's answers 404."""
    service = await get_service(session, service_id)
    ensure_owner(actor, service.provider_id)
    return await get_service(session, service_id, for_update=True)


async def _plans(session: AsyncSession, version_id: int) -> list[Plan]:
    return list(
        (
            await session.scalars(
                sa.select(Plan).where(col(Plan.version_id) == version_id).order_by(col(Plan.position), col(Plan.id))
            )
        ).all()
    )


async def _documents(session: AsyncSession, version_id: int) -> list[Document]:
    return list(
        (
            await session.scalars(
                sa.select(Document).where(col(Document.version_id) == version_id).order_by(col(Document.id))
            )
        ).all()
    )


def _content(version: ServiceVersion, plans: list[Plan]) -> dict[str, Any]:
    content: dict[str, Any] = {name: getattr(version, name) for name in schemas.VERSION_FIELDS}
    content["features"] = list(content["features"] or [])
    content["benefits"] = list(content["benefits"] or [])
    content["support_channels"] = list(content["support_channels"] or [])
    content["certifications"] = [dict(item) for item in content["certifications"] or []]
    content["plans"] = [{name: getattr(plan, name) for name in schemas.PLAN_FIELDS} for plan in plans]
    return content


async def version_content(session: AsyncSession, version: ServiceVersion | int) -> dict[str, Any]:
    """Everything a version says: its fields and its plans (the shape the diff and the API use)."""
    if isinstance(version, int):
        version = await _version(session, version)
    return _content(version, await _plans(session, row_id(version)))


async def _apply(session: AsyncSession, version: ServiceVersion, changes: dict[str, Any], plans: list[Plan]) -> None:
    for name, value in changes.items():
        if name != "plans":
            setattr(version, name, value)
    if "plans" in changes:
        for plan in plans:
            await session.delete(plan)
        for position, values in enumerate(changes["plans"]):
            session.add(Plan(version_id=row_id(version), position=position, **values))


async def _remember(session: AsyncSession, actor: audit.Actor | None, version: ServiceVersion) -> None:
    """The version's content at this lock_version, for showing a later stale save what changed."""
    await session.flush()
    content = await version_content(session, version)
    session.add(
        VersionEdit(
            version_id=row_id(version),
            lock_version=version.lock_version,
            content=content,
            edited_by_id=getattr(actor, "user_id", None),
        )
    )
    await session.flush()


async def _check_lock(session: AsyncSession, version: ServiceVersion, lock_version: int) -> None:
    if version.lock_version == lock_version:
        return
    started = await session.scalar(
        sa.select(col(VersionEdit.content)).where(
            col(VersionEdit.version_id) == version.id, col(VersionEdit.lock_version) == lock_version
        )
    )
    now = await version_content(session, version)
    raise StaleEdit(diff.changes(started, now) if started is not None else [], version.lock_version)


def _set_status(service: Service, status: str, reason: str = "", until: datetime | None = None) -> None:
    service.status = status
    service.status_reason = reason
    service.status_until = until
    service.status_changed_at = utcnow()


async def open_draft(session: AsyncSession, actor: Principal, service_id: int) -> tuple[Service, ServiceVersion]:
    """The actor's service and its open draft, both locked; Conflict if there is nothing to edit."""
    service = await _owned(session, actor, service_id)
    workflow.check_editable(service.status)
    if service.open_version_id is None:
        raise Conflict(_("This service has no open draft. Start a revision to change it."))
    version = await _version(session, service.open_version_id, for_update=True)
    if version.state != VersionState.draft:
        raise Conflict(
            _("Version %(n)s is with the committee; it cannot be changed until they decide.", n=version.number)
        )
    return service, version


def _require_provider(actor: Principal) -> None:
    if not actor.is_kind("provider"):
        raise Forbidden(_("Only providers list services."))


# --- the provider's changes ----------------------------------------------------------------------


async def create_service(session: AsyncSession, actor: Principal, data: schemas.ListingInput) -> Service:
    """A new service with its first draft; a draft may be incomplete."""
    _require_provider(actor)
    service = Service(provider_id=actor.organisation_id, status=ServiceStatus.draft)
    session.add(service)
    await session.flush()
    version = ServiceVersion(
        service_id=row_id(service), number=1, state=VersionState.draft, created_by_id=actor.user_id
    )
    session.add(version)
    await session.flush()
    await _apply(session, version, data.changes(), [])
    service.open_version_id = version.id
    await _remember(session, actor, version)
    await audit.record(session, actor, "service.create", "service", service.id, {"version": 1, "name": version.name})
    return service


async def save_draft(
    session: AsyncSession, actor: Principal, service_id: int, lock_version: int, changes: dict[str, Any]
) -> ServiceVersion:
    """Save the open draft. `changes` holds the fields to set (all of them from a form, some from PATCH)."""
    _service_row, version = await open_draft(session, actor, service_id)
    await _check_lock(session, version, lock_version)
    plans = await _plans(session, row_id(version))
    before = _content(version, plans)
    after = {**before, **changes}
    if after == before:
        return version
    changed = diff.changes(before, after)
    await _apply(session, version, changes, plans)
    version.lock_version += 1
    version.updated_at = utcnow()
    await _remember(session, actor, version)
    await audit.record(
        session,
        actor,
        "service.save",
        "service",
        service_id,
        {
            "version": version.number,
            "lock_version": version.lock_version,
            "fields": [change.field for change in changed],
        },
    )
    return version


async def submit(
    session: AsyncSession, actor: Principal, service_id: int, lock_version: int, *, today: Any = None
) -> ServiceVersion:
    """Send the open draft to the committee; every missing or wrong field is named at once."""
    service, version = await open_draft(session, actor, service_id)
    await _check_lock(session, version, lock_version)
    content = await version_content(session, version)
    kinds = {document.kind for document in await _documents(session, row_id(version))}
    errors = schemas.missing_for_submission(content, kinds, today or utcnow().astimezone(DEFAULT_ZONE).date())
    if errors:
        raise Invalid(
            _("The service cannot be submitted yet: %(n)s answers are missing or wrong.", n=len(errors)), errors=errors
        )
    workflow.VERSION.check(version.state, VersionState.submitted)
    first = service.listed_version_id is None
    if service.status == ServiceStatus.draft:
        workflow.SERVICE.check(service.status, ServiceStatus.submitted)
        _set_status(service, ServiceStatus.submitted)
    version.state = VersionState.submitted
    version.submitted_at = utcnow()
    version.lock_version += 1
    await _remember(session, actor, version)
    await audit.record(
        session, actor, "service.submit", "service", service.id, {"version": version.number, "revision": not first}
    )
    await hooks.emit(
        "service.submitted" if first else "revision.submitted",
        session,
        service_id=service.id,
        version_id=version.id,
        actor=actor,
    )
    return version


async def start_revision(session: AsyncSession, actor: Principal, storage: Storage, service_id: int) -> ServiceVersion:
    """A new draft copied from the listed version (or the last one), plans and documents included."""
    service = await _owned(session, actor, service_id)
    if service.status not in workflow.REVISABLE_SERVICE:
        raise Conflict(
            _("A service that is %(status)s cannot be revised.", status=workflow.SERVICE.label(service.status).lower())
        )
    if service.open_version_id is not None:
        open_number = await session.scalar(
            sa.select(col(ServiceVersion.number)).where(col(ServiceVersion.id) == service.open_version_id)
        )
        raise Conflict(
            _(
                "This service already has an open draft or submission (version %(n)s); only one at a time.",
                n=open_number,
            )
        )
    source_id = service.listed_version_id or await session.scalar(
        sa.select(col(ServiceVersion.id))
        .where(col(ServiceVersion.service_id) == service.id)
        .order_by(col(ServiceVersion.number).desc())
        .limit(1)
    )
    source = await _version(session, source_id)
    number = (
        int(
            await session.scalar(
                sa.select(sa.func.max(col(ServiceVersion.number))).where(col(ServiceVersion.service_id) == service.id)
            )
            or 0
        )
        + 1
    )
    version = ServiceVersion(
        service_id=row_id(service), number=number, state=VersionState.draft, created_by_id=actor.user_id
    )
    session.add(version)
    await session.flush()
    await _apply(session, version, await version_content(session, source), [])
    for document in await _documents(session, row_id(source)):
        key = await storage.put(await storage.get(document.storage_key))
        session.add(
            Document(
                version_id=row_id(version),
                kind=document.kind,
                original_name=document.original_name,
                storage_key=key,
                content_type=document.content_type,
                size=document.size,
                sha256=document.sha256,
                uploaded_by_id=document.uploaded_by_id,
                uploaded_at=document.uploaded_at,
            )
        )
    service.open_version_id = version.id
    await _remember(session, actor, version)
    await audit.record(
        session, actor, "service.revise", "service", service.id, {"version": number, "from_version": source.number}
    )
    return version


async def withdraw(session: AsyncSession, actor: Principal, service_id: int, reason: str) -> Service:
    """The provider takes a listed (or suspended) service off the catalogue for good; its page then answers 410."""
    service = await _owned(session, actor, service_id)
    workflow.SERVICE.check(service.status, ServiceStatus.withdrawn)
    _set_status(service, ServiceStatus.withdrawn, reason.strip())
    await session.flush()
    await refresh_listing(session, service)
    await audit.record(session, actor, "service.withdraw", "service", service.id, {"reason": service.status_reason})
    await hooks.emit(
        "service.delisted", session, service_id=service.id, status=ServiceStatus.withdrawn, reason=service.status_reason
    )
    return service


# --- the committee's decisions (called by the committee package) -----------------------------------


async def _submission(session: AsyncSession, service_id: int) -> tuple[Service, ServiceVersion]:
    service = await get_service(session, service_id, for_update=True)
    if service.open_version_id is None:
        raise Conflict(_("This service has no submission waiting for a decision."))
    return service, await _version(session, service.open_version_id, for_update=True)


async def list_version(session: AsyncSession, actor: audit.Actor | None, service_id: int) -> ServiceVersion:
    """The submitted version becomes the one buyers see; the version listed before it is superseded and kept."""
    service, version = await _submission(session, service_id)
    workflow.VERSION.check(version.state, VersionState.listed)
    status = workflow.status_when_version_listed(service.status)
    now = utcnow()
    previous = None
    if service.listed_version_id is not None:
        previous = await _version(session, service.listed_version_id, for_update=True)
        workflow.VERSION.check(previous.state, VersionState.superseded)
        previous.state = VersionState.superseded
    version.state = VersionState.listed
    version.listed_at = now
    version.lock_version += 1
    service.listed_version_id = version.id
    service.open_version_id = None
    if status != service.status:
        _set_status(service, status)
    await session.flush()
    await refresh_listing(session, service)
    await audit.record(
        session,
        actor,
        "service.list",
        "service",
        service.id,
        {"version": version.number, "superseded": previous.number if previous else None},
    )
    return version


async def refuse_revision(
    session: AsyncSession, actor: audit.Actor | None, service_id: int, reason: str = ""
) -> ServiceVersion:
    """The committee refuses the submission: kept as refused; a listed version stays listed, unchanged."""
    service, version = await _submission(session, service_id)
    workflow.VERSION.check(version.state, VersionState.refused)
    version.state = VersionState.refused
    service.open_version_id = None
    if service.status == ServiceStatus.submitted:
        workflow.SERVICE.check(service.status, ServiceStatus.draft)
        _set_status(service, ServiceStatus.draft, reason)
    await session.flush()
    await audit.record(
        session, actor, "service.refuse", "service", service.id, {"version": version.number, "reason": reason}
    )
    return version


async def return_to_provider(
    session: AsyncSession, actor: audit.Actor | None, service_id: int, reason: str = ""
) -> ServiceVersion:
    """The submission goes back to its provider as a draft to change and submit again."""
    service, version = await _submission(session, service_id)
    workflow.VERSION.check(version.state, VersionState.draft)
    version.state = VersionState.draft
    version.lock_version += 1
    if service.status == ServiceStatus.submitted:
        workflow.SERVICE.check(service.status, ServiceStatus.draft)
        _set_status(service, ServiceStatus.draft, reason)
    await _remember(session, actor, version)
    await audit.record(
        session, actor, "service.return", "service", service.id, {"version": version.number, "reason": reason}
    )
    return version


async def change_status(
    session: AsyncSession,
    actor: audit.Actor | None,
    service_id: int,
    status: str,
    reason: str = "",
    until: datetime | None = None,
) -> Service:
    """Suspend, reinstate, expire or revoke a listing; it leaves (or returns to) search at once."""
    service = await get_service(session, service_id, for_update=True)
    name = workflow.SERVICE.check(service.status, status)
    if status == ServiceStatus.listed and service.listed_version_id is None:
        raise Conflict(_("This service has no listed version to show."))
    _set_status(service, status, reason.strip(), until)
    await session.flush()
    await refresh_listing(session, service)
    await audit.record(
        session, actor, f"service.{name}", "service", service.id, {"status": status, "reason": service.status_reason}
    )
    return service


# --- the search projection -------------------------------------------------------------------------


def tiebreak(service_id: int) -> int:
    """A stable order that favours no provider: the first 7 hex digits of the id's SHA-256 (fits 32 bits)."""
    return int(hashlib.sha256(str(service_id).encode()).hexdigest()[:7], 16)


async def refresh_listing(session: AsyncSession, service: Service | int) -> ListedService | None:
    """Rewrite the service's search row from its listed version, plans and provider; remove it when not listed."""
    if isinstance(service, int):
        service = await get_service(session, service)
    row = await session.get(ListedService, service.id)
    provider = await session.get(Organisation, service.provider_id)
    if (
        service.status != ServiceStatus.listed
        or service.listed_version_id is None
        or provider is None
        or not provider.active
    ):
        if row is not None:
            await session.delete(row)
            await session.flush()
            search_cache.listed_changed(session)
        return None
    version = await _version(session, service.listed_version_id)
    plans = await _plans(session, row_id(version))
    priced = [plan for plan in plans if plan.unit_price is not None]
    cheapest = min(priced, key=lambda plan: (plan.unit_price, plan.position), default=None)
    certifications = version.certifications or []
    schemes = [
        scheme
        for scheme in schemas.CERTIFICATION_SCHEMES
        if scheme != "other" and any(c.get("scheme") == scheme for c in certifications)
    ]
    csap = [c for c in certifications if c.get("scheme") == "CSAP" and c.get("grade")]
    values: dict[str, Any] = {
        "version_id": version.id,
        "provider_id": service.provider_id,
        "provider_name": provider.name,
        "name": version.name,
        "summary": version.summary,
        "body": "\n".join([version.description, *(version.features or []), *(version.benefits or [])]),
        "category": version.category,
        "deployment_model": version.deployment_model,
        "certification_schemes": ("|" + "|".join(schemes) + "|") if schemes else "",
        "csap_grade": csap[0]["grade"] if csap else "",
        "data_country": version.data_country,
        "sla_availability_bp": version.sla_availability_bp or 0,
        "min_price": cheapest.unit_price if cheapest else 0,
        "min_price_unit": cheapest.unit if cheapest else "",
        "free_trial": any(plan.free_trial_days > 0 for plan in plans),
        "is_sme": provider.is_sme,
        "listed_at": version.listed_at or utcnow(),
        "tiebreak": tiebreak(row_id(service)),
    }
    if row is None:
        row = ListedService(service_id=row_id(service), **values)
        session.add(row)
    else:
        for name, value in values.items():
            setattr(row, name, value)
    await session.flush()
    search_cache.listed_changed(session)
    return row


async def refresh_provider_listings(session: AsyncSession, provider_id: int) -> int:
    """After a provider's name, SME standing or activation changed: rewrite (or remove) its listed services' rows."""
    ids = (
        await session.scalars(
            sa.select(id_column(Service.id))
            .where(col(Service.provider_id) == provider_id, col(Service.status) == ServiceStatus.listed)
            .order_by(col(Service.id))
        )
    ).all()
    for service_id in ids:
        await refresh_listing(session, service_id)
    return len(ids)


async def on_provider_standing_changed(session: AsyncSession, *, organisation_id: int, **_data: object) -> None:
    await refresh_provider_listings(session, organisation_id)


# --- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionSummary:
    id: int
    number: int
    state: str
    state_label: str
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    listed_at: datetime | None


@dataclass(frozen=True)
class VersionView:
    summary: VersionSummary
    lock_version: int
    content: dict[str, Any]
    documents: list[Document]

    @property
    def number(self) -> int:
        return self.summary.number


@dataclass(frozen=True)
class ServiceView:
    service: Service
    provider: Organisation
    version: VersionView
    is_owner: bool
    listed_number: int | None
    open_version: VersionSummary | None
    versions: list[VersionSummary] = field(default_factory=list)

    @property
    def status_label(self) -> str:
        return workflow.SERVICE.label(self.service.status)

    @property
    def shows_unlisted_version(self) -> bool:
        """The version shown is not the one buyers see."""
        return self.version.summary.state != VersionState.listed

    @property
    def is_suspended(self) -> bool:
        return self.service.status == ServiceStatus.suspended

    @property
    def is_gone(self) -> bool:
        """The service left the catalogue for good (only its provider still sees the page)."""
        return self.service.status in workflow.GONE

    @property
    def can_edit_draft(self) -> bool:
        return self.open_version is not None and self.open_version.state == VersionState.draft

    @property
    def can_revise(self) -> bool:
        """A revision may be started: none is open and the service's status allows one."""
        return self.open_version is None and self.service.status in workflow.REVISABLE_SERVICE

    @property
    def can_withdraw(self) -> bool:
        return workflow.SERVICE.allows(self.service.status, ServiceStatus.withdrawn)

    @property
    def can_be_ordered(self) -> bool:
        """Agencies may draft a contract from its plans."""
        return self.service.status == ServiceStatus.listed


def _summary(version: ServiceVersion) -> VersionSummary:
    return VersionSummary(
        id=row_id(version),
        number=version.number,
        state=version.state,
        state_label=workflow.VERSION.label(version.state),
        created_at=version.created_at,
        updated_at=version.updated_at,
        submitted_at=version.submitted_at,
        listed_at=version.listed_at,
    )


def is_owner(viewer: Principal | None, service: Service) -> bool:
    return viewer is not None and viewer.is_kind("provider") and viewer.organisation_id == service.provider_id


def _is_reviewer(viewer: Principal | None) -> bool:
    return viewer is not None and viewer.is_kind("committee", "operator")


def _visible_unless_submitted(viewer: Principal | None, service: Service, version: ServiceVersion) -> bool | None:
    """The owner sees every version; everyone sees what was ever listed; None: a submission a reviewer asks for,
    which the committee decides (`Parts.add_submission_check`: not a member with a tie to the provider)."""
    if is_owner(viewer, service) or version.state in workflow.EVER_LISTED:
        return True
    if version.state not in workflow.REVIEWERS_ONLY or not _is_reviewer(viewer):
        return False
    return None


async def may_see_version(
    session: AsyncSession, viewer: Principal | None, service: Service, version: ServiceVersion
) -> bool:
    visible = _visible_unless_submitted(viewer, service, version)
    return visible if visible is not None else await hooks.may_read_submissions(session, viewer, service.provider_id)


def check_not_gone(viewer: Principal | None, service: Service, zone: ZoneInfo | None) -> None:
    if service.status not in workflow.GONE or is_owner(viewer, service):
        return
    when = service.status_changed_at.astimezone(zone or DEFAULT_ZONE).date().isoformat()
    status = workflow.SERVICE.label(service.status).lower()
    detail = _("This service was %(status)s on %(date)s.", status=status, date=when)
    if service.status_reason:
        detail += " " + _("Reason: %(reason)s", reason=service.status_reason)
    raise Gone(detail, errors={"status": service.status, "date": when, "reason": service.status_reason})


async def _visible_versions(session: AsyncSession, viewer: Principal | None, service: Service) -> list[ServiceVersion]:
    rows = (
        await session.scalars(
            sa.select(ServiceVersion)
            .where(col(ServiceVersion.service_id) == service.id)
            .order_by(col(ServiceVersion.number))
        )
    ).all()
    seen = {row.id: _visible_unless_submitted(viewer, service, row) for row in rows}
    if None in seen.values():  # one question to the committee for all of the service's submissions
        reviewer = await hooks.may_read_submissions(session, viewer, service.provider_id)
        seen = {key: reviewer if value is None else value for key, value in seen.items()}
    return [row for row in rows if seen[row.id]]


async def _visible_service(
    session: AsyncSession, viewer: Principal | None, service_id: int, zone: ZoneInfo | None
) -> tuple[Service, list[ServiceVersion]]:
    """The service and the versions the viewer may see; 404 when none (a draft of another organisation), 410 when gone."""
    service = await get_service(session, service_id)
    visible = await _visible_versions(session, viewer, service)
    if not visible:  # another organisation's draft: a signed-in caller's try is a security event
        raise Refused(_("No such service.")) if viewer is not None else NotFound(_("No such service."))
    check_not_gone(viewer, service, zone)
    return service, visible


async def _version_view(session: AsyncSession, version: ServiceVersion) -> VersionView:
    return VersionView(
        summary=_summary(version),
        lock_version=version.lock_version,
        content=await version_content(session, version),
        documents=await _documents(session, row_id(version)),
    )


async def view_service(
    session: AsyncSession,
    viewer: Principal | None,
    service_id: int,
    version_number: int | None = None,
    zone: ZoneInfo | None = None,
) -> ServiceView:
    """What a buyer reads (the listed version), or a named version the viewer may see; the owner also sees its draft."""
    service, visible = await _visible_service(session, viewer, service_id, zone)
    by_number = {version.number: version for version in visible}
    if version_number is not None:
        shown = by_number.get(version_number)
        if shown is None:
            raise NotFound(_("No such service version."))
    else:
        listed = next((v for v in visible if v.id == service.listed_version_id), None)
        submitted = next((v for v in visible if v.id == service.open_version_id), None)
        shown = listed or submitted or visible[-1]
    owner = is_owner(viewer, service)
    open_version = next((v for v in visible if v.id == service.open_version_id), None) if owner else None
    provider = await session.get(Organisation, service.provider_id)
    assert provider is not None  # service.provider_id is a foreign key
    listed_number = next((v.number for v in visible if v.id == service.listed_version_id), None)
    return ServiceView(
        service=service,
        provider=provider,
        version=await _version_view(session, shown),
        is_owner=owner,
        listed_number=listed_number,
        open_version=_summary(open_version) if open_version else None,
        versions=[_summary(version) for version in visible],
    )


async def version_list(
    session: AsyncSession, viewer: Principal | None, service_id: int, zone: ZoneInfo | None = None
) -> list[VersionSummary]:
    _service_row, visible = await _visible_service(session, viewer, service_id, zone)
    return [_summary(version) for version in visible]


@dataclass(frozen=True)
class VersionDiff:
    service: Service
    old: VersionSummary
    new: VersionSummary
    name: str
    changes: list[diff.Change]
    versions: list[VersionSummary]


async def compare_versions(
    session: AsyncSession,
    viewer: Principal | None,
    service_id: int,
    from_number: int | None,
    to_number: int | None,
    zone: ZoneInfo | None = None,
) -> VersionDiff:
    """The changed fields between two versions the viewer may see (by default: the last one and the one before)."""
    service, visible = await _visible_service(session, viewer, service_id, zone)
    by_number = {version.number: version for version in visible}
    if to_number is None:
        to_number = visible[-1].number
    if from_number is None:
        earlier = [number for number in by_number if number < to_number]
        from_number = max(earlier) if earlier else to_number
    if from_number not in by_number or to_number not in by_number:
        raise NotFound(_("No such service version."))
    old, new = by_number[from_number], by_number[to_number]
    new_content = await version_content(session, new)
    return VersionDiff(
        service=service,
        old=_summary(old),
        new=_summary(new),
        name=new_content["name"] or _("(untitled service)"),
        changes=diff.changes(await version_content(session, old), new_content),
        versions=[_summary(version) for version in visible],
    )


@dataclass(frozen=True)
class Editing:
    """What the edit page shows: the open draft, or why there is none."""

    service: Service
    version: VersionView | None  # the open draft; None when listed with no revision started, or with the committee
    blocked: str  # why the service cannot be edited now ("" when it can)


async def editing(session: AsyncSession, actor: Principal, service_id: int) -> Editing:
    service = await get_service(session, service_id)
    ensure_owner(actor, service.provider_id)
    if service.open_version_id is None:
        blocked = (
            ""
            if service.status in workflow.REVISABLE_SERVICE
            else _(
                "A service that is %(status)s cannot be changed.", status=workflow.SERVICE.label(service.status).lower()
            )
        )
        return Editing(service, None, blocked)
    version = await _version(session, service.open_version_id)
    blocked = ""
    if version.state != VersionState.draft:
        blocked = _("Version %(n)s is with the committee; it cannot be changed until they decide.", n=version.number)
    elif service.status not in workflow.EDITABLE_SERVICE:
        blocked = _(
            "A service that is %(status)s cannot be changed.", status=workflow.SERVICE.label(service.status).lower()
        )
    return Editing(service, await _version_view(session, version), blocked)


def readiness(editing: Editing) -> dict[str, str]:
    """What a submission of the open draft would be refused for now (empty when it is complete)."""
    if editing.version is None:
        return {}
    kinds = {document.kind for document in editing.version.documents}
    return schemas.missing_for_submission(editing.version.content, kinds, utcnow().astimezone(DEFAULT_ZONE).date())


@dataclass(frozen=True)
class DashboardRow:
    id: int
    name: str
    status: str
    status_label: str
    listed_number: int | None
    open_number: int | None
    open_is_draft: bool  # the open version is a draft the provider may edit
    open_state_label: str
    updated_at: datetime
    certificate_valid_to: str  # filled once the committee issues certificates


async def provider_dashboard(
    session: AsyncSession, actor: Principal, page_number: int = 1
) -> tuple[list[DashboardRow], Page]:
    """The provider's own services, newest first, 20 a page."""
    _require_provider(actor)
    where = col(Service.provider_id) == actor.organisation_id
    total = int(await session.scalar(sa.select(sa.func.count()).select_from(Service).where(where)) or 0)
    page = check_page(Page(page_number, PAGE_SIZE, total))
    services = (
        await session.scalars(
            sa.select(Service).where(where).order_by(col(Service.id).desc()).offset(page.offset).limit(page.size)
        )
    ).all()
    version_ids = {v for s in services for v in (s.listed_version_id, s.open_version_id) if v is not None}
    versions = (
        {
            version.id: version
            for version in (
                await session.scalars(sa.select(ServiceVersion).where(col(ServiceVersion.id).in_(version_ids)))
            ).all()
        }
        if version_ids
        else {}
    )
    rows = []
    for service in services:
        listed = versions.get(service.listed_version_id)
        open_version = versions.get(service.open_version_id)
        named = open_version or listed
        rows.append(
            DashboardRow(
                id=row_id(service),
                name=(named.name if named else "") or _("(untitled service)"),
                status=service.status,
                status_label=workflow.SERVICE.label(service.status),
                listed_number=listed.number if listed else None,
                open_number=open_version.number if open_version else None,
                open_is_draft=open_version is not None and open_version.state == VersionState.draft,
                open_state_label=workflow.VERSION.label(open_version.state) if open_version else "",
                updated_at=max((v.updated_at for v in (listed, open_version) if v), default=service.created_at),
                certificate_valid_to="",
            )
        )
    return rows, page
