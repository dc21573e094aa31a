"""Stripe: an issued invoice becomes a Stripe invoice (customer per agency, draft invoice, its items,
finalised and sent), run from the outbox after commit with deterministic idempotency keys; Stripe's view of
an invoice applied to ours (by the webhook and by reconciliation), never moving ours backwards."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any

import sqlalchemy as sa
import stripe
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col
from stripe.params import CustomerCreateParams, InvoiceListParams

from contracts import workflow
from contracts.invoices import STRIPE, STRIPE_JOB
from contracts.models import Contract, Invoice, InvoiceStatus, Payment, StripeCustomer, StripeEvent
from market import audit, hooks, outbox
from market.auth import SystemActor
from market.database import create_engine, row_id, utcnow
from market.models import Organisation, OutboxMessage
from market.settings import Settings

log = logging.getLogger("contracts.payments")

STRIPE_ACTOR = SystemActor(email="stripe")
# Seconds before a call to Stripe counts as failed; the outbox retries it later with the same key.
TIMEOUT_SECONDS = 20.0
# Stripe's invoice states that are also ours; a draft is still being built by the outbox job.
STRIPE_STATUS = {
    "open": InvoiceStatus.open,
    "paid": InvoiceStatus.paid,
    "void": InvoiceStatus.void,
    "uncollectible": InvoiceStatus.uncollectible,
}


class _HTTPXClient(stripe.HTTPXClient):
    """The SDK hands httpx its encoded form as `data=`, which httpx deprecates for raw text: send it as `content=`."""

    def _get_request_args_kwargs(self, method: str, url: str, headers: Any, post_data: Any) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.pop("data", None)
        if data:
            kwargs["content"] = data
        return args, kwargs


@contextlib.asynccontextmanager
async def stripe_client(settings: Settings) -> AsyncIterator[stripe.StripeClient]:
    """A client on the configured base address; the SDK does not retry by itself (the outbox does)."""
    http_client = _HTTPXClient(timeout=TIMEOUT_SECONDS)
    client = stripe.StripeClient(
        settings.stripe_api_key,
        base_addresses={"api": settings.stripe_api_base},
        http_client=http_client,
        max_network_retries=0,
    )
    try:
        yield client
    finally:
        await http_client.close_async()


@contextlib.asynccontextmanager
async def _sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url, pooled=False)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


# --- issuing in Stripe (outbox) -------------------------------------------------------------------------


@dataclass(frozen=True)
class _ToBill:
    invoice_id: int
    number: str
    agency_id: int
    agency_name: str
    agency_email: str
    contract_number: str
    period: int
    period_start: date
    period_end: date
    amount_net: int
    amount_vat: int
    days_until_due: int
    customer_id: str | None
    stripe_invoice_id: str | None


async def _to_bill(sessions: async_sessionmaker[AsyncSession], invoice_id: int) -> _ToBill | None:
    async with sessions() as session:
        row = (
            await session.execute(
                sa.select(Invoice, col(Contract.number), Organisation, col(StripeCustomer.customer_id))
                .join(Contract, col(Contract.id) == col(Invoice.contract_id))
                .join(Organisation, col(Organisation.id) == col(Invoice.agency_id))
                .outerjoin(StripeCustomer, col(StripeCustomer.agency_id) == col(Invoice.agency_id))
                .where(col(Invoice.id) == invoice_id)
            )
        ).first()
    if row is None:
        return None
    invoice, contract_number, agency, customer_id = row
    return _ToBill(
        invoice.id,
        invoice.number,
        agency.id,
        agency.name,
        agency.contact_email,
        contract_number,
        invoice.period,
        invoice.period_start,
        invoice.period_end,
        invoice.amount_net,
        invoice.amount_vat,
        max((invoice.due_on - invoice.issued_on).days, 1),
        customer_id,
        invoice.stripe_invoice_id,
    )


async def _customer(client: stripe.StripeClient, sessions: async_sessionmaker[AsyncSession], bill: _ToBill) -> str:
    """The agency's Stripe customer, created once: the key makes a repeat return the same customer, and the
    stored row answers every later invoice."""
    if bill.customer_id:
        return bill.customer_id
    params: CustomerCreateParams = {"name": bill.agency_name, "metadata": {"agency_id": str(bill.agency_id)}}
    if bill.agency_email:
        params["email"] = bill.agency_email
    customer = await client.v1.customers.create_async(params, {"idempotency_key": f"customer-agency-{bill.agency_id}"})
    async with sessions() as session, session.begin():
        stored = await session.get(StripeCustomer, bill.agency_id)
        if stored is None:
            session.add(StripeCustomer(agency_id=bill.agency_id, customer_id=customer.id))
            await audit.record(
                session,
                STRIPE_ACTOR,
                "contracts.stripe_customer_created",
                "organisation",
                bill.agency_id,
                {"customer": customer.id},
            )
        else:
            return stored.customer_id
    return customer.id


async def _store_stripe_id(sessions: async_sessionmaker[AsyncSession], invoice_id: int, stripe_invoice_id: str) -> None:
    async with sessions() as session, session.begin():
        invoice = await session.get(Invoice, invoice_id)
        if invoice is not None and invoice.stripe_invoice_id != stripe_invoice_id:
            invoice.stripe_invoice_id, invoice.updated_at = stripe_invoice_id, utcnow()
            await audit.record(
                session,
                STRIPE_ACTOR,
                "contracts.invoice_sent_to_stripe",
                "invoice",
                invoice_id,
                {"number": invoice.number, "stripe_invoice": stripe_invoice_id},
            )


async def bill_in_stripe(job: outbox.Job, settings: Settings) -> None:
    """Customer, draft invoice, items, finalise, send. Every call carries a key derived from the job's, so a
    retry after a failure or a timeout (Stripe may have done the work) repeats nothing."""
    key = job.idempotency_key
    async with _sessions(settings) as sessions, stripe_client(settings) as client:
        bill = await _to_bill(sessions, int(job.payload["invoice_id"]))
        if bill is None:
            return
        customer_id = await _customer(client, sessions, bill)
        created = await client.v1.invoices.create_async(
            {
                "customer": customer_id,
                "collection_method": "send_invoice",
                "days_until_due": bill.days_until_due,
                "currency": "krw",
                "auto_advance": False,
                "pending_invoice_items_behavior": "exclude",
                "description": f"{bill.contract_number} · {bill.period_start.isoformat()} – {bill.period_end.isoformat()}",
                "metadata": {
                    "invoice_id": str(bill.invoice_id),
                    "number": bill.number,
                    "contract": bill.contract_number,
                },
            },
            {"idempotency_key": f"{key}-create"},
        )
        stripe_id = created.id
        if bill.stripe_invoice_id != stripe_id:
            await _store_stripe_id(sessions, bill.invoice_id, stripe_id)
        if created.status == "draft":
            items = [
                (
                    "net",
                    bill.amount_net,
                    f"{bill.number} ({bill.period_start.isoformat()} – {bill.period_end.isoformat()})",
                )
            ]
            if bill.amount_vat:
                items.append(("vat", bill.amount_vat, f"{bill.number}: VAT"))
            for name, amount, description in items:
                await client.v1.invoice_items.create_async(
                    {
                        "customer": customer_id,
                        "invoice": stripe_id,
                        "amount": amount,
                        "currency": "krw",
                        "description": description,
                    },
                    {"idempotency_key": f"{key}-item-{name}"},
                )
            finalized = await client.v1.invoices.finalize_invoice_async(
                stripe_id, {"auto_advance": False}, {"idempotency_key": f"{key}-finalize"}
            )
            status = finalized.status
        else:
            status = (await client.v1.invoices.retrieve_async(stripe_id)).status
        if status == "open":
            await client.v1.invoices.send_invoice_async(stripe_id, None, {"idempotency_key": f"{key}-send"})


# --- Stripe's state applied to ours --------------------------------------------------------------------


def _paid_at(stripe_invoice: Any, fallback: int) -> datetime:
    transitions = stripe_invoice.get("status_transitions") or {}
    return datetime.fromtimestamp(int(transitions.get("paid_at") or fallback), UTC)


async def find_invoice(session: AsyncSession, stripe_invoice: Any) -> Invoice | None:
    """Ours, by the Stripe id we stored, or by our id in its metadata (a webhook may come before we stored it)."""
    found = await session.scalar(
        sa.select(Invoice).where(col(Invoice.stripe_invoice_id) == stripe_invoice["id"]).with_for_update()
    )
    if found is not None:
        return found
    ours = (stripe_invoice.get("metadata") or {}).get("invoice_id")
    if ours and str(ours).isdigit():
        found = await session.scalar(
            sa.select(Invoice)
            .where(col(Invoice.id) == int(ours), col(Invoice.payment_mode) == STRIPE)
            .with_for_update()
        )
        if found is not None and found.stripe_invoice_id in (None, stripe_invoice["id"]):
            return found
    return None


async def apply_stripe_status(
    session: AsyncSession,
    invoice: Invoice,
    stripe_invoice: Any,
    at: int,
    via: str,
    zone: tzinfo = UTC,
) -> str | None:
    """Bring our invoice to Stripe's status when that is a step forward; returns the change made, or None.

    `at` is when Stripe's status held (the event's time); an older report than the last applied is ignored,
    and a status our workflow cannot reach from ours (paid back to open, void after paid) is never applied."""
    target = STRIPE_STATUS.get(stripe_invoice.get("status") or "")
    if target is None or target == invoice.status:
        return None
    if invoice.stripe_status_at is not None and at < invoice.stripe_status_at:
        return None
    if not workflow.INVOICE.allows(invoice.status, target):
        return None
    change = workflow.INVOICE.check(invoice.status, target)
    invoice.status, invoice.stripe_status_at, invoice.updated_at = target, at, utcnow()
    if invoice.stripe_invoice_id is None:
        invoice.stripe_invoice_id = stripe_invoice["id"]
    summary = {"number": invoice.number, "stripe_invoice": stripe_invoice["id"], "via": via}
    if target == InvoiceStatus.paid:
        amount = int(stripe_invoice.get("amount_paid") or invoice.amount_total)
        paid_at = _paid_at(stripe_invoice, at)
        payment = Payment(
            invoice_id=row_id(invoice),
            amount=amount,
            paid_on=paid_at.astimezone(zone).date(),
            method="stripe",
            reference=str(stripe_invoice["id"]),
        )
        session.add(payment)
        invoice.paid_at = paid_at
        await session.flush()
        await audit.record(
            session, STRIPE_ACTOR, "contracts.invoice_paid", "invoice", invoice.id, {**summary, "amount": amount}
        )
        await hooks.emit("invoice.paid", session, invoice_id=invoice.id, payment_id=payment.id)
    else:
        await session.flush()
        action = {
            InvoiceStatus.void: "contracts.invoice_voided",
            InvoiceStatus.uncollectible: "contracts.invoice_uncollectible",
        }[target]
        await audit.record(session, STRIPE_ACTOR, action, "invoice", invoice.id, summary)
    return change


# --- reconciliation -------------------------------------------------------------------------------------


async def fetch_stripe_invoices(settings: Settings) -> list[dict[str, Any]]:
    """Every invoice in the Stripe account, page by page."""
    found: list[dict[str, Any]] = []
    async with stripe_client(settings) as client:
        after: str | None = None
        while True:
            params: InvoiceListParams = {"limit": 100}
            if after:
                params["starting_after"] = after
            page = await client.v1.invoices.list_async(params)
            found.extend(item.to_dict() for item in page.data)
            if not page.has_more or not page.data:
                return found
            after = page.data[-1].id


@dataclass
class Reconciliation:
    checked: int = 0
    repaired: list[str] = field(default_factory=list)  # "INV-...: open -> paid"
    linked: list[str] = field(default_factory=list)  # ours had no Stripe id yet
    unknown: list[str] = field(default_factory=list)  # in Stripe, not ours
    missing: list[str] = field(default_factory=list)  # ours (Stripe mode), absent from Stripe
    requeued: list[str] = field(default_factory=list)  # of those, the ones whose sending had given up: tried again
    disagreeing: list[str] = field(default_factory=list)  # differ, but ours cannot move there


async def reconcile(
    session: AsyncSession,
    stripe_invoices: list[dict[str, Any]],
    now: datetime | None = None,
    zone: tzinfo = UTC,
) -> Reconciliation:
    """Compare Stripe's invoices with ours and repair ours (status, payment, missing Stripe id)."""
    report = Reconciliation()
    at = int((now or utcnow()).timestamp())
    seen: set[int] = set()
    for stripe_invoice in stripe_invoices:
        report.checked += 1
        invoice = await find_invoice(session, stripe_invoice)
        if invoice is None:
            report.unknown.append(stripe_invoice["id"])
            continue
        seen.add(row_id(invoice))
        before = invoice.status
        if invoice.stripe_invoice_id is None:
            invoice.stripe_invoice_id = stripe_invoice["id"]
            await session.flush()
            await audit.record(
                session,
                STRIPE_ACTOR,
                "contracts.invoice_linked",
                "invoice",
                invoice.id,
                {"number": invoice.number, "stripe_invoice": stripe_invoice["id"], "via": "reconcile"},
            )
            report.linked.append(f"{invoice.number}: {stripe_invoice['id']}")
        # Stripe's current state is newer than any event we applied.
        change = await apply_stripe_status(
            session, invoice, stripe_invoice, max(at, invoice.stripe_status_at or 0), "reconcile", zone
        )
        if change:
            report.repaired.append(f"{invoice.number}: {before} -> {invoice.status}")
        elif STRIPE_STATUS.get(stripe_invoice.get("status") or "") not in (None, invoice.status):
            report.disagreeing.append(f"{invoice.number}: ours {invoice.status}, Stripe {stripe_invoice.get('status')}")
    missing = (
        await session.execute(
            sa.select(col(Invoice.id), col(Invoice.number))
            .where(
                col(Invoice.payment_mode) == STRIPE,
                col(Invoice.status) == InvoiceStatus.open,
                col(Invoice.id).not_in(seen) if seen else sa.true(),
            )
            .order_by(col(Invoice.id))
        )
    ).all()
    for invoice_id, number in missing:
        report.missing.append(number)
        if await _requeue(session, invoice_id, number):
            report.requeued.append(number)
    return report


async def _requeue(session: AsyncSession, invoice_id: int, number: str) -> bool:
    """Send again an invoice whose outbox job gave up (Stripe was down for hours): the same job, the same
    keys, so whatever part Stripe had done is not done twice. A job still pending is left to the worker."""
    key = f"invoice-{invoice_id}"
    message = await session.scalar(sa.select(OutboxMessage).where(col(OutboxMessage.idempotency_key) == key))
    if message is not None and message.status != "failed":
        return False
    if message is None:
        await outbox.enqueue(session, STRIPE_JOB, {"invoice_id": invoice_id}, key)
    else:
        message.status, message.attempts, message.next_attempt_at, message.locked_until = "pending", 0, utcnow(), None
    await audit.record(
        session,
        STRIPE_ACTOR,
        "contracts.invoice_resent_to_stripe",
        "invoice",
        invoice_id,
        {"number": number, "via": "reconcile"},
    )
    return True


async def store_event(session: AsyncSession, event_id: str, event_type: str, created: int) -> bool:
    """Record a webhook event once; False when it was already processed (here or in a concurrent delivery)."""
    if await session.get(StripeEvent, event_id) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(StripeEvent(event_id=event_id, type=event_type, created=created))
            await session.flush()
    except IntegrityError:
        return False
    return True
