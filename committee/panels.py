"""What the committee adds to a service's page: its certificate, with validity and a link to verify it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from committee.service import certificate_of_service
from market import hooks


@hooks.service_panel
async def certificate_panel(session: AsyncSession, service_id: int) -> hooks.Panel | None:
    certificate = await certificate_of_service(session, service_id)
    if certificate is None:
        return None
    return hooks.Panel("committee/_service_certificate.html", {"certificate": certificate})
