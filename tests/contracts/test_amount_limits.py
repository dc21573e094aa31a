"""Money is whole won in BIGINT columns, capped at `MONEY_MAX`, on both databases: a contract worth more than
₩2,147,483,647 (a 32-bit INTEGER's limit) is drafted, priced, stored, invoiced, paid and read back exactly, while an
amount beyond `MONEY_MAX` is refused with 422 and a message: an amendment's unit price is capped like a plan's, and
every computed total (draft, amendment, renewal) must fit."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from contracts import sweep
from contracts.models import Contract, ContractVersion, Invoice, Payment
from market.schemas import INTEGER_MAX, MONEY_MAX
from tests.contracts.factories import active_contract, bearer, contract_parties, signed_contract
from tests.helpers import count

DEAR = 10**14  # won a user a month: within a plan's price cap, but ten users for a year cost more than MONEY_MAX
# A project priced ₩4,545,454,545 before VAT: with 10 % VAT (₩454,545,454.5, rounded half up) ₩5,000,000,000.
BIG_NET, BIG_VAT, BIG_TOTAL = 4_545_454_545, 454_545_455, 5_000_000_000


def test_the_money_limit_is_beyond_32_bits_and_within_javascripts_safe_integers() -> None:
    assert INTEGER_MAX < BIG_NET < BIG_TOTAL < MONEY_MAX < 2**53 - 1


async def test_a_contract_worth_five_billion_won_is_drafted_priced_stored_and_read_back_exactly(
    client, sessions
) -> None:
    parties = await contract_parties(sessions, unit="project", unit_price=BIG_NET)
    agency = await bearer(sessions, parties.agency_user)
    budget = await client.put("/api/budgets", headers=agency, json={"year": 2027, "amount": 6_000_000_000})
    assert budget.status_code == 200, budget.text
    response = await client.post(
        "/api/contracts",
        headers=agency,
        json={
            "service_id": parties.service_id,
            "plan_id": parties.plan_id,
            "quantity": 1,
            "starts_on": "2027-01-01",
            "ends_on": "2027-12-31",
            "billing_period": "once",
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["amount_total"] == BIG_TOTAL
    contract_id = response.json()["id"]

    shown = (await client.get(f"/api/contracts/{contract_id}", headers=agency)).json()
    assert (shown["amount_net"], shown["amount_vat"], shown["amount_total"]) == (BIG_NET, BIG_VAT, BIG_TOTAL)
    assert shown["versions"][0]["plan"]["unit_price"] == BIG_NET
    async with sessions() as session:
        version = (
            await session.scalars(sa.select(ContractVersion).where(ContractVersion.contract_id == contract_id))
        ).one()
    assert (version.amount_net, version.amount_vat, version.amount_total) == (BIG_NET, BIG_VAT, BIG_TOTAL)
    budgets = (await client.get("/api/budgets", headers=agency)).json()
    assert budgets == [{"year": 2027, "amount": 6_000_000_000, "committed": BIG_TOTAL, "remaining": 1_000_000_000}]


async def test_a_five_billion_won_contract_is_invoiced_and_paid_exactly(client, sessions, settings) -> None:
    parties = await contract_parties(sessions, unit="project", unit_price=BIG_NET)
    contract_id = await active_contract(sessions, settings, parties, quantity=1, billing_period="once")
    async with sessions() as session, session.begin():
        await sweep.sweep(session, settings, date(2026, 2, 10))
    async with sessions() as session:
        invoice = (await session.scalars(sa.select(Invoice).where(Invoice.contract_id == contract_id))).one()
    assert (invoice.amount_net, invoice.amount_vat, invoice.amount_total) == (BIG_NET, BIG_VAT, BIG_TOTAL)

    seller = await bearer(sessions, parties.provider_user)
    paid = await client.post(
        f"/api/invoices/{invoice.id}/payments",
        headers=seller,
        json={"amount": BIG_TOTAL, "paid_on": "2026-03-01", "reference": "transfer"},
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["status"] == "paid" and paid.json()["payments"][0]["amount"] == BIG_TOTAL
    async with sessions() as session:
        assert await session.scalar(sa.select(Payment.amount).where(Payment.invoice_id == invoice.id)) == BIG_TOTAL
    agency = await bearer(sessions, parties.agency_user)
    assert (await client.get(f"/api/contracts/{contract_id}", headers=agency)).json()["amount_paid"] == BIG_TOTAL


async def test_a_payment_beyond_the_money_limit_is_refused(client, sessions, settings) -> None:
    parties = await contract_parties(sessions)
    contract_id = await active_contract(sessions, settings, parties)
    async with sessions() as session, session.begin():
        await sweep.sweep(session, settings, date(2026, 2, 10))
    async with sessions() as session:
        invoice_id = await session.scalar(sa.select(Invoice.id).where(Invoice.contract_id == contract_id).limit(1))
    seller = await bearer(sessions, parties.provider_user)
    response = await client.post(
        f"/api/invoices/{invoice_id}/payments", headers=seller, json={"amount": MONEY_MAX + 1, "paid_on": "2026-03-01"}
    )
    assert response.status_code == 422 and "amount" in response.json()["errors"]
    assert await count(sessions, Payment) == 0


async def test_an_amendment_unit_price_beyond_a_plans_cap_is_refused(client, sessions, settings) -> None:
    parties = await contract_parties(sessions)
    contract_id = await signed_contract(sessions, settings, parties, today=date(2027, 1, 1))
    provider = await bearer(sessions, parties.provider_user)
    response = await client.post(
        f"/api/contracts/{contract_id}/amendments",
        headers=provider,
        json={"amendment_reason": "other", "rationale": "A typo of many zeros", "unit_price": MONEY_MAX + 1},
    )
    assert response.status_code == 422 and "unit_price" in response.json()["errors"]
    assert await count(sessions, ContractVersion, ContractVersion.contract_id == contract_id) == 1


async def test_an_amendment_whose_total_is_too_large_is_refused_on_the_unit_price(client, sessions, settings) -> None:
    parties = await contract_parties(sessions)
    contract_id = await signed_contract(sessions, settings, parties, today=date(2027, 1, 1))
    agency = await bearer(sessions, parties.agency_user)
    response = await client.post(
        f"/api/contracts/{contract_id}/amendments",
        headers=agency,
        json={"amendment_reason": "other", "rationale": "Far dearer", "unit_price": DEAR},
    )
    assert response.status_code == 422, response.text
    assert "is too large" in response.json()["errors"]["unit_price"]
    assert f"{MONEY_MAX:,}" in response.json()["errors"]["unit_price"]
    assert await count(sessions, ContractVersion, ContractVersion.contract_id == contract_id) == 1


async def test_a_draft_whose_total_is_beyond_the_money_limit_is_refused_on_the_quantity(client, sessions) -> None:
    parties = await contract_parties(sessions, unit_price=DEAR)
    agency = await bearer(sessions, parties.agency_user)
    before = await count(sessions, Contract)
    response = await client.post(
        "/api/contracts",
        headers=agency,
        json={
            "service_id": parties.service_id,
            "plan_id": parties.plan_id,
            "quantity": 10,
            "starts_on": "2027-01-01",
            "ends_on": "2027-12-31",
            "billing_period": "monthly",
        },
    )
    assert response.status_code == 422, response.text
    assert "is too large" in response.json()["errors"]["quantity"]
    assert f"{MONEY_MAX:,}" in response.json()["errors"]["quantity"]
    assert await count(sessions, Contract) == before


async def test_a_renewal_whose_total_is_too_large_is_refused(client, sessions, settings) -> None:
    parties = await contract_parties(sessions, unit_price=1_000_000_000)
    contract_id = await signed_contract(sessions, settings, parties, today=date(2027, 1, 1))
    agency = await bearer(sessions, parties.agency_user)
    before = await count(sessions, Contract)
    response = await client.post(f"/api/contracts/{contract_id}/renewals", headers=agency, json={"quantity": 1_000_000})
    assert response.status_code == 422, response.text
    assert "is too large" in response.json()["errors"]["quantity"]
    assert await count(sessions, Contract) == before


async def test_a_budget_beyond_the_money_limit_is_refused(client, sessions) -> None:
    parties = await contract_parties(sessions)
    agency = await bearer(sessions, parties.agency_user)
    response = await client.put("/api/budgets", headers=agency, json={"year": 2027, "amount": MONEY_MAX + 1})
    assert response.status_code == 422 and "amount" in response.json()["errors"]
    accepted = await client.put("/api/budgets", headers=agency, json={"year": 2027, "amount": MONEY_MAX})
    assert accepted.status_code == 200 and accepted.json()["amount"] == MONEY_MAX
