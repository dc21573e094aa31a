"""Amounts the database's INTEGER columns cannot hold are refused with 422 and a message, on both databases: an
amendment's unit price is capped like a plan's, and every computed total (draft, amendment, renewal) must fit."""

from __future__ import annotations

from datetime import date

from contracts.models import Contract, ContractVersion
from market.schemas import INTEGER_MAX
from tests.contracts.factories import bearer, contract_parties, signed_contract
from tests.helpers import count

DEAR = 2_000_000_000  # won a user a month: within a plan's price cap, far beyond any total the columns hold


async def test_an_amendment_unit_price_beyond_a_plans_cap_is_refused(client, sessions, settings) -> None:
    parties = await contract_parties(sessions)
    contract_id = await signed_contract(sessions, settings, parties, today=date(2027, 1, 1))
    provider = await bearer(sessions, parties.provider_user)
    response = await client.post(f"/api/contracts/{contract_id}/amendments", headers=provider, json={
        "amendment_reason": "other", "rationale": "A typo of many zeros", "unit_price": 10**17})
    assert response.status_code == 422 and "unit_price" in response.json()["errors"]
    assert await count(sessions, ContractVersion, ContractVersion.contract_id == contract_id) == 1


async def test_an_amendment_whose_total_is_too_large_is_refused_on_the_unit_price(client, sessions, settings) -> None:
    parties = await contract_parties(sessions)
    contract_id = await signed_contract(sessions, settings, parties, today=date(2027, 1, 1))
    agency = await bearer(sessions, parties.agency_user)
    response = await client.post(f"/api/contracts/{contract_id}/amendments", headers=agency, json={
        "amendment_reason": "other", "rationale": "Far dearer", "unit_price": DEAR})
    assert response.status_code == 422, response.text
    assert "is too large" in response.json()["errors"]["unit_price"]
    assert f"{INTEGER_MAX:,}" in response.json()["errors"]["unit_price"]
    assert await count(sessions, ContractVersion, ContractVersion.contract_id == contract_id) == 1


async def test_a_draft_whose_total_is_too_large_is_refused_on_the_quantity(client, sessions) -> None:
    parties = await contract_parties(sessions, unit_price=DEAR)
    agency = await bearer(sessions, parties.agency_user)
    before = await count(sessions, Contract)
    response = await client.post("/api/contracts", headers=agency, json={
        "service_id": parties.service_id, "plan_id": parties.plan_id, "quantity": 10, "starts_on": "2027-01-01",
        "ends_on": "2027-12-31", "billing_period": "monthly"})
    assert response.status_code == 422, response.text
    assert "is too large" in response.json()["errors"]["quantity"]
    assert await count(sessions, Contract) == before


async def test_a_renewal_whose_total_is_too_large_is_refused(client, sessions, settings) -> None:
    parties = await contract_parties(sessions, unit_price=100_000)
    contract_id = await signed_contract(sessions, settings, parties, today=date(2027, 1, 1))
    agency = await bearer(sessions, parties.agency_user)
    before = await count(sessions, Contract)
    response = await client.post(f"/api/contracts/{contract_id}/renewals", headers=agency, json={"quantity": 1_000_000})
    assert response.status_code == 422, response.text
    assert "is too large" in response.json()["errors"]["quantity"]
    assert await count(sessions, Contract) == before


async def test_a_budget_beyond_the_amount_column_is_refused(client, sessions) -> None:
    parties = await contract_parties(sessions)
    agency = await bearer(sessions, parties.agency_user)
    response = await client.put("/api/budgets", headers=agency, json={"year": 2027, "amount": INTEGER_MAX + 1})
    assert response.status_code == 422 and "amount" in response.json()["errors"]
    assert (await client.put("/api/budgets", headers=agency, json={"year": 2027, "amount": INTEGER_MAX})).status_code == 200
