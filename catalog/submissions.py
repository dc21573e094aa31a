"""What the committee reads of a submitted service: who offers it, where it stands, and what one of its
versions says (every field, plans and documents), as plain read models. The committee changes what is
listed only through `listings` (`list_version`, `refuse_revision`, `return_to_provider`, `change_status`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from catalog.documents import documents_of
from catalog.listings import version_content
from catalog.models import Plan, Service, ServiceStatus, ServiceVersion, VersionState
from catalog.workflow import EVER_LISTED, ON_OFFER
from market import hooks
from market.auth import Principal
from market.database import row_id
from market.errors import NotFound
from market.i18n import _


@dataclass(frozen=True)
class SubmittedService:
    id: int
    provider_id: int
    status: str
    listed_version_id: int | None

    @property
    def on_offer(self) -> bool:
        """Offered to buyers (listed, or suspended for now): the committee's standing may change it."""
        return self.status in ON_OFFER


@dataclass(frozen=True)
class SubmittedVersion:
    id: int
    service_id: int
    number: int
    name: str
    state: str

    @property
    def is_listed(self) -> bool:
        return self.state == VersionState.listed


async def submitted_service(session: AsyncSession, service_id: int) -> SubmittedService:
    found = await session.get(Service, service_id)
    if found is None:
        raise NotFound(_("No such service."))
    return SubmittedService(row_id(found), found.provider_id, found.status, found.listed_version_id)


async def submitted_version(session: AsyncSession, version_id: int) -> SubmittedVersion:
    found = await session.get(ServiceVersion, version_id)
    if found is None:
        raise NotFound(_("No such service version."))
    return SubmittedVersion(row_id(found), found.service_id, found.number, found.name, found.state)


async def submission_details(session: AsyncSession, version_id: int) -> dict[str, Any]:
    """What a reviewer reads: every field of the version, its plans and its documents."""
    row = await session.get(ServiceVersion, version_id)
    if row is None:
        raise NotFound(_("No such service version."))
    details = await version_content(session, row)
    details.update(
        id=row.id,
        number=row.number,
        state=row.state,
        service_id=row.service_id,
        documents=[
            {"id": d.id, "kind": d.kind, "name": d.original_name, "size": d.size, "sha256": d.sha256}
            for d in await documents_of(session, version_id)
        ],
    )
    return details


async def previous_listed_version_id(session: AsyncSession, service_id: int, before_number: int) -> int | None:
    """The most recent version listed before this one (listed now or superseded since), for the diff."""
    return await session.scalar(
        sa.select(col(ServiceVersion.id))
        .where(
            col(ServiceVersion.service_id) == service_id,
            col(ServiceVersion.number) < before_number,
            col(ServiceVersion.state).in_(EVER_LISTED),
        )
        .order_by(col(ServiceVersion.number).desc())
        .limit(1)
    )


async def add_demo_submission(
    session: AsyncSession,
    actor: Principal,
    provider_id: int,
    fields: dict[str, Any],
    plans: list[dict[str, Any]],
) -> int:
    """Demo data only: a service submitted with its first version as given (no documents, no checks), announced
    as a provider's submission is. The new service's id."""
    service = Service(provider_id=provider_id, status=ServiceStatus.submitted)
    session.add(service)
    await session.flush()
    version = ServiceVersion(
        service_id=row_id(service), number=1, state=VersionState.submitted, created_by_id=actor.user_id, **fields
    )
    session.add(version)
    await session.flush()
    for plan in plans:
        session.add(Plan(version_id=row_id(version), **plan))
    service.open_version_id = version.id
    await session.flush()
    await hooks.emit("service.submitted", session, service_id=service.id, version_id=version.id, actor=actor)
    return row_id(service)
