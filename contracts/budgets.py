"""An agency's yearly budgets: what it recorded, what its contracts commit, and the check a draft must pass."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts.models import Budget, Contract, ContractStatus, ContractVersion
from contracts.schemas import BudgetInput
from market import audit
from market.auth import Principal
from market.database import utcnow
from market.errors import Forbidden, Invalid
from market.i18n import _


@dataclass(frozen=True)
class BudgetFigures:
    year: int
    amount: int | None  # None: no budget recorded for the year
    committed: int  # contracts starting that year, not cancelled (total with VAT)

    @property
    def remaining(self) -> int | None:
        return None if self.amount is None else self.amount - self.committed


def require_agency(actor: Principal) -> None:
    if not actor.is_kind("agency"):
        raise Forbidden(_("Budgets and drafting are for agencies."))


async def budget_figures(
    session: AsyncSession, agency_id: int, year: int, *, excluding: int | None = None
) -> BudgetFigures:
    amount = await session.scalar(
        sa.select(col(Budget.amount)).where(col(Budget.agency_id) == agency_id, col(Budget.year) == year)
    )
    shown = sa.func.coalesce(col(Contract.signed_version_id), col(Contract.current_version_id))
    query = (
        sa.select(sa.func.coalesce(sa.func.sum(col(ContractVersion.amount_total)), 0))
        .select_from(Contract)
        .join(ContractVersion, col(ContractVersion.id) == shown)
        .where(
            col(Contract.agency_id) == agency_id,
            col(Contract.status) != ContractStatus.cancelled,
            col(ContractVersion.starts_on) >= date(year, 1, 1),
            col(ContractVersion.starts_on) <= date(year, 12, 31),
        )
    )
    if excluding is not None:
        query = query.where(col(Contract.id) != excluding)
    return BudgetFigures(year, amount, int(await session.scalar(query) or 0))


async def budgets(session: AsyncSession, actor: Principal) -> list[BudgetFigures]:
    require_agency(actor)
    years = (
        await session.scalars(
            sa.select(col(Budget.year))
            .where(col(Budget.agency_id) == actor.organisation_id)
            .order_by(col(Budget.year).desc())
        )
    ).all()
    return [await budget_figures(session, actor.organisation_id, year) for year in years]


async def set_budget(session: AsyncSession, actor: Principal, data: BudgetInput) -> BudgetFigures:
    require_agency(actor)
    if not actor.is_admin:
        raise Forbidden(_("Only an administrator of your agency can set its budgets."))
    budget = await session.scalar(
        sa.select(Budget)
        .where(col(Budget.agency_id) == actor.organisation_id, col(Budget.year) == data.year)
        .with_for_update()
    )
    previous = budget.amount if budget else None
    if budget is None:
        budget = Budget(agency_id=actor.organisation_id, year=data.year, amount=data.amount)
        session.add(budget)
    else:
        budget.amount = data.amount
        budget.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        actor,
        "budget.set",
        "budget",
        budget.id,
        {"year": data.year, "amount": data.amount, "previous": previous},
    )
    return await budget_figures(session, actor.organisation_id, data.year)


async def check_budget(
    session: AsyncSession, agency_id: int, starts_on: date, amount_total: int, excluding: int | None = None
) -> None:
    figures = await budget_figures(session, agency_id, starts_on.year, excluding=excluding)
    if figures.remaining is not None and amount_total > figures.remaining:
        raise Invalid(
            _(
                "This contract (₩%(amount)s with VAT) is more than what remains of the %(year)s budget: ₩%(remaining)s of ₩%(budget)s (₩%(committed)s already committed).",
                amount=f"{amount_total:,}",
                year=figures.year,
                remaining=f"{figures.remaining:,}",
                budget=f"{figures.amount:,}",
                committed=f"{figures.committed:,}",
            ),
            errors={
                "quantity": _(
                    "Over budget: ₩%(remaining)s remains for %(year)s.",
                    remaining=f"{figures.remaining:,}",
                    year=figures.year,
                )
            },
        )
