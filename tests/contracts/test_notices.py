"""A service leaving the catalogue tells the agencies holding a contract for it; the way to a draft starts
from the service page and from an awarded project."""

from __future__ import annotations

import json

import sqlalchemy as sa

from market.models import OutboxMessage, Organisation
from tests.contracts.factories import active_contract, contract_parties, draft_contract
from tests.helpers import make_user


async def emails(sessions) -> list[dict]:
    async with sessions() as session:
        rows = (await session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "email").order_by(OutboxMessage.id))).all()
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
    told = [mail for mail in sent if "it-procurement@agency.example.go.kr" == mail["to"]]
    assert len(told) == 1, sent
    assert "withdrawn" in told[0]["subject"] and "Replaced by a new product" in told[0]["body"]
    assert "stays valid" in told[0]["body"]
    async with web.sessions() as session:
        number = await session.scalar(sa.text("SELECT number FROM contracts_contract WHERE id = :id"), {"id": contract_id})
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
