"""A `market worker` killed while billing an invoice in Stripe, after Stripe had carried out a call but before
its answer reached the worker (the effect has happened; our database does not know it yet): a worker started
again once the lease ran out finishes the job, and Stripe ends with one customer and one invoice for it, sent
once, whose id our invoice records."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

import pytest
import sqlalchemy as sa

from contracts import sweep
from contracts.invoices import STRIPE_JOB
from contracts.models import Invoice, StripeCustomer
from market import clock
from market.database import utcnow
from tests.contracts.factories import active_contract
from tests.contracts.stripe_standin import API_KEY, outbox_messages, standin, stripe_settings  # noqa: F401 (fixtures)
from tests.helpers import audit_actions, count
from tests.market.test_outbox import expire_lease
from tests.processes import MARKET, cli_env

# Where the worker dies: right after Stripe made the customer, made the draft invoice, or sent the invoice.
HELD_CALLS = {"customer created": "/v1/customers", "invoice created": "/v1/invoices", "invoice sent": "/send"}


async def run_worker(env: dict[str, str]) -> str:
    worker = await asyncio.create_subprocess_exec(
        str(MARKET),
        "worker",
        "--once",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(worker.communicate(), timeout=120)
    assert worker.returncode == 0, stderr.decode()
    return stdout.decode()


@pytest.mark.parametrize("held", list(HELD_CALLS))
async def test_a_worker_killed_after_stripe_did_the_work_bills_the_invoice_exactly_once_after_restart(
    sessions,
    stripe_settings,
    standin,
    database_url,
    tmp_path,
    held,
):
    # A contract that began today: the worker's own daily sweep finds its one due period already issued.
    today = clock.today(stripe_settings.zone)
    contract_id = await active_contract(sessions, stripe_settings, starts_on=today, ends_on=today + timedelta(days=364))
    async with sessions() as session, session.begin():
        await sweep.sweep(session, stripe_settings, today)
    async with sessions() as session:
        (invoice,) = (await session.scalars(sa.select(Invoice).where(Invoice.contract_id == contract_id))).all()
    (message,) = await outbox_messages(sessions, STRIPE_JOB)
    env = cli_env(database_url, tmp_path, stripe_api_key=API_KEY, stripe_api_base=standin.url)

    standin.hold_after_applying(HELD_CALLS[held])
    worker = await asyncio.create_subprocess_exec(
        str(MARKET),
        "worker",
        "--once",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        reached = await asyncio.to_thread(standin.holding.wait, 120)
        assert reached, "the worker never made the call"
    finally:
        if worker.returncode is None:
            worker.send_signal(signal.SIGKILL)
        await worker.wait()
        standin.release()
    assert worker.returncode == -signal.SIGKILL

    # Killed mid-job: Stripe has done the work; the message is leased to the dead worker.
    if held == "customer created":
        assert len(standin.customers) == 1 and await count(sessions, StripeCustomer) == 0
    elif held == "invoice created":
        assert len(standin.invoices) == 1
        async with sessions() as session:
            assert (await session.get(Invoice, invoice.id)).stripe_invoice_id is None
    else:
        (remote,) = standin.invoices.values()
        assert remote["status"] == "open" and remote["sent_count"] == 1
    (message,) = await outbox_messages(sessions, STRIPE_JOB)
    assert message.status == "pending" and message.attempts == 1 and message.locked_until > utcnow()

    await expire_lease(sessions, message.id)
    await run_worker(env)

    (message,) = await outbox_messages(sessions, STRIPE_JOB)
    assert message.status == "done" and message.attempts == 2, message.last_error
    assert len(standin.customers) == 1 and len(standin.invoices) == 1 and len(standin.invoice_items) == 2
    (remote,) = standin.invoices.values()
    assert remote["metadata"]["invoice_id"] == str(invoice.id)
    assert remote["status"] == "open" and remote["sent_count"] == 1 and remote["amount_due"] == invoice.amount_total
    held_calls = [call for call in standin.calls if call.method == "POST" and call.path.endswith(HELD_CALLS[held])]
    assert [call.outcome for call in held_calls] == ["held", "replayed"]  # the restarted worker got the first answer
    async with sessions() as session:
        assert (await session.get(Invoice, invoice.id)).stripe_invoice_id == remote["id"]
        customer = await session.get(StripeCustomer, invoice.agency_id)
    assert customer is not None and customer.customer_id == remote["customer"]
    actions = await audit_actions(sessions)
    assert (
        actions.count("contracts.invoice_sent_to_stripe") == 1
        and actions.count("contracts.stripe_customer_created") == 1
    )
