"""Demo contracts in every state (draft, sent, declined, signed, active, completed, terminated, cancelled), drafted,
sent and signed through the real service functions from the demo catalogue's services. Idempotent: nothing is
added once the demo agencies have any contract."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from catalog import listed_service_ids
from contracts import authority, budgets, documents, drafting, invoices, lifecycle, signing, views
from contracts.models import Contract
from contracts.pricing import add_months
from contracts.schemas import BudgetInput, DraftInput, SignInput, TerminateInput
from market import clock
from market.auth import Principal
from market.database import row_id
from market.models import Organisation, User
from market.settings import Settings

SEOUL, MOIS = "buyer@seoul.example.go.kr", "buyer@mois.example.go.kr"
SEOUL_SIGNER, MOIS_SIGNER = "signer@seoul.example.go.kr", "signer@mois.example.go.kr"
SEOUL_ADMIN, MOIS_ADMIN = "admin@seoul.example.go.kr", "admin@mois.example.go.kr"
APPROVAL_THRESHOLD = 100_000_000  # won with VAT: drafts above it need a second member's approval before sending
HANBIT, NURI, BARAM = (
    "provider@hanbit-cloud.example.kr",
    "provider@nurisoft.example.kr",
    "provider@baramdata.example.kr",
)


async def _principal(session: AsyncSession, email: str) -> Principal | None:
    row = (
        await session.execute(
            sa.select(User, Organisation)
            .join(Organisation, col(Organisation.id) == col(User.organisation_id))
            .where(col(User.email) == email)
        )
    ).first()
    if row is None:
        return None
    user, organisation = row
    return Principal(
        user.id,
        user.email,
        user.name,
        organisation.id,
        organisation.kind,
        organisation.name,
        user.role,
        None,
        "127.0.0.1",
    )


def _typical_quantity(unit: str, months: int) -> int:
    """A plausible order for the unit: hours and person-days are counted for the whole term."""
    if unit.endswith("hour"):
        return 8 * 730 * months  # eight vCPUs around the clock
    return {"gb_month": 5_000, "user_month": 300, "instance_month": 6, "project": 1, "person_day": 40, "month": 1}.get(
        unit, 10
    )


async def load(session: AsyncSession, settings: Settings, echo: Callable[[str], None] = print) -> int:
    from market.demo import DEMO_PASSWORD

    emails = (SEOUL, MOIS, HANBIT, NURI, BARAM, SEOUL_SIGNER, MOIS_SIGNER, SEOUL_ADMIN, MOIS_ADMIN)
    people = {email: await _principal(session, email) for email in emails}
    if any(person is None for person in people.values()):
        echo("contracts: demo organisations missing; skipped")
        return 0
    seoul, mois, hanbit, nuri, baram, seoul_signer, mois_signer, seoul_admin, mois_admin = (
        people[email] for email in emails
    )
    assert seoul and mois and hanbit and nuri and baram and seoul_signer and mois_signer and seoul_admin and mois_admin
    # the buyer drafts and sends; the agency's signer approves (above the threshold) and signs
    signer_of = {seoul.organisation_id: seoul_signer, mois.organisation_id: mois_signer}
    if await session.scalar(
        sa.select(col(Contract.id))
        .where(col(Contract.agency_id).in_([seoul.organisation_id, mois.organisation_id]))
        .limit(1)
    ):
        echo("contracts: demo contracts already there")
        return 0
    services = {
        person.organisation_id: await listed_service_ids(session, person.organisation_id)
        for person in (hanbit, nuri, baram)
    }
    if not all(len(ids) >= 2 for ids in services.values()):
        echo("contracts: not enough listed demo services; skipped")
        return 0
    store = documents.store_for(settings)
    today = clock.today()
    for admin in (seoul_admin, mois_admin):
        for year in (today.year - 1, today.year, today.year + 1):
            await budgets.set_budget(session, admin, BudgetInput(year=year, amount=900_000_000))
        if await authority.approval_threshold(session, admin.organisation_id) is None:
            await authority.set_approval_threshold(session, admin, APPROVAL_THRESHOLD)

    async def drafted(
        agency: Principal, provider: Principal, pick: int, starts_on: date, months: int, **terms: Any
    ) -> Contract:
        service_id = services[provider.organisation_id][pick]
        offer = await drafting.listed_offer(session, service_id)
        plan = offer.plans[0]
        quantity = terms.pop("quantity", _typical_quantity(plan.unit, months))
        data = DraftInput(
            service_id=service_id,
            plan_id=plan.id,
            quantity=quantity,
            starts_on=starts_on,
            ends_on=add_months(starts_on, max(months, plan.minimum_term_months)) - timedelta(days=1),
            budget_reference=terms.pop("budget_reference", f"{starts_on.year}-IT-{pick + 1:03d}"),
            **terms,
        )
        return await drafting.draft(session, agency, data)

    async def sent(contract: Contract, agency: Principal) -> None:
        version = await views.version_of(session, contract)
        if version.amount_total > APPROVAL_THRESHOLD:
            await authority.approve(session, signer_of[agency.organisation_id], row_id(contract))
        await drafting.send(session, agency, store, row_id(contract))

    async def signed_by(contract: Contract, *parties: Principal, on: date) -> None:
        for party in parties:
            signer = signer_of.get(party.organisation_id, party)
            version = await views.version_of(session, contract)
            await signing.sign(
                session,
                signer,
                store,
                row_id(contract),
                version.number,
                SignInput(
                    password=DEMO_PASSWORD,
                    confirm_read=True,
                    signer_name=signer.name,
                    document_sha256=version.document_sha256 or "",
                ),
                address="127.0.0.1",
                user_agent="market demo",
                today=on,
            )

    created = 0
    # draft
    await drafted(
        seoul,
        hanbit,
        0,
        add_months(today.replace(day=1), 1),
        12,
        special_terms="Training for 30 staff in the first month.",
    )
    created += 1
    # sent, waiting for the provider
    contract = await drafted(mois, nuri, 0, add_months(today.replace(day=1), 1), 12, route="central")
    await sent(contract, mois)
    created += 1
    # declined by the provider
    contract = await drafted(seoul, baram, 1, add_months(today.replace(day=1), 2), 6)
    await sent(contract, seoul)
    await lifecycle.decline(
        session, baram, row_id(contract), "The requested start date is too early for the migration."
    )
    created += 1
    # signed, starting next month
    contract = await drafted(mois, hanbit, 1, add_months(today.replace(day=1), 1), 12)
    await sent(contract, mois)
    await signed_by(contract, hanbit, mois, on=today)
    created += 1
    # active, both orders of signature
    for agency, provider, pick, route in (
        (seoul, hanbit, 1, "direct"),
        (mois, baram, 0, "central"),
        (seoul, nuri, 1, "direct"),
    ):
        starts_on = add_months(today.replace(day=1), -3)
        contract = await drafted(
            agency, provider, pick, starts_on, 12, route=route, billing_period="quarterly" if pick else "monthly"
        )
        await sent(contract, agency)
        await signed_by(contract, *((provider, agency) if pick else (agency, provider)), on=starts_on)
        created += 1
    # completed: ran last year
    starts_on = add_months(today.replace(day=1), -15)
    contract = await drafted(seoul, nuri, 0, starts_on, 12)
    await sent(contract, seoul)
    await signed_by(contract, nuri, seoul, on=starts_on)
    await lifecycle.advance_contracts(session, today)
    created += 1
    # terminated early
    starts_on = add_months(today.replace(day=1), -6)
    contract = await drafted(mois, hanbit, 0, starts_on, 24)
    await sent(contract, mois)
    await signed_by(contract, hanbit, mois, on=starts_on)
    await lifecycle.terminate(
        session,
        mois,
        row_id(contract),
        TerminateInput(reason="The system moved to the ministry's shared platform.", effective_on=today),
        today=today,
    )
    created += 1
    # cancelled before signature
    contract = await drafted(mois, baram, 1, add_months(today.replace(day=1), 1), 6)
    await lifecycle.cancel(session, mois, row_id(contract), "The project was postponed to next year.")
    created += 1
    echo(f"contracts: {created}")
    created += await _invoices(
        session, settings, today, {person.organisation_id: person for person in (hanbit, nuri, baram)}
    )
    return created


async def _invoices(session: AsyncSession, settings: Settings, today: date, providers: dict[int, Principal]) -> int:
    """The invoices of every begun period; those whose period has ended were paid by transfer, the rest are open.
    With Stripe configured, Stripe collects them all: they stay open until its webhooks say otherwise."""
    issued = await invoices.issue_due_invoices(session, settings, today)
    paid = 0
    for invoice in issued.invoices:
        if invoice.period_end < today and invoice.provider_id in providers and invoice.payment_mode == "manual":
            payment = invoices.PaymentInput(
                amount=invoice.amount_total, paid_on=min(invoice.due_on, today), reference=f"Transfer {invoice.number}"
            )
            await invoices.record_payment(
                session, providers[invoice.provider_id], row_id(invoice), payment, today=today
            )
            paid += 1
    return len(issued.invoices)
