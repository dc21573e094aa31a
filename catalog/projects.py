"""Agencies' procurement projects: the evidence of how a service was chosen.

A project keeps one active search (saving again replaces it). Ending the search freezes its results,
at most SNAPSHOT_LIMIT services, as they stood at that moment; an ended search cannot be edited. The
outcome (awarded to one service of the snapshot, cancelled, or none suitable) is recorded once and is
final. A project belongs to its agency: any other organisation is told it does not exist. Every change
writes an audit event in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from catalog import search
from catalog.listings import version_content
from catalog.models import Outcome, Project, ProjectStatus, ServiceVersion, SnapshotItem
from catalog.search_cache import SearchCache
from market import audit
from market.auth import Principal
from market.database import row_id, utcnow
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.formatting import day
from market.guards import ensure_owner
from market.i18n import _
from market.models import Organisation
from market.schemas import RowId
from market.web import PAGE_SIZE, Page, check_page

SNAPSHOT_LIMIT = 30


class ProjectInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    query: dict[str, Any] = Field(default_factory=dict)


class SearchInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: dict[str, Any] = Field(default_factory=dict)


class OutcomeInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    outcome: str
    service_id: RowId | None = None
    reason: str = Field(min_length=1, max_length=2000)

    @field_validator("outcome")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in {item.value for item in Outcome}:
            raise ValueError(_("Choose one of the offered values."))
        return value

    @field_validator("service_id", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


def outcome_labels() -> dict[str, str]:
    return {
        Outcome.awarded: _("Awarded"),
        Outcome.cancelled: _("Cancelled"),
        Outcome.none_suitable: _("No suitable service"),
    }


def _require_agency(actor: Principal) -> None:
    if not actor.is_kind("agency"):
        raise Forbidden(_("Procurement projects are for agencies."))


# --- reading --------------------------------------------------------------------------------------


async def get_project(session: AsyncSession, actor: Principal, project_id: int, *, for_update: bool = False) -> Project:
    """The actor's agency's project; any other answers 404."""
    _require_agency(actor)
    project = await session.get(Project, project_id)
    if project is None:
        raise NotFound(_("No such project."))
    ensure_owner(actor, project.agency_id)
    if for_update:
        project = await session.get(Project, project_id, with_for_update=True, populate_existing=True)
        if project is None:
            raise NotFound(_("No such project."))
    return project


async def list_projects(session: AsyncSession, actor: Principal, page: int = 1) -> tuple[list[ProjectView], Page]:
    """The agency's projects, last changed first, without their snapshots or what their searches find now."""
    _require_agency(actor)
    total = int(
        await session.scalar(
            sa.select(sa.func.count()).select_from(Project).where(col(Project.agency_id) == actor.organisation_id)
        )
        or 0
    )
    current = check_page(Page(number=page, size=PAGE_SIZE, total=total))
    rows = (
        await session.scalars(
            sa.select(Project)
            .where(col(Project.agency_id) == actor.organisation_id)
            .order_by(col(Project.updated_at).desc(), col(Project.id).desc())
            .limit(PAGE_SIZE)
            .offset(current.offset)
        )
    ).all()
    return [ProjectView(row, criteria_of(row), [], None) for row in rows], current


async def active_projects(session: AsyncSession, actor: Principal) -> list[Project]:
    """The agency's projects whose search may still be saved, newest first (for the search page's choice)."""
    if not actor.is_kind("agency"):
        return []
    return list(
        (
            await session.scalars(
                sa.select(Project)
                .where(col(Project.agency_id) == actor.organisation_id, col(Project.status) == ProjectStatus.active)
                .order_by(col(Project.updated_at).desc(), col(Project.id).desc())
                .limit(100)
            )
        ).all()
    )


async def snapshot(session: AsyncSession, project: Project) -> list[SnapshotItem]:
    return list(
        (
            await session.scalars(
                sa.select(SnapshotItem)
                .where(col(SnapshotItem.project_id) == project.id)
                .order_by(col(SnapshotItem.position))
            )
        ).all()
    )


def criteria_of(project: Project) -> search.Criteria:
    return search.Criteria.from_dict(project.query or {})


@dataclass(frozen=True)
class ProjectView:
    project: Project
    criteria: search.Criteria
    items: list[SnapshotItem]
    matching: int | None  # how many services the active search finds now (None once ended)
    matching_capped: bool = False  # more than `matching` (the search's counting cap)

    @property
    def ended(self) -> bool:
        return self.project.status == ProjectStatus.ended

    @property
    def too_many(self) -> bool:
        return self.matching is not None and self.matching > SNAPSHOT_LIMIT

    @property
    def awarded_item(self) -> SnapshotItem | None:
        return next((item for item in self.items if item.service_id == self.project.outcome_service_id), None)


async def view_project(
    session: AsyncSession, actor: Principal, project_id: int, *, cache: SearchCache | None = None
) -> ProjectView:
    """The project; while its search is active, how many services it finds (through `cache` when given)."""
    project = await get_project(session, actor, project_id)
    criteria = criteria_of(project)
    if project.status == ProjectStatus.ended:
        return ProjectView(project, criteria, await snapshot(session, project), None)
    found = await (cache.search if cache is not None else search.search)(
        session, criteria, 1, size=1, with_facets=False
    )
    return ProjectView(project, criteria, [], found.total, found.total_capped)


def to_json(view: ProjectView) -> dict[str, Any]:
    project = view.project
    return {
        "id": project.id,
        "name": project.name,
        "status": project.status,
        "query": project.query,
        "query_description": project.query_description,
        "created_at": project.created_at.isoformat(),
        "updated_at": project.updated_at.isoformat(),
        "ended_at": project.ended_at.isoformat() if project.ended_at else None,
        "matching": view.matching,
        "matching_capped": view.matching_capped,
        "snapshot_limit": SNAPSHOT_LIMIT,
        "results": [
            {"position": item.position, "service_id": item.service_id, "version_id": item.version_id, **item.data}
            for item in view.items
        ],
        "outcome": {
            "outcome": project.outcome,
            "service_id": project.outcome_service_id,
            "reason": project.outcome_reason,
            "recorded_at": project.outcome_at.isoformat() if project.outcome_at else None,
        }
        if project.outcome
        else None,
    }


# --- changes --------------------------------------------------------------------------------------


async def create_project(session: AsyncSession, actor: Principal, data: ProjectInput) -> Project:
    """A new project holding `data.query` as its active search."""
    _require_agency(actor)
    criteria = search.parse_criteria(data.query)
    now = utcnow()
    project = Project(
        agency_id=actor.organisation_id,
        name=data.name,
        query=criteria.to_dict(),
        query_description=search.describe(criteria),
        created_by_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(project)
    await session.flush()
    await audit.record(
        session,
        actor,
        "project.create",
        "project",
        project.id,
        {"name": project.name, "query": project.query_description},
    )
    return project


async def save_search(session: AsyncSession, actor: Principal, project_id: int, data: SearchInput) -> Project:
    """Replace the project's active search; an ended search cannot be edited (409)."""
    criteria = search.parse_criteria(data.query)
    project = await get_project(session, actor, project_id, for_update=True)
    if project.status != ProjectStatus.active:
        raise Conflict(_("This project's search has ended and can no longer be changed."))
    previous = project.query_description
    project.query = criteria.to_dict()
    project.query_description = search.describe(criteria)
    project.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        actor,
        "project.save_search",
        "project",
        project.id,
        {"query": project.query_description, "replaced": previous},
    )
    return project


async def end_search(session: AsyncSession, actor: Principal, project_id: int, base_url: str) -> Project:
    """Freeze the search's results as the project's snapshot: what each service said at this moment."""
    project = await get_project(session, actor, project_id, for_update=True)
    if project.status != ProjectStatus.active:
        raise Conflict(_("This project's search has already ended."))
    criteria = criteria_of(project)
    found = await search.search(session, criteria, 1, size=SNAPSHOT_LIMIT, with_facets=False)
    if found.total > SNAPSHOT_LIMIT:
        raise Conflict(
            _(
                "The search finds %(n)s services; refine it to at most %(limit)s before ending it.",
                n=found.total,
                limit=SNAPSHOT_LIMIT,
            )
        )
    for position, hit in enumerate(found.hits, start=1):
        session.add(
            SnapshotItem(
                project_id=row_id(project),
                position=position,
                service_id=hit.service_id,
                version_id=hit.version_id,
                data=await _frozen(session, hit, base_url),
            )
        )
    project.status = ProjectStatus.ended
    project.ended_at = utcnow()
    project.updated_at = project.ended_at
    await session.flush()
    await audit.record(
        session,
        actor,
        "project.end_search",
        "project",
        project.id,
        {
            "query": project.query_description,
            "services": [hit.service_id for hit in found.hits],
            "versions": [hit.version_id for hit in found.hits],
        },
    )
    return project


async def _frozen(session: AsyncSession, hit: search.Hit, base_url: str) -> dict[str, Any]:
    """Everything the listed version said, its provider and contact, the lowest price, and the page address."""
    version = await session.get(ServiceVersion, hit.version_id)
    content = await version_content(session, version if version is not None else hit.version_id)
    provider = await session.get(Organisation, hit.provider_id)
    return {
        **dict(content.items()),
        "version": version.number if version else None,
        "listed_at": version.listed_at.isoformat() if version and version.listed_at else None,
        "provider": hit.provider_name,
        "provider_sme": hit.is_sme,
        "contact": {
            "email": provider.contact_email if provider else "",
            "phone": provider.contact_phone if provider else "",
            "website": provider.website if provider else "",
        },
        "min_price": hit.min_price,
        "min_price_unit": hit.min_price_unit,
        "url": f"{base_url.rstrip('/')}{hit.url}",
    }


async def record_outcome(session: AsyncSession, actor: Principal, project_id: int, data: OutcomeInput) -> Project:
    """Awarded to one service of the snapshot, cancelled, or none suitable: once, and final (a second answers 409)."""
    project = await get_project(session, actor, project_id, for_update=True)
    if project.status != ProjectStatus.ended:
        raise Conflict(_("End the search before recording the outcome."))
    if project.outcome:
        raise Conflict(
            _("The outcome was already recorded on %(date)s and cannot be changed.", date=day(project.outcome_at))
        )
    service_id = None
    if data.outcome == Outcome.awarded:
        in_snapshot = (
            await session.scalar(
                sa.select(col(SnapshotItem.id)).where(
                    col(SnapshotItem.project_id) == project.id,
                    col(SnapshotItem.service_id) == data.service_id,
                )
            )
            if data.service_id is not None
            else None
        )
        if in_snapshot is None:
            raise Invalid(
                _("Please correct: %(fields)s.", fields="service_id"),
                errors={"service_id": _("Choose one of the services of the ended search.")},
            )
        service_id = data.service_id
    project.outcome = data.outcome
    project.outcome_service_id = service_id
    project.outcome_reason = data.reason
    project.outcome_at = utcnow()
    project.updated_at = project.outcome_at
    await session.flush()
    await audit.record(
        session,
        actor,
        "project.record_outcome",
        "project",
        project.id,
        {"outcome": data.outcome, "service_id": service_id, "reason": data.reason},
    )
    return project


async def record_export(session: AsyncSession, actor: Principal, project: Project, fmt: str) -> None:
    await audit.record(session, actor, "project.export", "project", project.id, {"format": fmt})


async def save_from_search(
    session: AsyncSession, actor: Principal, choice: str, name: str, query: dict[str, Any]
) -> Project:
    """The search page's "save": into the chosen active project (replacing its search), or a new one named `name`."""
    _require_agency(actor)
    choice = (choice or "").strip()
    if choice and choice != "new":
        if not choice.isdigit():
            raise NotFound(_("No such project."))
        return await save_search(session, actor, int(choice), SearchInput(query=query))
    name = (name or "").strip()
    if not name or len(name) > 200:
        message = _("Give the new project a name.") if not name else _("At most %(n)s characters.", n=200)
        raise Invalid(_("Please correct: %(fields)s.", fields="name"), errors={"name": message})
    return await create_project(session, actor, ProjectInput(name=name, query=query))
