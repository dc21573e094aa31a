"""Stripe mode: an issued invoice goes to Stripe from the outbox (customer per agency, draft invoice, items,
finalised, sent) through the real SDK against the local stand-in, each call with a deterministic idempotency
key; a Stripe that fails or stalls is retried later and nothing is created twice."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from contracts import payments, sweep
from contracts.models import Invoice, StripeCustomer
from market import outbox
from tests.contracts.factories import active_contract, contract_parties
from tests.contracts.stripe_standin import make_due, outbox_messages, standin, stripe_settings  # noqa: F401 (fixtures)
from tests.helpers import audit_actions, count

FEBRUARY_10 = date(2026, 2, 10)


async def issue(sessions, settings, today: date = FEBRUARY_10, parties: Any = None) -> list[Invoice]:
    parties = parties or await contract_parties(sessions)
    contract_id = await active_contract(sessions, settings, parties)
    async with sessions() as session, session.begin():
        await sweep.sweep(session, settings, today)
    async with sessions() as session:
        return list(
            (
                await session.scalars(
                    sa.select(Invoice).where(Invoice.contract_id == contract_id).order_by(Invoice.period)
                )
            ).all()
        )


async def reload(sessions, invoice_id: int) -> Invoice:
    async with sessions() as session:
        return await session.get(Invoice, invoice_id)


async def test_an_issued_invoice_is_created_finalised_and_sent_in_stripe_with_deterministic_keys(
    sessions, stripe_settings, standin
):
    issued = await issue(sessions, stripe_settings)
    assert [i.payment_mode for i in issued] == ["stripe", "stripe"]
    messages = await outbox_messages(sessions, "stripe.invoice")
    assert [m.idempotency_key for m in messages] == [f"invoice-{i.id}" for i in issued]
    assert standin.calls == []  # nothing leaves before the outbox runs, after commit

    assert await outbox.run_once(sessions, stripe_settings) == 2
    assert [m.status for m in await outbox_messages(sessions, "stripe.invoice")] == ["done", "done"]
    assert len(standin.customers) == 1  # one customer per agency
    assert len(standin.calls_to("POST", "/v1/customers")) == 1
    first = await reload(sessions, issued[0].id)
    remote = standin.invoices[first.stripe_invoice_id]
    assert remote["status"] == "open" and remote["sent_count"] == 1
    assert (
        remote["collection_method"] == "send_invoice" and remote["days_until_due"] == 30 and remote["currency"] == "krw"
    )
    assert remote["metadata"] == {
        "invoice_id": str(first.id),
        "number": first.number,
        "contract": remote["metadata"]["contract"],
    }
    assert [line["amount"] for line in remote["lines"]["data"]] == [first.amount_net, first.amount_vat]
    assert remote["amount_due"] == first.amount_total
    keys = [
        call.idempotency_key
        for call in standin.calls
        if call.method == "POST" and call.idempotency_key and call.idempotency_key.startswith(f"invoice-{first.id}-")
    ]
    assert keys == [f"invoice-{first.id}-{step}" for step in ("create", "item-net", "item-vat", "finalize", "send")]
    async with sessions() as session:
        customer = await session.get(StripeCustomer, first.agency_id)
    assert customer is not None and customer.customer_id == remote["customer"]
    assert "contracts.invoice_sent_to_stripe" in await audit_actions(sessions)


async def test_a_stripe_failing_midway_is_retried_with_the_same_keys_and_nothing_is_created_twice(
    sessions, stripe_settings, standin
):
    issued = await issue(sessions, stripe_settings, today=date(2026, 1, 5))
    assert len(issued) == 1
    standin.fail_next(
        2, after=2
    )  # the customer and the invoice are made; the first item fails (500), then the retry's first call
    await outbox.run_once(sessions, stripe_settings)
    (message,) = await outbox_messages(sessions, "stripe.invoice")
    assert message.status == "pending" and message.attempts == 1 and "told to fail" in message.last_error
    await make_due(sessions)
    await outbox.run_once(sessions, stripe_settings)
    (message,) = await outbox_messages(sessions, "stripe.invoice")
    assert message.status == "pending" and message.attempts == 2

    await make_due(sessions)  # Stripe has recovered
    await outbox.run_once(sessions, stripe_settings)
    (message,) = await outbox_messages(sessions, "stripe.invoice")
    assert message.status == "done" and message.attempts == 3
    assert len(standin.customers) == 1 and len(standin.invoices) == 1 and len(standin.invoice_items) == 2
    (remote,) = standin.invoices.values()
    assert remote["status"] == "open" and remote["sent_count"] == 1 and remote["amount_due"] == issued[0].amount_total
    creates = standin.calls_to("POST", "/v1/invoices")
    assert {call.idempotency_key for call in creates if call.path == "/v1/invoices"} == {
        f"invoice-{issued[0].id}-create"
    }
    assert [call.outcome for call in creates if call.path == "/v1/invoices"] == ["ok", "failed", "replayed"]
    assert (await reload(sessions, issued[0].id)).stripe_invoice_id == remote["id"]


async def test_a_stalled_stripe_times_out_and_the_retry_gets_the_work_it_had_done(
    sessions, stripe_settings, standin, monkeypatch
):
    monkeypatch.setattr(payments, "TIMEOUT_SECONDS", 0.5)
    standin.stall_seconds = 1.2
    issued = await issue(sessions, stripe_settings, today=date(2026, 1, 5))
    standin.stall_next(1, after=1)  # the invoice is created in Stripe, but the answer comes too late
    await outbox.run_once(sessions, stripe_settings)
    (message,) = await outbox_messages(sessions, "stripe.invoice")
    assert message.status == "pending"
    assert "timeout" in message.last_error.lower() or "timed out" in message.last_error.lower()
    standin.wait_idle()
    assert len(standin.invoices) == 1 and (await reload(sessions, issued[0].id)).stripe_invoice_id is None

    await make_due(sessions)
    await outbox.run_once(sessions, stripe_settings)
    (message,) = await outbox_messages(sessions, "stripe.invoice")
    assert message.status == "done"
    assert len(standin.invoices) == 1 and len(standin.invoice_items) == 2  # the late invoice, not a second one
    (remote,) = standin.invoices.values()
    assert (await reload(sessions, issued[0].id)).stripe_invoice_id == remote["id"] and remote["sent_count"] == 1


async def test_the_agency_keeps_one_stripe_customer_across_contracts(sessions, stripe_settings, standin):
    parties = await contract_parties(sessions)
    await issue(sessions, stripe_settings, today=date(2026, 1, 5), parties=parties)
    await outbox.run_once(sessions, stripe_settings)
    from tests.contracts.factories import contract_parties as more_parties

    second = await more_parties(sessions, agency=parties.agency, agency_user=parties.agency_user)
    await issue(sessions, stripe_settings, today=date(2026, 1, 6), parties=second)
    await outbox.run_once(sessions, stripe_settings)
    assert len(standin.customers) == 1 and len(standin.invoices) == 2
    assert await count(sessions, StripeCustomer) == 1
    assert len({invoice["customer"] for invoice in standin.invoices.values()}) == 1


async def test_a_stripe_invoice_takes_no_bank_transfer_and_cannot_be_voided_here(sessions, stripe_settings, standin):
    import pytest

    from contracts import invoices
    from market.errors import Conflict
    from tests.contracts.factories import principal
    from tests.helpers import make_organisation, make_user

    parties = await contract_parties(sessions)
    (issued,) = await issue(sessions, stripe_settings, today=date(2026, 1, 5), parties=parties)
    with pytest.raises(Conflict, match="paid through Stripe"):
        async with sessions() as session, session.begin():
            await invoices.record_payment(
                session,
                parties.seller,
                issued.id,
                invoices.PaymentInput(amount=1, paid_on=date(2026, 1, 5)),
                today=date(2026, 1, 5),
            )
    operator_org = await make_organisation(sessions, "operator")
    operator = principal(await make_user(sessions, operator_org), operator_org)
    with pytest.raises(Conflict, match="void it there"):
        async with sessions() as session, session.begin():
            await invoices.void_invoice(session, operator, issued.id, invoices.VoidInput(reason="Issued in error"))
