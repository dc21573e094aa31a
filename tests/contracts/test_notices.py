"""A service leaving the catalogue tells the agencies holding a contract for it; the way to a draft starts
from the service page and from an awarded project."""

from __future__ import annotations

import json

import sqlalchemy as sa

from contracts import drafting
from contracts.models import Contract
from market.models import Organisation, OutboxMessage
from tests.committee.factories import certified_service, world
from tests.contracts.factories import SIGNING_LIMIT, Parties, active_contract, bearer, contract_parties, draft_contract
from tests.helpers import make_organisation, make_user


async def emails(sessions) -> list[dict]:
    async with sessions() as session:
        rows = (
            await session.scalars(
                sa.select(OutboxMessage).where(OutboxMessage.kind == "email").order_by(OutboxMessage.id)
            )
        ).all()
    return [json.loads(row.payload) for row in rows]


async def test_withdrawing_a_service_tells_the_agency_of_each_contract_in_force_and_no_other(web, settings) -> None:
    parties = await contract_parties(web.sessions)
    async with web.sessions() as session, session.begin():
        agency = await session.get(Organisation, parties.agency.id)
        agency.contact_email = "it-procurement@agency.example.go.kr"
    contract_id = await active_contract(web.sessions, settings, parties)
    await draft_contract(web.sessions, parties)  # a draft is not in force: nobody is told about it
    before = len(await emails(web.sessions))

    await web.login(parties.provider_user.email)
    page = f"/services/{parties.service_id}/withdraw"
    response = await web.submit(page, {"reason": "Replaced by a new product", "confirm": "yes"}, form_page=page)
    assert response.status_code == 303, response.text

    sent = (await emails(web.sessions))[before:]
    told = [mail for mail in sent if mail["to"] == "it-procurement@agency.example.go.kr"]
    assert len(told) == 1, sent
    assert "withdrawn" in told[0]["subject"] and "Replaced by a new product" in told[0]["body"]
    assert "stays valid" in told[0]["body"]
    async with web.sessions() as session:
        number = await session.scalar(
            sa.text("SELECT number FROM contracts_contract WHERE id = :id"), {"id": contract_id}
        )
    assert number in told[0]["subject"]


async def test_an_agency_user_finds_the_way_to_a_draft_on_the_service_page(web) -> None:
    parties = await contract_parties(web.sessions)
    link = f"/contracts/new?service_id={parties.service_id}"
    await web.login(parties.agency_user.email)
    assert link in (await web.client.get(f"/services/{parties.service_id}")).text
    assert (await web.client.get(link)).status_code == 200
    await web.logout()
    other = await make_user(web.sessions, parties.provider)
    await web.login(other.email)
    assert link not in (await web.client.get(f"/services/{parties.service_id}")).text  # providers do not buy


async def test_revocation_refuses_new_drafts_keeps_signed_contracts_and_tells_their_agencies(
    client, sessions, settings
) -> None:
    w = await world(sessions)
    service_id, case_id = await certified_service(w)
    agency = await make_organisation(sessions, "agency", contact_email="cloud@agency.example.go.kr")
    buyer = await make_user(
        sessions, agency, name="Buyer Lee", signing_limit=SIGNING_LIMIT
    )  # an administrator who also signs
    async with sessions() as session:
        plan_id = (await drafting.listed_offer(session, service_id)).plans[0].id
    parties = Parties(agency, buyer, w.provider, w.provider_user, service_id, plan_id)
    contract_id = await active_contract(sessions, settings, parties)
    headers = await bearer(sessions, buyer)
    draft = {
        "service_id": service_id,
        "plan_id": plan_id,
        "quantity": 1,
        "starts_on": "2027-01-01",
        "ends_on": "2027-06-30",
        "billing_period": "monthly",
        "route": "direct",
        "budget_reference": "",
        "special_terms": "",
    }
    assert (await client.post("/api/contracts", json=draft, headers=headers)).status_code == 201
    async with sessions() as session:
        number = await session.scalar(
            sa.text("SELECT number FROM committee_certificate WHERE case_id = :id"), {"id": case_id}
        )

    revoked = await client.post(
        f"/api/committee/certificates/{number}/revoke",
        headers=w.bearer(w.chair),
        json={"reason": "Falsified CSAP evidence"},
    )
    assert revoked.status_code == 200, revoked.text

    refused = await client.post("/api/contracts", json=draft, headers=headers)
    assert refused.status_code == 409, refused.text
    async with sessions() as session:
        assert (await session.get(Contract, contract_id)).status == "active"  # signed contracts stay valid
    told = [mail for mail in await emails(sessions) if mail["to"] == "cloud@agency.example.go.kr"]
    assert len(told) == 1 and "revoked" in told[0]["subject"] and "Falsified CSAP evidence" in told[0]["body"]
