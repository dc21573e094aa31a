"""What a certified service offers to be contracted: its plans, prices and versions; and the projects awarded to it.

Read by contracts through the catalogue's public surface: plain read models, never the catalogue's tables. The
catalogue says what is offered; whether a contract may be drafted from it is the contracts' rule.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from catalog.models import (
    Outcome,
    Plan,
    Project,
    ProjectStatus,
    Service,
    ServiceStatus,
    ServiceVersion,
)
from market.database import row_id


@dataclass(frozen=True)
class OfferedPlan:
    """A priced plan of a service version (a plan without a price is only a draft's and is never offered)."""

    id: int
    name: str
    unit: str
    unit_price: int
    vat_included: bool
    minimum_term_months: int


@dataclass(frozen=True)
class ContractedService:
    """A service version as a contract quotes it: what it is, where the data lives, its service level and exit terms."""

    id: int
    service_id: int
    number: int
    name: str
    summary: str
    category: str
    data_country: str
    data_region: str
    sla_availability_bp: int | None
    support_hours: str
    response_time_minutes: int | None
    service_credits: str
    data_export_format: str
    data_return_terms: str
    data_deletion_terms: str


@dataclass(frozen=True)
class ListedOffer:
    """A service that was listed: its status now, its provider, the listed version and that version's priced plans."""

    service_id: int
    provider_id: int
    status: str
    version: ContractedService
    plans: list[OfferedPlan]

    @property
    def listed(self) -> bool:
        return self.status == ServiceStatus.listed


@dataclass(frozen=True)
class ProjectAward:
    """An agency's procurement project and the service it was awarded to (None until it ended with an award)."""

    id: int
    agency_id: int
    awarded_service_id: int | None


def _plan(plan: Plan) -> OfferedPlan:
    return OfferedPlan(
        id=row_id(plan),
        name=plan.name,
        unit=plan.unit,
        unit_price=int(plan.unit_price or 0),
        vat_included=plan.vat_included,
        minimum_term_months=plan.minimum_term_months,
    )


def _contracted(version: ServiceVersion) -> ContractedService:
    return ContractedService(
        id=row_id(version),
        service_id=version.service_id,
        number=version.number,
        name=version.name,
        summary=version.summary,
        category=version.category,
        data_country=version.data_country,
        data_region=version.data_region,
        sla_availability_bp=version.sla_availability_bp,
        support_hours=version.support_hours,
        response_time_minutes=version.response_time_minutes,
        service_credits=version.service_credits,
        data_export_format=version.data_export_format,
        data_return_terms=version.data_return_terms,
        data_deletion_terms=version.data_deletion_terms,
    )


async def offered_plans(session: AsyncSession, version_id: int) -> list[OfferedPlan]:
    """The version's priced plans, in the order its provider gave them."""
    plans = await session.scalars(
        sa.select(Plan)
        .where(col(Plan.version_id) == version_id, col(Plan.unit_price).is_not(None))
        .order_by(col(Plan.position), col(Plan.id))
    )
    return [_plan(plan) for plan in plans]


async def offered_plan(session: AsyncSession, version_id: int, plan_id: int) -> OfferedPlan | None:
    """One priced plan of the version; None if the plan is another version's or has no price."""
    plan = await session.scalar(sa.select(Plan).where(col(Plan.id) == plan_id, col(Plan.version_id) == version_id))
    return None if plan is None or plan.unit_price is None else _plan(plan)


async def listed_offer(session: AsyncSession, service_id: int) -> ListedOffer | None:
    """The service as last listed; None if it is unknown or was never listed (a draft is nobody else's business)."""
    service = await session.get(Service, service_id)
    if service is None or service.listed_version_id is None:
        return None
    version = await session.get(ServiceVersion, service.listed_version_id)
    assert version is not None
    return ListedOffer(
        service_id=row_id(service),
        provider_id=service.provider_id,
        status=service.status,
        version=_contracted(version),
        plans=await offered_plans(session, service.listed_version_id),
    )


async def listed_service_ids(session: AsyncSession, provider_id: int) -> list[int]:
    """The provider's services listed now, oldest first."""
    ids = (
        await session.scalars(
            sa.select(col(Service.id))
            .where(col(Service.provider_id) == provider_id, col(Service.status) == ServiceStatus.listed)
            .order_by(col(Service.id))
        )
    ).all()
    return [
        service_id for service_id in ids if service_id is not None
    ]  # a stored key is never NULL: narrows `int | None`


async def contracted_service(session: AsyncSession, version_id: int) -> ContractedService | None:
    version = await session.get(ServiceVersion, version_id)
    return _contracted(version) if version is not None else None


@functools.cache  # one relation for every query that joins it (a subquery is immutable)
def service_version_names() -> sa.Subquery:
    """Every service version's name and category as a relation (`id`, `name`, `category`) to join by id, for lists,
    searches and sums that name a contracted service in the same query."""
    return sa.select(col(ServiceVersion.id), col(ServiceVersion.name), col(ServiceVersion.category)).subquery(
        "service_version_names"
    )


async def project_award(session: AsyncSession, project_id: int) -> ProjectAward | None:
    project = await session.get(Project, project_id)
    if project is None:
        return None
    awarded = project.status == ProjectStatus.ended and project.outcome == Outcome.awarded
    return ProjectAward(
        id=row_id(project),
        agency_id=project.agency_id,
        awarded_service_id=project.outcome_service_id if awarded else None,
    )
