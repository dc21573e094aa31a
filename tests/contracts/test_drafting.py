"""Drafting: from a listed plan (and from a project's award), the price computed on the server, budgets,
services that are not listed, and the list and detail pages."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from catalog.models import Outcome, Project, ProjectStatus, Service, ServiceStatus
from contracts import pricing
from contracts.models import Contract, ContractVersion
from tests.contracts.factories import bearer as api_token
from tests.contracts.factories import contract_parties, draft_contract, signed_contract
from tests.helpers import audit_actions, count, make_organisation, make_user

# --- pure arithmetic ------------------------------------------------------------------------------


def test_billing_periods_cut_the_term_by_month_quarter_or_once():
    assert pricing.billing_periods(date(2027, 1, 1), date(2027, 12, 31), "monthly")[1] == (
        date(2027, 2, 1),
        date(2027, 2, 28),
    )
    assert len(pricing.billing_periods(date(2027, 1, 1), date(2027, 12, 31), "monthly")) == 12
    assert pricing.billing_periods(date(2027, 1, 1), date(2027, 12, 31), "quarterly")[-1] == (
        date(2027, 10, 1),
        date(2027, 12, 31),
    )
    assert pricing.billing_periods(date(2027, 1, 31), date(2027, 3, 15), "monthly") == [
        (date(2027, 1, 31), date(2027, 2, 27)),
        (date(2027, 2, 28), date(2027, 3, 15)),
    ]
    assert pricing.billing_periods(date(2027, 1, 1), date(2027, 6, 30), "once") == [
        (date(2027, 1, 1), date(2027, 6, 30))
    ]


def test_price_is_unit_price_times_quantity_times_months_with_vat_separate():
    price = pricing.price(
        unit="user_month",
        unit_price=12_000,
        vat_included=False,
        quantity=10,
        starts_on=date(2027, 1, 1),
        ends_on=date(2027, 12, 31),
        billing_period="quarterly",
        vat_rate_bp=1000,
    )
    assert (price.periods, price.amount_net, price.amount_vat, price.amount_total) == (4, 1_440_000, 144_000, 1_584_000)
    included = pricing.price(
        unit="project",
        unit_price=11_000_000,
        vat_included=True,
        quantity=1,
        starts_on=date(2027, 1, 1),
        ends_on=date(2027, 3, 31),
        billing_period="once",
        vat_rate_bp=1000,
    )
    assert (included.amount_net, included.amount_vat, included.amount_total) == (10_000_000, 1_000_000, 11_000_000)


def test_period_amounts_add_up_to_the_contract():
    rows = pricing.period_amounts(date(2027, 1, 15), date(2027, 11, 30), "quarterly", 1_000_001, 100_000)
    assert sum(row[2] for row in rows) == 1_000_001 and sum(row[3] for row in rows) == 100_000
    assert rows[-1][1] == date(2027, 11, 30)


# --- drafting through the pages -------------------------------------------------------------------


async def test_agency_drafts_from_a_listed_plan_and_the_server_computes_the_price(web, sessions, settings):
    parties = await contract_parties(sessions, unit_price=12_000)
    user = await web.login_as("agency", organisation=parties.agency)
    form_page = await web.client.get(f"/contracts/new?service_id={parties.service_id}")
    assert form_page.status_code == 200 and "Cloud Drive" in form_page.text
    response = await web.submit(
        "/contracts/new",
        {
            "service_id": parties.service_id,
            "plan_id": parties.plan_id,
            "quantity": "10",
            "starts_on": "2027-01-01",
            "ends_on": "2027-12-31",
            "billing_period": "monthly",
            "route": "central",
            "budget_reference": "IT-7",
            "special_terms": "On-site training twice a year.",
            "amount_total": "1",
        },
        form_page=f"/contracts/new?service_id={parties.service_id}",
    )
    # an amount sent by the client is an unknown field: refused, nothing written
    assert response.status_code == 422
    assert await count(sessions, Contract) == 0
    response = await web.submit(
        "/contracts/new",
        {
            "service_id": parties.service_id,
            "plan_id": parties.plan_id,
            "quantity": "10",
            "starts_on": "2027-01-01",
            "ends_on": "2027-12-31",
            "billing_period": "monthly",
            "route": "central",
            "budget_reference": "IT-7",
            "special_terms": "On-site training twice a year.",
        },
        form_page=f"/contracts/new?service_id={parties.service_id}",
    )
    assert response.status_code == 303, response.text
    async with sessions() as session:
        contract = await session.scalar(sa.select(Contract))
        version = await session.get(ContractVersion, contract.current_version_id)
    assert contract.status == "draft" and contract.created_by_id == user.id and contract.number.startswith("CT-")
    assert (version.amount_net, version.amount_vat, version.amount_total, version.periods) == (
        1_440_000,
        144_000,
        1_584_000,
        12,
    )
    assert version.route == "central" and version.plan["unit_price"] == 12_000
    assert "contract.draft" in await audit_actions(sessions)
    detail = await web.client.get(response.headers["location"])
    assert detail.status_code == 200 and "₩1,584,000" in detail.text


async def test_drafting_names_the_field_on_bad_input(web, sessions):
    parties = await contract_parties(sessions)
    await web.login_as("agency", organisation=parties.agency)
    page = f"/contracts/new?service_id={parties.service_id}"
    response = await web.submit(
        "/contracts/new",
        {
            "service_id": parties.service_id,
            "plan_id": parties.plan_id,
            "quantity": "0",
            "starts_on": "2027-05-01",
            "ends_on": "2027-04-01",
        },
        form_page=page,
    )
    assert response.status_code == 422 and 'id="error-quantity"' in response.text
    assert await count(sessions, Contract) == 0


async def test_drafting_is_refused_for_a_service_that_is_not_listed(web, sessions):
    parties = await contract_parties(sessions)
    async with sessions() as session, session.begin():
        (await session.get(Service, parties.service_id)).status = ServiceStatus.suspended
    await web.login_as("agency", organisation=parties.agency)
    assert (await web.client.get(f"/contracts/new?service_id={parties.service_id}")).status_code == 409
    headers = await api_token(sessions, parties.agency_user)
    response = await web.client.post(
        "/api/contracts",
        headers=headers,
        json={
            "service_id": parties.service_id,
            "plan_id": parties.plan_id,
            "quantity": 1,
            "starts_on": "2027-01-01",
            "ends_on": "2027-12-31",
        },
    )
    assert response.status_code == 409 and "not listed" in response.json()["detail"]
    assert await count(sessions, Contract) == 0


async def test_a_draft_beyond_the_remaining_budget_is_refused_with_the_figures(client, sessions):
    parties = await contract_parties(sessions, unit_price=10_000)
    headers = await api_token(sessions, parties.agency_user)
    response = await client.put("/api/budgets", headers=headers, json={"year": 2027, "amount": 2_000_000})
    assert response.status_code == 200 and response.json() == {
        "year": 2027,
        "amount": 2_000_000,
        "committed": 0,
        "remaining": 2_000_000,
    }
    body = {
        "service_id": parties.service_id,
        "plan_id": parties.plan_id,
        "quantity": 10,
        "starts_on": "2027-01-01",
        "ends_on": "2027-12-31",
    }
    first = await client.post("/api/contracts", headers=headers, json=body)
    assert first.status_code == 201 and first.json()["amount_total"] == 1_320_000
    second = await client.post("/api/contracts", headers=headers, json=body)
    assert second.status_code == 422
    assert (
        "₩680,000" in second.json()["detail"]
        and "₩2,000,000" in second.json()["detail"]
        and "₩1,320,000" in second.json()["detail"]
    )
    assert await count(sessions, Contract) == 1
    assert (await client.get("/api/budgets", headers=headers)).json() == [
        {"year": 2027, "amount": 2_000_000, "committed": 1_320_000, "remaining": 680_000}
    ]


async def test_budget_page_records_a_year(web, sessions):
    await web.login_as("agency")
    response = await web.submit("/contracts/budget", {"year": "2027", "amount": "50,000,000"})
    assert response.status_code == 303
    page = await web.client.get("/contracts/budget")
    assert "₩50,000,000" in page.text
    assert "budget.set" in await audit_actions(sessions)
    bad = await web.submit("/contracts/budget", {"year": "20x7", "amount": "1"})
    assert bad.status_code == 422 and 'id="error-year"' in bad.text


async def test_draft_from_a_project_award_needs_the_award_to_name_the_service(client, sessions):
    parties = await contract_parties(sessions)
    headers = await api_token(sessions, parties.agency_user)
    async with sessions() as session, session.begin():
        project = Project(
            agency_id=parties.agency.id,
            name="Drive",
            status=ProjectStatus.ended,
            created_by_id=parties.agency_user.id,
            outcome=Outcome.awarded,
            outcome_service_id=parties.service_id,
            outcome_reason="Best value",
        )
        other = Project(
            agency_id=parties.agency.id,
            name="Other",
            status=ProjectStatus.ended,
            created_by_id=parties.agency_user.id,
            outcome=Outcome.none_suitable,
            outcome_reason="None",
        )
        session.add_all([project, other])
    body = {
        "service_id": parties.service_id,
        "plan_id": parties.plan_id,
        "quantity": 1,
        "starts_on": "2027-01-01",
        "ends_on": "2027-12-31",
    }
    refused = await client.post("/api/contracts", headers=headers, json={**body, "project_id": other.id})
    assert refused.status_code == 422 and "project_id" in refused.json()["errors"]
    made = await client.post("/api/contracts", headers=headers, json={**body, "project_id": project.id})
    assert made.status_code == 201 and made.json()["project_id"] == project.id


async def test_providers_and_other_organisations_cannot_draft(client, sessions):
    parties = await contract_parties(sessions)
    headers = await api_token(sessions, parties.provider_user)
    response = await client.post(
        "/api/contracts",
        headers=headers,
        json={
            "service_id": parties.service_id,
            "plan_id": parties.plan_id,
            "quantity": 1,
            "starts_on": "2027-01-01",
            "ends_on": "2027-12-31",
        },
    )
    assert response.status_code == 403


async def test_a_contract_is_seen_only_by_its_two_parties(client, sessions, settings):
    parties = await contract_parties(sessions)
    strangers = await contract_parties(sessions)
    contract_id = await draft_contract(sessions, parties)
    users = (parties.agency_user, parties.provider_user, strangers.agency_user, strangers.provider_user)
    headers = [await api_token(sessions, user) for user in users]
    for allowed in headers[:2]:
        assert (await client.get(f"/api/contracts/{contract_id}", headers=allowed)).status_code == 200
    for stranger in headers[2:]:
        assert (await client.get(f"/api/contracts/{contract_id}", headers=stranger)).status_code == 404
        assert (await client.get("/api/contracts", headers=stranger)).json()["total"] == 0


async def test_the_list_filters_sorts_pages_and_shows_an_empty_state(web, sessions, settings):
    parties = await contract_parties(sessions)
    await web.login_as("agency", organisation=parties.agency)
    empty = await web.client.get("/contracts")
    assert empty.status_code == 200 and "no contracts yet" in empty.text
    for _ in range(21):
        await draft_contract(sessions, parties, quantity=1)
    await signed_contract(sessions, settings, parties, today=date(2027, 1, 1), quantity=1)
    first = await web.client.get("/contracts?sort=number")
    assert first.status_code == 200 and "Page 1 of 2" in first.text
    assert (await web.client.get("/contracts?sort=number&page=2")).status_code == 200
    assert (await web.client.get("/contracts?page=9")).status_code == 404
    active = await web.client.get("/contracts?status=active")
    assert active.text.count('href="/contracts/') - active.text.count('href="/contracts/budget') >= 1
    assert "Page 1 of 2" not in active.text
    none = await web.client.get("/contracts?status=terminated")
    assert "No contracts with this status." in none.text
    assert (await web.client.get("/contracts?status=bogus")).status_code == 422


async def test_the_agency_changes_a_draft_and_a_stale_change_is_refused(client, sessions):
    parties = await contract_parties(sessions)
    contract_id = await draft_contract(sessions, parties)
    headers = await api_token(sessions, parties.agency_user)
    body = {
        "plan_id": parties.plan_id,
        "quantity": 20,
        "starts_on": "2027-01-01",
        "ends_on": "2027-06-30",
        "lock_version": 1,
    }
    changed = await client.put(f"/api/contracts/{contract_id}/draft", headers=headers, json=body)
    assert changed.status_code == 200 and changed.json()["amount_net"] == 10_000 * 20 * 6
    stale = await client.put(f"/api/contracts/{contract_id}/draft", headers=headers, json=body)
    assert stale.status_code == 409


async def test_the_api_is_documented_with_its_bodies(client):
    schema = (await client.get("/schema/openapi.json")).json()
    draft = schema["paths"]["/api/contracts"]["post"]
    body = draft["requestBody"]["content"]["application/json"]["schema"]
    assert "plan_id" in str(body) and "amount" not in str(body.get("properties", {}).keys())
    assert "/api/contracts/{contract_id}/versions/{number}/signatures" in schema["paths"]
    assert "/contracts/new" not in schema["paths"]


async def test_the_draft_form_changes_the_draft_and_sending_needs_the_service_still_listed(web, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await draft_contract(sessions, parties)
    await web.login(parties.agency_user.email)
    form = await web.client.get(f"/contracts/{contract_id}/edit")
    assert form.status_code == 200 and 'name="lock_version" value="1"' in form.text
    saved = await web.submit(
        f"/contracts/{contract_id}/edit",
        {
            "plan_id": parties.plan_id,
            "quantity": "4",
            "starts_on": "2027-01-01",
            "ends_on": "2027-03-31",
            "billing_period": "once",
            "route": "direct",
            "budget_reference": "",
            "special_terms": "",
            "lock_version": "1",
        },
    )
    assert saved.status_code == 303
    async with sessions() as session:
        contract = await session.get(Contract, contract_id)
        version = await session.get(ContractVersion, contract.current_version_id)
        assert (version.quantity, version.periods, version.amount_net) == (4, 1, 120_000)
        (await session.get(Service, parties.service_id)).status = ServiceStatus.revoked
        await session.commit()
    refused = await web.submit(f"/contracts/{contract_id}/send", {"confirm": "yes"})
    assert refused.status_code == 409 and (await session_status(sessions, contract_id)) == "draft"


async def session_status(sessions, contract_id: int) -> str:
    async with sessions() as session:
        return (await session.get(Contract, contract_id)).status


async def test_a_deactivated_provider_leaves_the_search_and_cannot_be_contracted_until_activated_again(
    client, sessions
):
    parties = await contract_parties(sessions)
    operator = await make_user(sessions, await make_organisation(sessions, "operator"))
    as_operator, as_agency = await api_token(sessions, operator), await api_token(sessions, parties.agency_user)
    draft = {
        "service_id": parties.service_id,
        "plan_id": parties.plan_id,
        "quantity": 1,
        "starts_on": "2027-01-01",
        "ends_on": "2027-12-31",
    }

    async def found() -> bool:
        return parties.service_id in {hit["id"] for hit in (await client.get("/api/search")).json()["results"]}

    assert await found()
    assert (
        await client.post(f"/api/operator/organisations/{parties.provider.id}/deactivate", headers=as_operator)
    ).status_code == 200
    assert not await found()
    refused = await client.post("/api/contracts", headers=as_agency, json=draft)
    assert refused.status_code == 409 and "deactivated" in refused.json()["detail"]
    assert await count(sessions, Contract) == 0

    assert (
        await client.post(f"/api/operator/organisations/{parties.provider.id}/activate", headers=as_operator)
    ).status_code == 200
    assert await found()
    assert (await client.post("/api/contracts", headers=as_agency, json=draft)).status_code == 201
