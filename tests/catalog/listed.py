"""Listed services for search, compare and project tests, set up directly (the committee's decision is
another package's business): a service, its listed version and plans, and its search row."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog.listings import refresh_listing
from catalog.models import Plan, Service, ServiceStatus, ServiceVersion, VersionState
from market.database import utcnow
from market.models import Organisation

_order = itertools.count(1)

CSAP_HIGH = {
    "scheme": "CSAP",
    "name": "",
    "csap_type": "iaas",
    "grade": "high",
    "valid_from": "2025-01-01",
    "valid_to": "2030-01-01",
}
ISO27001 = {
    "scheme": "ISO27001",
    "name": "",
    "csap_type": "",
    "grade": "",
    "valid_from": "2025-01-01",
    "valid_to": "2030-01-01",
}


def plan(name: str = "Standard", unit: str = "user_month", unit_price: int = 10_000, **fields: Any) -> dict[str, Any]:
    return {"name": name, "unit": unit, "unit_price": unit_price, **fields}


async def add_listed(session: AsyncSession, provider: Organisation, name: str, **fields: Any) -> Service:
    plans = fields.pop("plans", None) or [plan()]
    listed_at = fields.pop("listed_at", None) or utcnow() - timedelta(days=1000 - next(_order))
    values: dict[str, Any] = {
        "summary": "",
        "description": "",
        "category": "saas",
        "deployment_model": "public",
        "data_country": "KR",
        "data_region": "Seoul",
        "sla_availability_bp": 9950,
        "support_hours": "09:00-18:00 KST",
        "support_channels": ["email"],
        "response_time_minutes": 60,
        **fields,
    }
    service = Service(provider_id=provider.id, status=ServiceStatus.listed)  # type: ignore[arg-type]
    session.add(service)
    await session.flush()
    version = ServiceVersion(
        service_id=service.id, number=1, state=VersionState.listed, name=name, listed_at=listed_at, **values
    )  # type: ignore[arg-type]
    session.add(version)
    await session.flush()
    for position, item in enumerate(plans):
        session.add(Plan(version_id=version.id, position=position, **item))  # type: ignore[arg-type]
    service.listed_version_id = version.id
    await session.flush()
    await refresh_listing(session, service)
    return service


async def list_service(
    sessions: async_sessionmaker[AsyncSession], provider: Organisation, name: str, **fields: Any
) -> Service:
    async with sessions() as session, session.begin():
        return await add_listed(session, provider, name, **fields)
