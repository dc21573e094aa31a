"""`POST /webhooks/stripe`: signed events mark invoices paid, void or uncollectible, exactly once, never
backwards; a bad or stale signature is refused; an unreachable database answers 5xx so Stripe retries."""

from __future__ import annotations

import json
import time
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from contracts import sweep
from contracts.models import Invoice, Payment, StripeEvent
from market import outbox
from market.app import create_app
from market.parts import Parts
from tests.contracts.factories import active_contract, contract_parties
from tests.contracts.stripe_standin import (  # noqa: F401 (fixtures)
    WEBHOOK_SECRET,
    StripeStandIn,
    deliver,
    signature_header,
    standin,
    stripe_app,
    stripe_client,
    stripe_settings,
)
from tests.helpers import audit_actions, count


@pytest.fixture
def paid_events(monkeypatch: pytest.MonkeyPatch, parts: Parts) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(parts, "subscribers", {name: list(functions) for name, functions in parts.subscribers.items()})

    async def record(session: Any, **data: Any) -> None:
        seen.append(data)

    parts.subscribe("invoice.paid", record)
    return seen


async def stripe_invoice(sessions, stripe_settings, standin: StripeStandIn) -> tuple[Invoice, str]:
    """One invoice issued and sent to the stand-in; returns ours and Stripe's id."""
    contract_id = await active_contract(sessions, stripe_settings, await contract_parties(sessions))
    async with sessions() as session, session.begin():
        await sweep.sweep(session, stripe_settings, date(2026, 1, 5))
    await outbox.run_once(sessions, stripe_settings)
    async with sessions() as session:
        invoice = await session.scalar(sa.select(Invoice).where(Invoice.contract_id == contract_id))
    assert invoice.stripe_invoice_id in standin.invoices
    return invoice, invoice.stripe_invoice_id


async def status_of(sessions, invoice_id: int) -> str:
    async with sessions() as session:
        return (await session.get(Invoice, invoice_id)).status


async def test_a_signed_paid_event_marks_the_invoice_paid_once_without_login_or_csrf(
    sessions, stripe_settings, standin, stripe_client, paid_events
):
    invoice, stripe_id = await stripe_invoice(sessions, stripe_settings, standin)
    event = standin.event("invoice.paid", standin.set_status(stripe_id, "paid"))
    response = await deliver(stripe_client, event)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "duplicate": False, "applied": "pay"}
    assert await status_of(sessions, invoice.id) == "paid"
    async with sessions() as session:
        payment = await session.scalar(sa.select(Payment).where(Payment.invoice_id == invoice.id))
        stored = await session.get(StripeEvent, event["id"])
    assert (payment.amount, payment.method, payment.reference) == (invoice.amount_total, "stripe", stripe_id)
    assert stored is not None and stored.type == "invoice.paid" and stored.created == event["created"]
    assert paid_events == [{"invoice_id": invoice.id, "payment_id": payment.id}]

    before = await audit_actions(sessions)
    again = await deliver(stripe_client, event)  # Stripe redelivers
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert await count(sessions, Payment) == 1 and len(paid_events) == 1 and await audit_actions(sessions) == before


async def test_events_out_of_order_never_move_an_invoice_backwards(sessions, stripe_settings, standin, stripe_client):
    invoice, stripe_id = await stripe_invoice(sessions, stripe_settings, standin)
    now = int(time.time())
    snapshot = dict(standin.invoices[stripe_id])
    uncollectible = standin.event(
        "invoice.marked_uncollectible", {**snapshot, "status": "uncollectible"}, created=now - 60
    )
    paid = standin.event(
        "invoice.paid", {**snapshot, "status": "paid", "amount_paid": invoice.amount_total}, created=now - 10
    )
    voided = standin.event("invoice.voided", {**snapshot, "status": "void"}, created=now - 120)

    assert (await deliver(stripe_client, paid)).json()["applied"] == "pay"
    late = await deliver(stripe_client, uncollectible)  # older news: it arrives after the payment
    assert late.status_code == 200 and late.json()["applied"] is None
    older = await deliver(stripe_client, voided)
    assert older.status_code == 200 and older.json()["applied"] is None
    assert await status_of(sessions, invoice.id) == "paid"
    assert await count(sessions, StripeEvent) == 3 and await count(sessions, Payment) == 1


async def test_uncollectible_then_paid_in_order_ends_paid(sessions, stripe_settings, standin, stripe_client):
    invoice, stripe_id = await stripe_invoice(sessions, stripe_settings, standin)
    now = int(time.time())
    first = standin.event(
        "invoice.marked_uncollectible", standin.set_status(stripe_id, "uncollectible"), created=now - 30
    )
    assert (await deliver(stripe_client, first)).json()["applied"] == "mark_uncollectible"
    assert await status_of(sessions, invoice.id) == "uncollectible"
    second = standin.event("invoice.paid", standin.set_status(stripe_id, "paid"), created=now)
    assert (await deliver(stripe_client, second)).json()["applied"] == "pay"
    assert await status_of(sessions, invoice.id) == "paid"
    actions = await audit_actions(sessions)
    assert actions[-2:] == ["contracts.invoice_uncollectible", "contracts.invoice_paid"]


async def test_a_voided_event_voids_an_open_invoice(sessions, stripe_settings, standin, stripe_client):
    invoice, stripe_id = await stripe_invoice(sessions, stripe_settings, standin)
    response = await deliver(stripe_client, standin.event("invoice.voided", standin.set_status(stripe_id, "void")))
    assert response.status_code == 200 and response.json()["applied"] == "void"
    assert await status_of(sessions, invoice.id) == "void" and await count(sessions, Payment) == 0


@pytest.mark.parametrize("how", ["wrong secret", "changed body", "stale timestamp", "no header", "garbled header"])
async def test_a_bad_or_stale_signature_is_refused_with_400_and_nothing_is_stored(
    sessions, stripe_settings, standin, stripe_client, how
):
    invoice, stripe_id = await stripe_invoice(sessions, stripe_settings, standin)
    event = standin.event("invoice.paid", standin.set_status(stripe_id, "paid"))
    payload = json.dumps(event, separators=(",", ":"))
    headers = {"Content-Type": "application/json"}
    if how == "wrong secret":
        headers["Stripe-Signature"] = signature_header(payload, "whsec_someone_else")
    elif how == "changed body":
        headers["Stripe-Signature"] = signature_header(payload)
        payload = payload.replace('"paid"', '"void"', 1)
    elif how == "stale timestamp":
        headers["Stripe-Signature"] = signature_header(payload, timestamp=int(time.time()) - 301)
    elif how == "garbled header":
        headers["Stripe-Signature"] = "t=yesterday,v1=abc"
    response = await stripe_client.post("/webhooks/stripe", content=payload.encode(), headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await count(sessions, StripeEvent) == 0 and await status_of(sessions, invoice.id) == "open"


async def test_a_signed_body_that_is_not_an_event_is_refused_and_a_recent_timestamp_is_accepted(
    sessions, stripe_client, settings
):
    payload = "not json"
    response = await stripe_client.post(
        "/webhooks/stripe",
        content=payload.encode(),
        headers={"Stripe-Signature": signature_header(payload), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    other = {
        "id": "evt_unrelated",
        "object": "event",
        "type": "customer.created",
        "created": int(time.time()) - 299,
        "data": {"object": {"id": "cus_1"}},
    }
    accepted = await deliver(stripe_client, other, timestamp=int(time.time()) - 290)  # within the 300-second tolerance
    assert accepted.status_code == 200 and accepted.json()["applied"] is None
    assert await count(sessions, StripeEvent) == 1


async def test_an_event_for_an_invoice_that_is_not_ours_is_acknowledged_and_changes_nothing(
    sessions, stripe_client, standin
):
    event = standin.event("invoice.paid", {"id": "in_elsewhere", "object": "invoice", "status": "paid", "metadata": {}})
    response = await deliver(stripe_client, event)
    assert response.status_code == 200 and response.json()["applied"] is None
    assert await count(sessions, Payment) == 0


async def test_webhooks_are_refused_with_503_when_no_secret_is_configured(client):
    event = {
        "id": "evt_1",
        "object": "event",
        "type": "invoice.paid",
        "created": int(time.time()),
        "data": {"object": {"id": "in_1"}},
    }
    response = await deliver(client, event)
    assert response.status_code == 503


async def test_the_webhook_answers_5xx_when_the_database_is_unreachable_so_stripe_retries(base_settings, tmp_path):
    unreachable = base_settings.with_(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/missing/folder/market.db", stripe_webhook_secret=WEBHOOK_SECRET
    )
    app = create_app(unreachable, check_schema=False)
    event = {
        "id": "evt_db",
        "object": "event",
        "type": "invoice.paid",
        "created": int(time.time()),
        "data": {"object": {"id": "in_1"}},
    }
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        response = await deliver(client, event)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"


async def test_the_same_event_delivered_twice_at_once_is_applied_once(
    sessions, stripe_settings, standin, stripe_client, paid_events
):
    import asyncio

    invoice, stripe_id = await stripe_invoice(sessions, stripe_settings, standin)
    event = standin.event("invoice.paid", standin.set_status(stripe_id, "paid"))
    responses = await asyncio.gather(deliver(stripe_client, event), deliver(stripe_client, event))
    assert [response.status_code for response in responses] == [200, 200]
    assert sorted(response.json()["duplicate"] for response in responses) == [False, True]
    assert await count(sessions, Payment) == 1 and await count(sessions, StripeEvent) == 1 and len(paid_events) == 1
    assert await status_of(sessions, invoice.id) == "paid"


async def test_two_transactions_handling_the_same_event_together_apply_it_once(
    sessions, stripe_settings, standin, paid_events
):
    import asyncio

    from contracts import webhooks

    _invoice, stripe_id = await stripe_invoice(sessions, stripe_settings, standin)
    event = standin.event("invoice.paid", standin.set_status(stripe_id, "paid"))

    async def handle() -> dict[str, Any]:
        async with sessions() as session, session.begin():
            return await webhooks.handle_event(session, json.loads(json.dumps(event)))

    results = await asyncio.gather(handle(), handle())
    assert sorted(result["duplicate"] for result in results) == [False, True]
    assert await count(sessions, Payment) == 1 and len(paid_events) == 1
