"""What the committee adds to the catalogue: a service's certificate on its page (validity, a link to verify it),
and a mark on each result of a search whose service holds a valid certificate."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from committee.certificates import certificate_of_service, valid_certificates_of
from committee.workflow import CERTIFICATE
from market import hooks
from market.formatting import day
from market.i18n import _


async def certificate_panel(session: AsyncSession, service_id: int) -> hooks.Panel | None:
    certificate = await certificate_of_service(session, service_id)
    if certificate is None:
        return None
    return hooks.Panel(
        "committee/_service_certificate.html",
        {"certificate": certificate, "status_label": CERTIFICATE.label(certificate.status)},
    )


async def certificate_marks(session: AsyncSession, service_ids: list[int]) -> dict[int, hooks.Mark]:
    return {
        certificate.service_id: hooks.Mark(
            "certificate",
            _("Certified: %(number)s, valid to %(date)s", number=certificate.number, date=day(certificate.valid_to)),
            f"/certificates/{certificate.number}",
            {"number": certificate.number, "valid_to": certificate.valid_to.isoformat()},
        )
        for certificate in await valid_certificates_of(session, service_ids)
    }
