"""The one place the committee touches the catalogue: reading what a case is about and changing what is listed.

Everything goes through the catalogue's public surface (`catalog`), except two reads noted below.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

import catalog
from catalog.documents import documents_of  # not yet exported by `catalog`
from catalog.models import Service, ServiceVersion, VersionState
from market.audit import Actor
from market.errors import NotFound
from market.i18n import _
from market.models import Organisation, User


async def service(session: AsyncSession, service_id: int) -> Service:
    found = await session.get(Service, service_id)
    if found is None:
        raise NotFound(_("No such service."))
    return found


async def version(session: AsyncSession, version_id: int) -> ServiceVersion:
    found = await session.get(ServiceVersion, version_id)
    if found is None:
        raise NotFound(_("No such service version."))
    return found


async def version_details(session: AsyncSession, version_id: int) -> dict[str, Any]:
    """What a reviewer reads: every field of the version, its plans and its documents."""
    row = await version(session, version_id)
    details = await catalog.version_content(session, row)
    details.update(
        id=row.id, number=row.number, state=row.state, service_id=row.service_id,
        documents=[{"id": d.id, "kind": d.kind, "name": d.original_name, "size": d.size, "sha256": d.sha256}
                   for d in await documents_of(session, version_id)],
    )
    return details


async def previous_listed_version_id(session: AsyncSession, service_id: int, before_number: int) -> int | None:
    """The most recent version listed before this one (listed now or superseded since), for the diff."""
    return await session.scalar(
        sa.select(ServiceVersion.id)
        .where(
            ServiceVersion.service_id == service_id,
            ServiceVersion.number < before_number,
            ServiceVersion.state.in_([VersionState.listed, VersionState.superseded]),
        )
        .order_by(ServiceVersion.number.desc())
        .limit(1)
    )


def differences(old: dict[str, Any] | None, new: dict[str, Any]) -> list[dict[str, Any]]:
    if old is None:
        return []
    return [{"field": c.field, "label": c.label, "old": c.old, "new": c.new} for c in catalog.version_changes(old, new)]


async def provider_name(session: AsyncSession, provider_id: int) -> str:
    return await session.scalar(sa.select(Organisation.name).where(Organisation.id == provider_id)) or ""


async def provider_emails(session: AsyncSession, provider_id: int) -> list[str]:
    """Where a provider's notices go: its contact address and its active users."""
    organisation = await session.get(Organisation, provider_id)
    users = (await session.scalars(sa.select(User.email).where(User.organisation_id == provider_id, User.active.is_(True)).order_by(User.id))).all()
    emails = ([organisation.contact_email] if organisation and organisation.contact_email else []) + list(users)
    return list(dict.fromkeys(emails))


def csap_valid_to(details: dict[str, Any]) -> date | None:
    """The latest end of validity among the version's CSAP certifications, or None if it records none."""
    ends = []
    for certification in details.get("certifications") or []:
        if str(certification.get("scheme", "")).upper() == "CSAP" and certification.get("valid_to"):
            try:
                ends.append(date.fromisoformat(str(certification["valid_to"])))
            except ValueError:
                continue
    return max(ends) if ends else None


# --- changing what is listed ----------------------------------------------------------------------

async def list_version(session: AsyncSession, actor: Actor | None, service_id: int) -> None:
    """The submitted version becomes the one buyers see, in search at once."""
    await catalog.list_version(session, actor, service_id)


async def return_to_provider(session: AsyncSession, actor: Actor | None, service_id: int, reason: str) -> None:
    """The submission goes back to the provider as a draft (supplements asked, or returned for revision)."""
    await catalog.return_to_provider(session, actor, service_id, reason)


async def refuse(session: AsyncSession, actor: Actor | None, service_id: int, reason: str) -> None:
    """A refused first listing or revision: kept as refused; a listed version stays listed."""
    await catalog.refuse_revision(session, actor, service_id, reason)


async def set_listing_status(session: AsyncSession, actor: Actor | None, service_id: int, status: str, reason: str, until: datetime | None = None) -> None:
    """Suspend, expire or revoke a listing (it leaves search at once), or reinstate it."""
    await catalog.change_status(session, actor, service_id, status, reason, until)


async def listed_service_ids(session: AsyncSession) -> set[int]:
    from catalog.models import ListedService  # the search projection, read to show what search shows

    return set((await session.scalars(sa.select(ListedService.service_id))).all())
