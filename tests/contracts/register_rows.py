"""Contracts written straight into the tables, in any state and at any date, for the register, OCDS and
dashboard tests (the signing journey itself is tests/contracts/factories.py's business).

    world = await register_world(sessions)
    contract = await add_contract(sessions, world, status="active", signed_at=datetime(2026, 3, 2, tzinfo=UTC))
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog.models import Plan
from contracts.models import Budget, Contract, ContractVersion, Invoice, Payment, Signature, VersionKind, VersionState
from market.models import Organisation, User
from tests.catalog.listed import list_service, plan
from tests.helpers import YEAR, make_organisation, make_user

_numbers = itertools.count(1)


@dataclass
class World:
    agency: Organisation
    agency_user: User
    provider: Organisation
    provider_user: User
    service_id: int
    service_version_id: int
    plan_id: int


async def register_world(
    sessions: async_sessionmaker[AsyncSession],
    *,
    agency: Organisation | None = None,
    agency_name: str | None = None,
    provider_name: str | None = None,
    service_name: str = "Cloud Drive",
    category: str = "saas",
) -> World:
    agency = agency or await make_organisation(sessions, "agency", agency_name)
    agency_user = await make_user(sessions, agency, name="Buyer Kim")
    provider = await make_organisation(sessions, "provider", provider_name)
    provider_user = await make_user(sessions, provider, name="Seller Park")
    service = await list_service(
        sessions, provider, service_name, category=category, plans=[plan("Standard", "user_month", 10_000)]
    )
    async with sessions() as session:
        version_id = service.listed_version_id
        plan_id = await session.scalar(sa.select(Plan.id).where(Plan.version_id == version_id))
    return World(agency, agency_user, provider, provider_user, service.id, version_id, plan_id)  # type: ignore[arg-type]


def _version(
    world: World,
    contract_id: int,
    number: int,
    *,
    amount_net: int,
    starts_on: date,
    ends_on: date,
    route: str,
    state: str,
    signed_at: datetime | None,
    kind: str = VersionKind.original,
    **fields: Any,
) -> ContractVersion:
    vat = amount_net // 10
    return ContractVersion(
        contract_id=contract_id,
        number=number,
        kind=kind,
        state=state,
        service_version_id=world.service_version_id,
        plan_id=world.plan_id,
        plan={"name": "Standard", "unit": "user_month", "unit_price": 10_000, "vat_included": False},
        quantity=max(1, amount_net // 10_000),
        starts_on=starts_on,
        ends_on=ends_on,
        billing_period="monthly",
        route=route,
        periods=12,
        amount_net=amount_net,
        amount_vat=vat,
        amount_total=amount_net + vat,
        created_by_id=world.agency_user.id,
        document_sha256="0" * 64 if state != VersionState.draft else None,
        signed_at=signed_at,
        **fields,
    )


async def add_contract(
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    *,
    status: str = "active",
    amount_net: int = 1_000_000,
    starts_on: date = date(YEAR, 1, 1),
    ends_on: date = date(YEAR, 12, 31),
    route: str = "direct",
    signed_at: datetime | None = datetime(YEAR - 1, 12, 20, 3, 0, tzinfo=UTC),
    ended_on: date | None = None,
    end_reason: str = "",
    number: str | None = None,
    renewal_of_id: int | None = None,
) -> Contract:
    """One contract: signed (both signatures) for signed/active/completed/terminated, otherwise sent or draft."""
    number = number or f"CT-2026-{next(_numbers):05d}"
    binding = status in ("signed", "active", "completed", "terminated")
    async with sessions() as session, session.begin():
        contract = Contract(
            number=number,
            agency_id=world.agency.id,
            provider_id=world.provider.id,
            service_id=world.service_id,
            status=status,  # type: ignore[arg-type]
            created_by_id=world.agency_user.id,
            ended_on=ended_on,
            end_reason=end_reason,
            renewal_of_id=renewal_of_id,  # type: ignore[arg-type]
        )
        session.add(contract)
        await session.flush()
        state = VersionState.signed if binding else (VersionState.draft if status == "draft" else VersionState.sent)
        version = _version(
            world,
            contract.id,
            1,
            amount_net=amount_net,
            starts_on=starts_on,
            ends_on=ends_on,
            route=route,  # type: ignore[arg-type]
            state=state,
            signed_at=signed_at if binding else None,
        )
        session.add(version)
        await session.flush()
        contract.current_version_id = version.id
        if binding:
            contract.signed_version_id = version.id
            for side, user, organisation in (
                ("provider", world.provider_user, world.provider),
                ("agency", world.agency_user, world.agency),
            ):
                session.add(
                    Signature(
                        contract_id=contract.id,
                        version_id=version.id,
                        side=side,
                        user_id=user.id,
                        organisation_id=organisation.id,  # type: ignore[arg-type]
                        signer_name=user.name,
                        signer_role="admin",
                        document_sha256="0" * 64,
                        address="203.0.113.9",
                        user_agent="secret-agent",
                        signed_at=signed_at or datetime.now(UTC),
                    )
                )
        await session.flush()
        return contract


async def add_amendment(
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    contract: Contract,
    *,
    amount_net: int,
    ends_on: date,
    signed_at: datetime,
    reason: str = "duration_extension",
    rationale: str = "Extended by agreement.",
) -> ContractVersion:
    """An amendment both sides signed: it becomes the version in force."""
    async with sessions() as session, session.begin():
        row = await session.get(Contract, contract.id)
        previous = await session.get(ContractVersion, row.signed_version_id)  # type: ignore[union-attr]
        number = (
            int(
                await session.scalar(
                    sa.select(sa.func.max(ContractVersion.number)).where(ContractVersion.contract_id == contract.id)
                )
                or 0
            )
            + 1
        )
        version = _version(
            world,
            contract.id,
            number,
            amount_net=amount_net,
            starts_on=previous.starts_on,
            ends_on=ends_on,  # type: ignore[union-attr, arg-type]
            route=previous.route,
            state=VersionState.signed,
            signed_at=signed_at,
            kind=VersionKind.amendment,  # type: ignore[union-attr]
            amendment_reason=reason,
            amendment_rationale=rationale,
        )
        session.add(version)
        await session.flush()
        previous.state = VersionState.superseded  # type: ignore[union-attr]
        row.current_version_id = row.signed_version_id = version.id  # type: ignore[union-attr]
        return version


async def add_invoice(
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    contract: Contract,
    *,
    period: int = 1,
    amount_total: int = 110_000,
    due_on: date = date(2026, 2, 1),
    issued_on: date = date(2026, 1, 2),
    paid_on: date | None = None,
) -> tuple[Invoice, Payment | None]:
    async with sessions() as session, session.begin():
        invoice = Invoice(
            number=f"INV-2026-{next(_numbers):06d}",
            contract_id=contract.id,
            version_id=contract.signed_version_id or contract.current_version_id,  # type: ignore[arg-type]
            agency_id=world.agency.id,
            provider_id=world.provider.id,
            period=period,
            period_start=issued_on,
            period_end=due_on,  # type: ignore[arg-type]
            amount_net=amount_total * 10 // 11,
            amount_vat=amount_total - amount_total * 10 // 11,
            amount_total=amount_total,
            issued_on=issued_on,
            due_on=due_on,
            status="paid" if paid_on else "open",
            paid_at=datetime.combine(paid_on, datetime.min.time(), UTC) if paid_on else None,
        )
        session.add(invoice)
        await session.flush()
        payment = None
        if paid_on:
            payment = Payment(
                invoice_id=invoice.id, amount=amount_total, paid_on=paid_on, method="bank_transfer", reference="REF-1"
            )  # type: ignore[arg-type]
            session.add(payment)
            await session.flush()
        return invoice, payment


async def add_budget(sessions: async_sessionmaker[AsyncSession], world: World, year: int, amount: int) -> None:
    async with sessions() as session, session.begin():
        session.add(Budget(agency_id=world.agency.id, year=year, amount=amount))  # type: ignore[arg-type]
