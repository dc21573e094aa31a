"""Agencies are told when a service they hold a contract for leaves the catalogue.

A suspension, revocation, expiry or withdrawal does not end a signed contract (it stays valid), but the
agency must know: each agency with a signed or active contract for the service gets one e-mail, through
the outbox, in the transaction that delisted the service.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts.models import Contract
from contracts.workflow import IN_FORCE
from market import outbox
from market.database import utcnow
from market.i18n import _
from market.models import Organisation, User


async def _recipients(session: AsyncSession, agency_id: int) -> list[str]:
    """The agency's contact address, or else its active administrators."""
    organisation = await session.get(Organisation, agency_id)
    if organisation is not None and organisation.contact_email:
        return [organisation.contact_email]
    admins = await session.scalars(
        sa.select(col(User.email))
        .where(col(User.organisation_id) == agency_id, col(User.role) == "admin", col(User.active).is_(True))
        .order_by(col(User.id))
    )
    return list(admins)


async def tell_agencies(session: AsyncSession, *, service_id: int, status: str, reason: str, **_data: object) -> None:
    contracts = (
        await session.scalars(
            sa.select(Contract)
            .where(col(Contract.service_id) == service_id, col(Contract.status).in_(sorted(IN_FORCE)))
            .order_by(col(Contract.id))
        )
    ).all()
    stamp = utcnow().strftime("%Y%m%d%H%M%S")
    for contract in contracts:
        subject = _("Contract %(number)s: the service is now %(status)s", number=contract.number, status=status)
        body = _(
            "The service of contract %(number)s is now %(status)s: %(reason)s\n\n"
            "Your signed contract stays valid. New contracts for this service cannot be drafted while it is not listed.",
            number=contract.number,
            status=status,
            reason=reason or "-",
        )
        for address in await _recipients(session, contract.agency_id):
            key = f"contract-{contract.id}-delisted-{status}-{stamp}-{address}"
            await outbox.send_email(session, address, subject, body, key)
