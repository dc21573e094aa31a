"""The provider organisations as the committee sees them: their names, where their notices go, the list to choose from."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from market.models import Organisation, User


async def provider_name(session: AsyncSession, provider_id: int) -> str:
    return await session.scalar(sa.select(col(Organisation.name)).where(col(Organisation.id) == provider_id)) or ""


async def provider_emails(session: AsyncSession, provider_id: int) -> list[str]:
    """Where a provider's notices go: its contact address and its active users."""
    organisation = await session.get(Organisation, provider_id)
    users = (
        await session.scalars(
            sa.select(col(User.email))
            .where(col(User.organisation_id) == provider_id, col(User.active).is_(True))
            .order_by(col(User.id))
        )
    ).all()
    emails = ([organisation.contact_email] if organisation and organisation.contact_email else []) + list(users)
    return list(dict.fromkeys(emails))


async def provider_options(session: AsyncSession) -> list[tuple[int, str]]:
    return [
        (row.id, row.name)
        for row in (
            await session.execute(
                sa.select(col(Organisation.id), col(Organisation.name))
                .where(col(Organisation.kind) == "provider")
                .order_by(col(Organisation.name))
            )
        ).all()
    ]
