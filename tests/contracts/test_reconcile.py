"""`market payments reconcile`: Stripe's invoices compared with ours, ours repaired (a payment whose webhook
never came, a missing Stripe id), never moved backwards, and the differences printed."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from contracts import payments, sweep
from contracts.models import Invoice, Payment
from market import outbox
from market.cli import main
from tests.contracts.factories import active_contract, contract_parties
from tests.contracts.stripe_standin import API_KEY, standin, stripe_settings  # noqa: F401 (fixtures)
from tests.helpers import audit_actions, count


async def two_invoices_one_sent(sessions, stripe_settings) -> list[Invoice]:
    """February's sweep issues January's and February's invoices; only January's reaches Stripe."""
    contract_id = await active_contract(sessions, stripe_settings, await contract_parties(sessions))
    async with sessions() as session, session.begin():
        await sweep.sweep(session, stripe_settings, date(2026, 2, 10))
    await outbox.run_once(sessions, stripe_settings, limit=1)
    async with sessions() as session:
        return list(
            (
                await session.scalars(
                    sa.select(Invoice).where(Invoice.contract_id == contract_id).order_by(Invoice.period)
                )
            ).all()
        )


@pytest.fixture
def cli_env(monkeypatch, database_url, tmp_path, standin):
    monkeypatch.setenv("MARKET_DATABASE_URL", database_url)
    monkeypatch.setenv("MARKET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MARKET_STRIPE_API_KEY", API_KEY)
    monkeypatch.setenv("MARKET_STRIPE_API_BASE", standin.url)


def test_reconcile_repairs_a_payment_whose_webhook_never_came_and_reports_the_rest(
    sessions, stripe_settings, standin, cli_env
):
    sent, pending = asyncio.run(two_invoices_one_sent(sessions, stripe_settings))
    assert sent.stripe_invoice_id and pending.stripe_invoice_id is None
    standin.set_status(sent.stripe_invoice_id, "paid")  # paid in Stripe; the webhook was lost
    standin.invoices["in_foreign"] = {"id": "in_foreign", "object": "invoice", "status": "open", "metadata": {}}

    result = CliRunner().invoke(main, ["payments", "reconcile"])
    assert result.exit_code == 0, result.output
    assert "Stripe invoices checked: 2" in result.output
    assert f"Repaired: 1\n  {sent.number}: open -> paid" in result.output
    assert "In Stripe but not ours: 1\n  in_foreign" in result.output
    assert f"Ours (Stripe mode) missing from Stripe: 1\n  {pending.number}" in result.output

    async def check() -> None:
        async with sessions() as session:
            repaired = await session.get(Invoice, sent.id)
            payment = await session.scalar(sa.select(Payment).where(Payment.invoice_id == sent.id))
        assert repaired.status == "paid" and payment.method == "stripe" and payment.amount == sent.amount_total
        assert "contracts.invoice_paid" in await audit_actions(sessions)

    asyncio.run(check())
    again = CliRunner().invoke(main, ["payments", "reconcile"])
    assert again.exit_code == 0 and "Repaired: 0" in again.output
    assert asyncio.run(count(sessions, Payment)) == 1


async def test_reconcile_links_an_invoice_whose_stripe_id_was_not_stored_and_never_moves_one_backwards(
    sessions, stripe_settings, standin
):
    sent, _pending = await two_invoices_one_sent(sessions, stripe_settings)
    remote_id = sent.stripe_invoice_id
    async with sessions() as session, session.begin():
        invoice = await session.get(Invoice, sent.id)
        invoice.stripe_invoice_id = None  # the worker stopped between Stripe's answer and our write
    found = await payments.fetch_stripe_invoices(stripe_settings)
    async with sessions() as session, session.begin():
        report = await payments.reconcile(session, found)
    assert report.linked == [f"{sent.number}: {remote_id}"] and report.repaired == []

    async with (
        sessions() as session,
        session.begin(),
    ):  # paid here (say, recorded from a webhook) while Stripe still says open
        invoice = await session.get(Invoice, sent.id)
        invoice.status = "paid"
    async with sessions() as session, session.begin():
        report = await payments.reconcile(session, await payments.fetch_stripe_invoices(stripe_settings))
    assert report.repaired == [] and report.disagreeing == [f"{sent.number}: ours paid, Stripe open"]
    async with sessions() as session:
        assert (await session.get(Invoice, sent.id)).status == "paid"


async def test_reconcile_reads_every_page_of_stripes_list(sessions, stripe_settings, standin):
    for n in range(105):
        standin.invoices[f"in_bulk{n:04d}"] = {
            "id": f"in_bulk{n:04d}",
            "object": "invoice",
            "status": "open",
            "metadata": {},
        }
    found = await payments.fetch_stripe_invoices(stripe_settings)
    assert len(found) == 105 and len({item["id"] for item in found}) == 105
    assert len(standin.calls_to("GET", "/v1/invoices")) == 2


def test_reconcile_refuses_to_run_without_a_stripe_key(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("MARKET_DATABASE_URL", database_url)
    monkeypatch.setenv("MARKET_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MARKET_STRIPE_API_KEY", raising=False)
    result = CliRunner().invoke(main, ["payments", "reconcile"])
    assert result.exit_code != 0 and "MARKET_STRIPE_API_KEY is not set" in result.output


def test_reconcile_says_when_stripe_cannot_be_reached(monkeypatch, database_url, tmp_path, standin):
    monkeypatch.setenv("MARKET_DATABASE_URL", database_url)
    monkeypatch.setenv("MARKET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MARKET_STRIPE_API_KEY", API_KEY)
    monkeypatch.setenv("MARKET_STRIPE_API_BASE", standin.url)
    standin.fail_next(1)
    result = CliRunner().invoke(main, ["payments", "reconcile"])
    assert result.exit_code != 0 and "Cannot list Stripe's invoices" in result.output


async def test_reconcile_sends_again_an_invoice_whose_sending_gave_up_and_nothing_is_made_twice(
    sessions, stripe_settings, standin
):
    from market.models import OutboxMessage

    contract_id = await active_contract(sessions, stripe_settings, await contract_parties(sessions))
    async with sessions() as session, session.begin():
        await sweep.sweep(session, stripe_settings, date(2026, 1, 5))
        await session.execute(sa.update(OutboxMessage).values(max_attempts=1))
    standin.fail_next(1, after=1)  # the customer is made, the invoice is not; the job gives up for good
    await outbox.run_once(sessions, stripe_settings)
    async with sessions() as session:
        message = await session.scalar(sa.select(OutboxMessage))
        invoice = await session.scalar(sa.select(Invoice).where(Invoice.contract_id == contract_id))
    assert message.status == "failed" and len(standin.customers) == 1 and standin.invoices == {}

    async with sessions() as session, session.begin():
        report = await payments.reconcile(session, await payments.fetch_stripe_invoices(stripe_settings))
    assert report.missing == [invoice.number] and report.requeued == [invoice.number]
    assert "contracts.invoice_resent_to_stripe" in await audit_actions(sessions)
    await outbox.run_once(sessions, stripe_settings)
    async with sessions() as session:
        assert (await session.scalar(sa.select(OutboxMessage))).status == "done"
    assert len(standin.invoices) == 1 and len(standin.customers) == 1
    async with sessions() as session, session.begin():
        report = await payments.reconcile(session, await payments.fetch_stripe_invoices(stripe_settings))
    assert report.missing == [] and report.requeued == [] and report.repaired == []
