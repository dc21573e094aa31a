"""What an agency or a provider sees first on its home page: the contracts and invoices that need attention."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from catalog import service_version_names
from contracts.budgets import budget_figures
from contracts.models import (
    Contract,
    ContractStatus,
    ContractVersion,
    Invoice,
    InvoiceStatus,
    Payment,
    Side,
    Signature,
    VersionState,
)
from contracts.workflow import AWAITING_SIGNATURES, CONTRACT, IN_FORCE, INVOICE, PAYABLE
from market import clock, hooks
from market.models import Organisation

# "Today" is the marketplace's day, in MARKET_TIMEZONE, the zone contract dates are written in.
HORIZON_DAYS = 90
LIST_LIMIT = 10

STATUS_ORDER = list(CONTRACT.labels)  # the order of a contract's life


def contract_path(contract_id: int) -> str:
    return f"/contracts/{contract_id}"


@dataclass(frozen=True)
class ContractLine:
    id: int
    number: str
    status: str
    counterpart: str  # the provider for an agency, the agency for a provider
    service_name: str
    starts_on: date
    ends_on: date
    amount_total: int
    renewal: str | None = None  # the renewal contract's number, when one was drafted
    renewal_status: str | None = None

    @property
    def path(self) -> str:
        return contract_path(self.id)

    @property
    def status_label(self) -> str:
        return CONTRACT.label(self.status)

    @property
    def renewal_status_label(self) -> str:
        return CONTRACT.label(self.renewal_status) if self.renewal_status else ""


@dataclass(frozen=True)
class InvoiceLine:
    id: int
    number: str
    contract_id: int
    contract_number: str
    counterpart: str
    amount_total: int
    issued_on: date
    due_on: date
    status: str
    paid_at: datetime | None
    overdue: bool

    @property
    def status_label(self) -> str:
        return INVOICE.label(self.status)

    @property
    def paid(self) -> bool:
        return self.status == InvoiceStatus.paid

    @property
    def contract_path(self) -> str:
        return contract_path(self.contract_id)


Counterpart = aliased(Organisation, name="counterpart")
Shown = aliased(ContractVersion, name="shown")


def _contract_lines_query(side: Side, version: Any = Shown, version_id: Any = None) -> sa.Select[Any]:
    """Contracts with the version that speaks for them now: the one in force, else the one being prepared."""
    other = col(Contract.provider_id) if side == Side.agency else col(Contract.agency_id)
    shown = (
        sa.func.coalesce(col(Contract.signed_version_id), col(Contract.current_version_id))
        if version_id is None
        else version_id
    )
    names = service_version_names()
    return (
        sa.select(
            col(Contract.id),
            col(Contract.number),
            col(Contract.status),
            col(Counterpart.name).label("counterpart"),
            names.c.name.label("service_name"),
            version.starts_on,
            version.ends_on,
            version.amount_total,
        )
        .select_from(Contract)
        .join(version, version.id == shown)
        .join(Counterpart, col(Counterpart.id) == other)
        .join(names, names.c.id == version.service_version_id)
    )


def _lines(rows: Any) -> list[ContractLine]:
    return [ContractLine(**dict(row._mapping)) for row in rows]


async def counts_by_status(session: AsyncSession, column: Any, organisation_id: int) -> list[tuple[str, str, int]]:
    rows = dict(
        (
            await session.execute(
                sa.select(col(Contract.status), sa.func.count())
                .where(column == organisation_id)
                .group_by(col(Contract.status))
            )
        )
        .tuples()
        .all()
    )
    return [(status, CONTRACT.label(status), int(rows[status])) for status in STATUS_ORDER if rows.get(status)]


async def _invoice_lines(
    session: AsyncSession, side: Side, organisation_id: int, *where: Any, on: date, order: Any, limit: int
) -> list[InvoiceLine]:
    own = col(Invoice.agency_id) if side == Side.agency else col(Invoice.provider_id)
    other = col(Invoice.provider_id) if side == Side.agency else col(Invoice.agency_id)
    rows: Sequence[sa.Row[Any]] = (
        await session.execute(
            sa.select(
                col(Invoice.id),
                col(Invoice.number),
                col(Invoice.contract_id),
                col(Contract.number).label("contract_number"),
                col(Counterpart.name).label("counterpart"),
                col(Invoice.amount_total),
                col(Invoice.issued_on),
                col(Invoice.due_on),
                col(Invoice.status),
                col(Invoice.paid_at),
            )
            .select_from(Invoice)
            .join(Contract, col(Contract.id) == col(Invoice.contract_id))
            .join(Counterpart, col(Counterpart.id) == other)
            .where(own == organisation_id, *where)
            .order_by(*order)
            .limit(limit)
        )
    ).all()
    return [
        InvoiceLine(**dict(row._mapping), overdue=row.status == InvoiceStatus.open and row.due_on < on) for row in rows
    ]


# --- agency ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spending:
    year: int
    budget: int | None
    committed: int  # contracts starting this year, not cancelled (the rule drafting checks against)
    paid: int  # payments recorded this year

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget - self.committed

    @property
    def percent_committed(self) -> int:
        """Share of the budget committed, capped at 100 for the bar (the figures say how far beyond)."""
        if not self.budget:
            return 0
        return max(0, min(100, round(self.committed * 100 / self.budget)))

    @property
    def over_budget(self) -> bool:
        return self.budget is not None and self.committed > self.budget


async def agency_dashboard(session: AsyncSession, agency_id: int, on: date) -> dict[str, Any]:
    horizon = on + timedelta(days=HORIZON_DAYS)
    ending_rows = (
        await session.execute(
            _contract_lines_query(Side.agency)
            .where(
                col(Contract.agency_id) == agency_id,
                col(Contract.status).in_(sorted(IN_FORCE)),
                col(Shown.ends_on) >= on,
                col(Shown.ends_on) <= horizon,
            )
            .order_by(col(Shown.ends_on), col(Contract.id))
        )
    ).all()
    renewals: dict[int, tuple[str, str]] = {}
    ending_ids = [row.id for row in ending_rows]
    if ending_ids:
        for renewal in (
            await session.execute(
                sa.select(col(Contract.renewal_of_id), col(Contract.number), col(Contract.status))
                .where(col(Contract.renewal_of_id).in_(ending_ids), col(Contract.status) != ContractStatus.cancelled)
                .order_by(col(Contract.id))
            )
        ).all():
            renewals[renewal.renewal_of_id] = (renewal.number, renewal.status)
    ending = [
        ContractLine(
            **dict(row._mapping),
            renewal=renewals.get(row.id, (None, None))[0],
            renewal_status=renewals.get(row.id, (None, None))[1],
        )
        for row in ending_rows
    ]
    figures = await budget_figures(session, agency_id, on.year)
    paid = int(
        await session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(col(Payment.amount)), 0))
            .select_from(Payment)
            .join(Invoice, col(Invoice.id) == col(Payment.invoice_id))
            .where(
                col(Invoice.agency_id) == agency_id,
                col(Payment.paid_on) >= date(on.year, 1, 1),
                col(Payment.paid_on) <= date(on.year, 12, 31),
            )
        )
        or 0
    )
    due = await _invoice_lines(
        session,
        Side.agency,
        agency_id,
        col(Invoice.status).in_(sorted(PAYABLE)),
        on=on,
        order=(col(Invoice.due_on), col(Invoice.id)),
        limit=LIST_LIMIT,
    )
    due_total = int(
        await session.scalar(
            sa.select(sa.func.count())
            .select_from(Invoice)
            .where(col(Invoice.agency_id) == agency_id, col(Invoice.status).in_(sorted(PAYABLE)))
        )
        or 0
    )
    return {
        "today": on,
        "horizon_days": HORIZON_DAYS,
        "to_sign": await waiting_for(session, Side.agency, agency_id),
        "by_status": await counts_by_status(session, col(Contract.agency_id), agency_id),
        "ending": ending,
        "spending": Spending(year=on.year, budget=figures.amount, committed=figures.committed, paid=paid),
        "invoices_due": due,
        "invoices_due_count": due_total,
    }


# --- provider --------------------------------------------------------------------------------------------


async def waiting_for(session: AsyncSession, side: Side, organisation_id: int) -> list[ContractLine]:
    """Sent versions (new contracts and amendments) this side has not signed yet, the longest waiting first."""
    own = col(Contract.agency_id) if side == Side.agency else col(Contract.provider_id)
    pending = aliased(ContractVersion, name="pending")
    signed_by_side = sa.exists().where(
        col(Signature.version_id) == col(Contract.current_version_id), col(Signature.side) == side
    )
    return _lines(
        (
            await session.execute(
                _contract_lines_query(side, pending, col(Contract.current_version_id))
                .where(
                    own == organisation_id,
                    col(pending.state) == VersionState.sent,
                    ~signed_by_side,
                    col(Contract.status).in_(sorted(AWAITING_SIGNATURES)),
                )
                .order_by(col(Contract.updated_at), col(Contract.id))
            )
        ).all()
    )


async def provider_dashboard(session: AsyncSession, provider_id: int, on: date) -> dict[str, Any]:
    to_sign = await waiting_for(session, Side.provider, provider_id)
    active = _lines(
        (
            await session.execute(
                _contract_lines_query(Side.provider)
                .where(col(Contract.provider_id) == provider_id, col(Contract.status).in_(sorted(IN_FORCE)))
                .order_by(col(Shown.ends_on), col(Contract.id))
                .limit(LIST_LIMIT)
            )
        ).all()
    )
    active_count = int(
        await session.scalar(
            sa.select(sa.func.count())
            .select_from(Contract)
            .where(col(Contract.provider_id) == provider_id, col(Contract.status).in_(sorted(IN_FORCE)))
        )
        or 0
    )
    invoices = await _invoice_lines(
        session,
        Side.provider,
        provider_id,
        on=on,
        order=(col(Invoice.issued_on).desc(), col(Invoice.id).desc()),
        limit=LIST_LIMIT,
    )
    totals = dict(
        (
            await session.execute(
                sa.select(col(Invoice.status), sa.func.coalesce(sa.func.sum(col(Invoice.amount_total)), 0))
                .where(col(Invoice.provider_id) == provider_id)
                .group_by(col(Invoice.status))
            )
        )
        .tuples()
        .all()
    )
    return {
        "today": on,
        "to_sign": to_sign,
        "active": active,
        "active_count": active_count,
        "invoices": invoices,
        "outstanding": int(totals.get(InvoiceStatus.open, 0)),
        "paid_total": int(totals.get(InvoiceStatus.paid, 0)),
    }


# --- the home panels ------------------------------------------------------------------------------------


async def contracts_panel(session: AsyncSession, user: Any) -> hooks.Panel | None:
    kind = getattr(user, "organisation_kind", None)
    if kind == "agency":
        return hooks.Panel(
            "contracts/_panel_agency.html", await agency_dashboard(session, user.organisation_id, clock.today())
        )
    if kind == "provider":
        return hooks.Panel(
            "contracts/_panel_provider.html", await provider_dashboard(session, user.organisation_id, clock.today())
        )
    return None
