"""Invoices: one per billing period of a contract in force, issued by the daily sweep; payments recorded by
hand (bank transfer) or arriving from Stripe; who may see and change which invoice."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from contracts import pricing, workflow
from contracts.models import Contract, ContractVersion, Invoice, InvoiceStatus, Payment
from market import audit, clock, formatting, hooks, outbox
from market.auth import Principal, SystemActor
from market.csv_export import CsvWriter
from market.database import lock, row_id, utcnow
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.guards import ensure_owner
from market.i18n import _
from market.models import Organisation
from market.schemas import MONEY_MAX
from market.settings import Settings
from market.web import PAGE_SIZE, Page, check_page

SYSTEM = SystemActor(email="contracts")
MANUAL, STRIPE = "manual", "stripe"
BANK_TRANSFER = "bank_transfer"
STRIPE_JOB = "stripe.invoice"
# Held while invoices are issued: two sweeps at once (two worker processes) take turns, so each sees the
# other's invoices and numbers instead of colliding on them.
INVOICE_ISSUE_LOCK = 7_500_000_001


def payment_mode(settings: Settings) -> str:
    return STRIPE if settings.stripe_api_key else MANUAL


# --- issuing --------------------------------------------------------------------------------------------


@dataclass
class Issued:
    invoices: list[Invoice] = field(default_factory=list)
    skipped: int = 0  # periods another process issued at the same moment


async def _next_number(session: AsyncSession, year: int) -> str:
    prefix = f"INV-{year}-"
    last = await session.scalar(
        sa.select(sa.func.max(col(Invoice.number))).where(col(Invoice.number).startswith(prefix))
    )
    n = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{n:06d}"


async def issue_due_invoices(session: AsyncSession, settings: Settings, today: date) -> Issued:
    """An invoice for every begun billing period of each contract in force that has none yet.

    Running it twice, or in two processes at once, issues each (contract, period) once: the unique pair
    decides, inside a savepoint so one clash does not undo the rest of the sweep."""
    result = Issued()
    await lock(session, INVOICE_ISSUE_LOCK)
    rows = (
        await session.execute(
            sa.select(Contract, ContractVersion)
            .join(ContractVersion, col(ContractVersion.id) == col(Contract.signed_version_id))
            .where(col(Contract.status).in_(sorted(workflow.INVOICED)))
            .order_by(col(Contract.id))
        )
    ).all()
    for contract, version in rows:
        issued = set(
            (await session.scalars(sa.select(col(Invoice.period)).where(col(Invoice.contract_id) == contract.id))).all()
        )
        periods = pricing.period_amounts(
            version.starts_on, version.ends_on, version.billing_period, version.amount_net, version.amount_vat
        )
        last_day = min(today, contract.ended_on or version.ends_on)
        for number, (start, end, net, vat, _total) in enumerate(periods, start=1):
            if number in issued or start > last_day:
                continue
            invoice = await _issue(session, settings, contract, version, number, start, end, net, vat, today)
            if invoice is None:
                result.skipped += 1
            else:
                result.invoices.append(invoice)
    return result


async def _issue(
    session: AsyncSession,
    settings: Settings,
    contract: Contract,
    version: ContractVersion,
    period: int,
    start: date,
    end: date,
    net: int,
    vat: int,
    today: date,
) -> Invoice | None:
    mode = payment_mode(settings)
    try:
        async with session.begin_nested():
            invoice = Invoice(
                number=await _next_number(session, today.year),
                contract_id=row_id(contract),
                version_id=row_id(version),
                agency_id=contract.agency_id,
                provider_id=contract.provider_id,
                period=period,
                period_start=start,
                period_end=end,
                amount_net=net,
                amount_vat=vat,
                amount_total=net + vat,
                issued_on=today,
                due_on=today + timedelta(days=settings.invoice_due_days),
                payment_mode=mode,
            )
            session.add(invoice)
            await session.flush()
    except IntegrityError:
        return None  # issued by another sweep at the same moment
    await audit.record(
        session,
        SYSTEM,
        "contracts.invoice_issued",
        "invoice",
        invoice.id,
        {
            "number": invoice.number,
            "contract": contract.number,
            "period": period,
            "amount_total": invoice.amount_total,
            "due_on": invoice.due_on.isoformat(),
            "payment_mode": mode,
        },
    )
    if mode == STRIPE:
        await outbox.enqueue(session, STRIPE_JOB, {"invoice_id": invoice.id}, f"invoice-{invoice.id}")
    await hooks.emit("invoice.issued", session, invoice_id=invoice.id)
    return invoice


# --- reading --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceRow:
    id: int
    number: str
    contract_id: int
    contract_number: str
    agency_id: int
    agency_name: str
    provider_id: int
    provider_name: str
    period: int
    period_start: date
    period_end: date
    amount_net: int
    amount_vat: int
    amount_total: int
    currency: str
    issued_on: date
    due_on: date
    status: str
    payment_mode: str
    stripe_invoice_id: str | None
    paid_at: datetime | None
    amount_paid: int

    @property
    def outstanding(self) -> int:
        return 0 if self.status in workflow.SETTLED else max(self.amount_total - self.amount_paid, 0)

    def overdue(self, today: date) -> bool:
        return self.status in workflow.PAYABLE and self.due_on < today

    def as_json(self, today: date) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "contract": {"id": self.contract_id, "number": self.contract_number},
            "agency": {"id": self.agency_id, "name": self.agency_name},
            "provider": {"id": self.provider_id, "name": self.provider_name},
            "period": self.period,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "amount_net": self.amount_net,
            "amount_vat": self.amount_vat,
            "amount_total": self.amount_total,
            "amount_paid": self.amount_paid,
            "outstanding": self.outstanding,
            "currency": self.currency,
            "issued_on": self.issued_on.isoformat(),
            "due_on": self.due_on.isoformat(),
            "overdue": self.overdue(today),
            "status": self.status,
            "payment_mode": self.payment_mode,
            "stripe_invoice_id": self.stripe_invoice_id,
            "paid_at": self.paid_at.isoformat() if self.paid_at else None,
        }


def _row_query() -> sa.Select[Any]:
    agency, provider = aliased(Organisation), aliased(Organisation)
    paid = (
        sa.select(sa.func.coalesce(sa.func.sum(col(Payment.amount)), 0))
        .where(col(Payment.invoice_id) == col(Invoice.id))
        .scalar_subquery()
    )
    return (
        sa.select(Invoice, col(Contract.number), col(agency.name), col(provider.name), paid)
        .join(Contract, col(Contract.id) == col(Invoice.contract_id))
        .join(agency, col(agency.id) == col(Invoice.agency_id))
        .join(provider, col(provider.id) == col(Invoice.provider_id))
    )


def _to_row(invoice: Invoice, contract_number: str, agency_name: str, provider_name: str, paid: int) -> InvoiceRow:
    return InvoiceRow(
        id=row_id(invoice),
        number=invoice.number,
        contract_id=invoice.contract_id,
        contract_number=contract_number,
        agency_id=invoice.agency_id,
        agency_name=agency_name,
        provider_id=invoice.provider_id,
        provider_name=provider_name,
        period=invoice.period,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        amount_net=invoice.amount_net,
        amount_vat=invoice.amount_vat,
        amount_total=invoice.amount_total,
        currency=invoice.currency,
        issued_on=invoice.issued_on,
        due_on=invoice.due_on,
        status=invoice.status,
        payment_mode=invoice.payment_mode,
        stripe_invoice_id=invoice.stripe_invoice_id,
        paid_at=invoice.paid_at,
        amount_paid=int(paid or 0),
    )


def _visible_to(principal: Principal) -> list[sa.ColumnElement[bool]]:
    if principal.is_kind("operator"):
        return []
    if principal.is_kind("agency"):
        return [col(Invoice.agency_id) == principal.organisation_id]
    if principal.is_kind("provider"):
        return [col(Invoice.provider_id) == principal.organisation_id]
    raise Forbidden(_("Invoices are for agencies, providers and operators."))


STATUS_FILTERS = ("", "due", *[status.value for status in InvoiceStatus])


def _status_where(status: str, today: date) -> list[sa.ColumnElement[bool]]:
    if status not in STATUS_FILTERS:
        raise Invalid(_("Choose one of the offered values."), errors={"status": _("Choose one of the offered values.")})
    if status == "due":  # what still has to be paid, overdue or not
        return [col(Invoice.status).in_(sorted(workflow.PAYABLE))]
    return [col(Invoice.status) == status] if status else []


@dataclass(frozen=True)
class Listing:
    items: list[InvoiceRow]
    page: Page
    status: str


async def list_invoices(
    session: AsyncSession, principal: Principal, *, status: str = "", page: int = 1, today: date | None = None
) -> Listing:
    where = [*_visible_to(principal), *_status_where(status, today or clock.today())]
    total = int(await session.scalar(sa.select(sa.func.count()).select_from(Invoice).where(*where)) or 0)
    current = check_page(Page(page, PAGE_SIZE, total))
    rows = (
        await session.execute(
            _row_query()
            .where(*where)
            .order_by(col(Invoice.due_on).desc(), col(Invoice.id).desc())
            .offset(current.offset)
            .limit(current.size)
        )
    ).all()
    return Listing([_to_row(*row) for row in rows], current, status)


CSV_HEADER = (
    "number",
    "contract",
    "agency",
    "provider",
    "period",
    "period_start",
    "period_end",
    "amount_net",
    "amount_vat",
    "amount_total",
    "amount_paid",
    "currency",
    "issued_on",
    "due_on",
    "status",
    "payment_mode",
    "paid_at",
)


async def invoices_csv(
    session: AsyncSession, principal: Principal, *, status: str = "", today: date | None = None
) -> str:
    where = [*_visible_to(principal), *_status_where(status, today or clock.today())]
    rows = (
        await session.execute(_row_query().where(*where).order_by(col(Invoice.due_on).desc(), col(Invoice.id).desc()))
    ).all()
    writer = CsvWriter()
    writer.writerow(CSV_HEADER)
    for raw in rows:
        row = _to_row(*raw)
        writer.writerow(
            "" if value is None else str(value)
            for value in (
                row.number,
                row.contract_number,
                row.agency_name,
                row.provider_name,
                row.period,
                row.period_start,
                row.period_end,
                row.amount_net,
                row.amount_vat,
                row.amount_total,
                row.amount_paid,
                row.currency,
                row.issued_on,
                row.due_on,
                row.status,
                row.payment_mode,
                row.paid_at.isoformat() if row.paid_at else "",
            )
        )
    return writer.text()


async def _visible_invoice(session: AsyncSession, principal: Principal, invoice_id: int) -> Invoice:
    invoice = await session.get(Invoice, invoice_id)
    if invoice is None:
        raise NotFound(_("No such invoice."))
    if principal.is_kind("provider"):
        ensure_owner(principal, invoice.provider_id)
    else:
        _visible_to(principal)
        ensure_owner(principal, invoice.agency_id, operators_may=True)
    return invoice


@dataclass(frozen=True)
class PaymentRow:
    id: int
    amount: int
    paid_on: date
    method: str
    reference: str
    created_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "amount": self.amount,
            "paid_on": self.paid_on.isoformat(),
            "method": self.method,
            "reference": self.reference,
            "recorded_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class Detail:
    invoice: InvoiceRow
    payments: list[PaymentRow]
    may_record_payment: bool
    may_void: bool

    def as_json(self, today: date) -> dict[str, Any]:
        return {**self.invoice.as_json(today), "payments": [payment.as_json() for payment in self.payments]}


async def invoice_detail(session: AsyncSession, principal: Principal, invoice_id: int) -> Detail:
    await _visible_invoice(session, principal, invoice_id)
    raw = (await session.execute(_row_query().where(col(Invoice.id) == invoice_id))).one()
    row = _to_row(*raw)
    payments = (
        await session.scalars(sa.select(Payment).where(col(Payment.invoice_id) == invoice_id).order_by(col(Payment.id)))
    ).all()
    payable = row.status in workflow.PAYABLE and row.payment_mode == MANUAL
    return Detail(
        row,
        [PaymentRow(row_id(p), p.amount, p.paid_on, p.method, p.reference, p.created_at) for p in payments],
        may_record_payment=payable and (principal.is_kind("operator") or principal.organisation_id == row.provider_id),
        may_void=payable and principal.is_kind("operator"),
    )


# --- changing -------------------------------------------------------------------------------------------


class PaymentInput(BaseModel):
    """A bank transfer received for an invoice."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    amount: int = Field(ge=1, le=MONEY_MAX)
    paid_on: date
    reference: str = Field(default="", max_length=200)

    @field_validator("amount", mode="before")
    @classmethod
    def _digits(cls, value: Any) -> Any:
        return value.replace(",", "").replace("₩", "").strip() if isinstance(value, str) else value


class VoidInput(BaseModel):
    """Why an invoice is cancelled."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    reason: str = Field(min_length=3, max_length=2000)


async def _locked_invoice(session: AsyncSession, invoice_id: int) -> Invoice | None:
    """The invoice read under a row lock (PostgreSQL), so two payments recorded at once both see the other."""
    return await session.scalar(
        sa.select(Invoice)
        .where(col(Invoice.id) == invoice_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def record_payment(
    session: AsyncSession, principal: Principal, invoice_id: int, data: PaymentInput, today: date | None = None
) -> Payment:
    """A bank transfer recorded by the provider or an operator; the invoice is paid once the transfers cover it."""
    await _visible_invoice(session, principal, invoice_id)
    invoice = await _locked_invoice(session, invoice_id)
    assert invoice is not None
    if not (principal.is_kind("operator") or principal.organisation_id == invoice.provider_id):
        raise Forbidden(_("Only the provider or an operator records payments."))
    if invoice.payment_mode != MANUAL:
        raise Conflict(
            _("Invoice %(number)s is paid through Stripe; its payment arrives from there.", number=invoice.number)
        )
    if invoice.status not in workflow.PAYABLE:
        raise Conflict(
            _(
                "Invoice %(number)s is %(status)s; no payment can be recorded.",
                number=invoice.number,
                status=workflow.INVOICE.label(invoice.status),
            )
        )
    today = today or clock.today()
    if data.paid_on > today:
        raise Invalid(
            _("Please correct: %(fields)s.", fields="paid_on"),
            errors={"paid_on": _("The payment date cannot be in the future.")},
        )
    if data.paid_on < invoice.period_start - timedelta(days=366):
        raise Invalid(
            _("Please correct: %(fields)s.", fields="paid_on"),
            errors={
                "paid_on": _(
                    "The payment date is long before the billing period began (%(date)s).",
                    date=formatting.day(invoice.period_start),
                )
            },
        )
    paid = int(
        await session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(col(Payment.amount)), 0)).where(
                col(Payment.invoice_id) == invoice.id
            )
        )
        or 0
    )
    outstanding = invoice.amount_total - paid
    if data.amount > outstanding:
        raise Invalid(
            _("Please correct: %(fields)s.", fields="amount"),
            errors={
                "amount": _(
                    "At most ₩%(outstanding)s is outstanding on this invoice.",
                    outstanding=formatting.number(outstanding),
                )
            },
        )
    payment = Payment(
        invoice_id=row_id(invoice),
        amount=data.amount,
        paid_on=data.paid_on,
        method=BANK_TRANSFER,
        reference=data.reference,
        recorded_by_id=principal.user_id,
    )
    session.add(payment)
    await session.flush()
    summary = {
        "number": invoice.number,
        "amount": data.amount,
        "paid_on": data.paid_on.isoformat(),
        "reference": data.reference,
    }
    if data.amount == outstanding:
        workflow.INVOICE.check(invoice.status, InvoiceStatus.paid)
        invoice.status, invoice.paid_at, invoice.updated_at = InvoiceStatus.paid, utcnow(), utcnow()
        await audit.record(session, principal, "contracts.invoice_paid", "invoice", invoice.id, summary)
        await hooks.emit("invoice.paid", session, invoice_id=invoice.id, payment_id=payment.id)
    else:
        invoice.updated_at = utcnow()
        await audit.record(
            session,
            principal,
            "contracts.payment_recorded",
            "invoice",
            invoice.id,
            {**summary, "outstanding": outstanding - data.amount},
        )
    return payment


async def void_invoice(session: AsyncSession, principal: Principal, invoice_id: int, data: VoidInput) -> Invoice:
    """An operator cancels an invoice issued in error (manual mode; Stripe invoices are voided in Stripe)."""
    if not principal.is_kind("operator"):
        raise Forbidden(_("Only an operator can void an invoice."))
    invoice = await _locked_invoice(session, invoice_id)
    if invoice is None:
        raise NotFound(_("No such invoice."))
    if invoice.payment_mode != MANUAL:
        raise Conflict(
            _(
                "Invoice %(number)s is handled by Stripe; void it there and the change arrives here.",
                number=invoice.number,
            )
        )
    paid = int(
        await session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(col(Payment.amount)), 0)).where(
                col(Payment.invoice_id) == invoice.id
            )
        )
        or 0
    )
    workflow.INVOICE.check(invoice.status, InvoiceStatus.void)
    if paid:
        raise Conflict(
            _(
                "Invoice %(number)s already has payments of ₩%(paid)s; it cannot be voided.",
                number=invoice.number,
                paid=formatting.number(paid),
            )
        )
    invoice.status, invoice.updated_at = InvoiceStatus.void, utcnow()
    await audit.record(
        session,
        principal,
        "contracts.invoice_voided",
        "invoice",
        invoice.id,
        {"number": invoice.number, "reason": data.reason},
    )
    return invoice
