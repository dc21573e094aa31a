"""The lifecycle: send, withdraw, decline and revise, cancel, start and complete by date, terminate, renew."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from contracts import advance_contracts
from contracts.models import Contract, ContractVersion, Invoice, Payment
from market import clock, demo
from market.parts import Parts
from tests.contracts.factories import bearer, contract_parties, draft_contract, sent_contract, signed_contract
from tests.helpers import YEAR, audit_actions, count


@pytest.fixture
def announced(monkeypatch: pytest.MonkeyPatch, parts: Parts) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(parts, "subscribers", {name: list(functions) for name, functions in parts.subscribers.items()})
    for event in (
        "contract.sent",
        "contract.signed",
        "contract.started",
        "contract.cancelled",
        "contract.terminated",
        "contract.completed",
    ):

        async def record(session: Any, *, _event: str = event, **data: Any) -> None:
            seen.append((_event, data))

        parts.subscribe(event, record)
    return seen


async def _contract(sessions, contract_id: int) -> Contract:
    async with sessions() as session:
        return await session.get(Contract, contract_id)


async def test_sending_through_the_page_freezes_the_document_after_a_confirmation(web, sessions, settings, announced):
    parties = await contract_parties(sessions)
    contract_id = await draft_contract(sessions, parties, special_terms="Monthly report <b>in Korean</b>.")
    await web.login(parties.agency_user.email)
    confirm = await web.client.get(f"/contracts/{contract_id}/send")
    assert confirm.status_code == 200 and 'name="confirm"' in confirm.text
    unconfirmed = await web.submit(f"/contracts/{contract_id}/send", {})
    assert unconfirmed.status_code == 422 and (await _contract(sessions, contract_id)).status == "draft"
    sent = await web.submit(f"/contracts/{contract_id}/send", {"confirm": "yes"})
    assert sent.status_code == 303
    async with sessions() as session:
        contract = await session.get(Contract, contract_id)
        version = await session.get(ContractVersion, contract.current_version_id)
    assert (
        contract.status == "sent" and version.state == "sent" and len(version.document_sha256) == 64 and version.sent_at
    )
    document = (settings.data_dir / "contracts" / version.document_key[:2] / version.document_key).read_text()
    for text in (
        "Cloud Drive",
        parties.agency.name,
        parties.provider.name,
        "Standard terms",
        "Exit terms",
        "Service level",
        "₩1,320,000",
        "Monthly report &lt;b&gt;in Korean&lt;/b&gt;.",
    ):
        assert text in document
    assert announced == [("contract.sent", {"contract_id": contract_id, "version_id": version.id})]
    # a sent contract cannot be changed in place
    edit = await web.submit(
        f"/contracts/{contract_id}/edit",
        {
            "plan_id": parties.plan_id,
            "quantity": "3",
            "starts_on": "2027-01-01",
            "ends_on": "2027-12-31",
            "lock_version": "1",
        },
        form_page=f"/contracts/{contract_id}",
    )
    assert edit.status_code == 409


async def test_the_provider_declines_with_a_reason_and_the_agency_revises(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    provider, agency = await bearer(sessions, parties.provider_user), await bearer(sessions, parties.agency_user)
    assert (
        await client.post(f"/api/contracts/{contract_id}/decline", headers=provider, json={"reason": ""})
    ).status_code == 422
    assert (
        await client.post(f"/api/contracts/{contract_id}/decline", headers=agency, json={"reason": "No"})
    ).status_code == 403
    declined = await client.post(
        f"/api/contracts/{contract_id}/decline", headers=provider, json={"reason": "Quantity too small"}
    )
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    assert declined.json()["versions"][0]["decline_reason"] == "Quantity too small"
    revised = await client.post(f"/api/contracts/{contract_id}/revise", headers=agency)
    assert revised.status_code == 200 and revised.json()["status"] == "draft"
    assert [(v["number"], v["state"]) for v in revised.json()["versions"]] == [(1, "declined"), (2, "draft")]
    assert {"contract.decline", "contract.revise"} <= set(await audit_actions(sessions))


async def test_the_provider_cannot_withdraw_and_the_agency_cancels_before_signature(
    client, sessions, settings, announced
):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    provider, agency = await bearer(sessions, parties.provider_user), await bearer(sessions, parties.agency_user)
    assert (await client.post(f"/api/contracts/{contract_id}/withdraw", headers=provider, json={})).status_code == 403
    assert (
        await client.post(f"/api/contracts/{contract_id}/cancel", headers=provider, json={"reason": "x"})
    ).status_code == 403
    cancelled = await client.post(
        f"/api/contracts/{contract_id}/cancel", headers=agency, json={"reason": "Project stopped"}
    )
    assert (
        cancelled.status_code == 200
        and cancelled.json()["status"] == "cancelled"
        and cancelled.json()["end_reason"] == "Project stopped"
    )
    assert ("contract.cancelled", {"contract_id": contract_id}) in announced
    again = await client.post(f"/api/contracts/{contract_id}/cancel", headers=agency, json={"reason": "again"})
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]


async def test_a_signed_contract_cannot_be_cancelled(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await signed_contract(sessions, settings, parties, today=date(2027, 1, 1))
    response = await client.post(
        f"/api/contracts/{contract_id}/cancel",
        headers=await bearer(sessions, parties.agency_user),
        json={"reason": "x"},
    )
    assert response.status_code == 409


async def test_advance_contracts_starts_on_the_start_date_and_completes_after_the_end(sessions, settings, announced):
    parties = await contract_parties(sessions)
    contract_id = await signed_contract(
        sessions,
        settings,
        parties,
        today=date(YEAR, 12, 1),
        starts_on=date(YEAR + 1, 1, 1),
        ends_on=date(YEAR + 1, 3, 31),
    )
    assert (await _contract(sessions, contract_id)).status == "signed"
    async with sessions() as session, session.begin():
        assert await advance_contracts(session, date(YEAR, 12, 31)) == (0, 0)
    async with sessions() as session, session.begin():
        assert await advance_contracts(session, date(YEAR + 1, 1, 1)) == (1, 0)
    assert (await _contract(sessions, contract_id)).status == "active"
    async with sessions() as session, session.begin():
        assert await advance_contracts(session, date(2027, 3, 31)) == (0, 0)
    async with sessions() as session, session.begin():
        assert await advance_contracts(session, date(2027, 4, 1)) == (0, 1)
    async with sessions() as session, session.begin():
        assert await advance_contracts(session, date(2027, 4, 2)) == (0, 0)
    contract = await _contract(sessions, contract_id)
    assert contract.status == "completed" and contract.ended_on == date(2027, 3, 31)
    names = [name for name, _data in announced]
    assert names[-2:] == ["contract.started", "contract.completed"]
    assert {"contract.start", "contract.complete"} <= set(await audit_actions(sessions))


async def test_either_party_terminates_with_reason_date_and_amount_paid(client, web, sessions, settings, announced):
    parties = await contract_parties(sessions)
    contract_id = await signed_contract(
        sessions, settings, parties, today=date(2026, 1, 1), starts_on=date(2026, 1, 1), ends_on=date(2027, 12, 31)
    )
    async with sessions() as session, session.begin():
        contract = await session.get(Contract, contract_id)
        invoice = Invoice(
            number="INV-T-1",
            contract_id=contract_id,
            version_id=contract.signed_version_id,
            agency_id=contract.agency_id,
            provider_id=contract.provider_id,
            period=1,
            period_start=date(2026, 1, 1),
            period_end=date(2026, 1, 31),
            amount_net=100_000,
            amount_vat=10_000,
            amount_total=110_000,
            issued_on=date(2026, 2, 1),
            due_on=date(2026, 3, 3),
            status="paid",
        )
        session.add(invoice)
        await session.flush()
        session.add(Payment(invoice_id=invoice.id, amount=110_000, paid_on=date(2026, 2, 10), method="bank_transfer"))
    provider = await bearer(sessions, parties.provider_user)
    past = await client.post(
        f"/api/contracts/{contract_id}/terminate",
        headers=provider,
        json={"reason": "Breach", "effective_on": "2020-01-01"},
    )
    assert past.status_code == 422 and "effective_on" in past.json()["errors"]
    await web.login(parties.provider_user.email)
    effective = (clock.today() + timedelta(days=10)).isoformat()
    unconfirmed = await web.submit(
        f"/contracts/{contract_id}/terminate", {"reason": "Breach of the SLA", "effective_on": effective}
    )
    assert unconfirmed.status_code == 422
    done = await web.submit(
        f"/contracts/{contract_id}/terminate",
        {"reason": "Breach of the SLA", "effective_on": effective, "confirm": "yes"},
    )
    assert done.status_code == 303
    contract = await _contract(sessions, contract_id)
    assert (contract.status, contract.end_reason, contract.ended_on.isoformat(), contract.amount_paid_at_end) == (
        "terminated",
        "Breach of the SLA",
        effective,
        110_000,
    )
    assert ("contract.terminated", {"contract_id": contract_id}) in announced
    again = await client.post(
        f"/api/contracts/{contract_id}/terminate", headers=provider, json={"reason": "x", "effective_on": effective}
    )
    assert again.status_code == 409


async def test_renewal_drafts_a_linked_contract_for_the_next_term(client, web, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await signed_contract(sessions, settings, parties, today=date(2027, 1, 1))
    agency = await bearer(sessions, parties.agency_user)
    renewed = await client.post(f"/api/contracts/{contract_id}/renewals", headers=agency, json={})
    assert renewed.status_code == 201, renewed.text
    body = renewed.json()
    assert body["renewal_of_id"] == contract_id and body["status"] == "draft"
    assert (body["starts_on"], body["ends_on"], body["amount_total"]) == ("2028-01-01", "2028-12-31", 1_320_000)
    assert (
        await client.post(
            f"/api/contracts/{contract_id}/renewals", headers=await bearer(sessions, parties.provider_user), json={}
        )
    ).status_code == 403
    await web.login(parties.agency_user.email)
    page = await web.submit(
        f"/contracts/{contract_id}/renew", {"starts_on": "2028-01-01", "ends_on": "2028-06-30", "quantity": "5"}
    )
    assert page.status_code == 303
    assert await count(sessions, Contract, Contract.renewal_of_id == contract_id) == 2
    detail = await web.client.get(f"/contracts/{contract_id}")
    assert "Renewed by" in detail.text


async def test_the_demo_adds_contracts_in_every_state_once(sessions, settings):
    async with sessions() as session, session.begin():
        await demo.load(session, settings, echo=lambda _line: None)
    async with sessions() as session:
        states = set((await session.scalars(sa.select(Contract.status))).all())
    assert {"draft", "sent", "declined", "signed", "active", "completed", "terminated", "cancelled"} <= states
    async with sessions() as session:
        invoice_states = set((await session.scalars(sa.select(Invoice.status))).all())
    assert {"open", "paid"} <= invoice_states  # invoices of ended periods were paid, the current ones are open
    contracts, issued = await count(sessions, Contract), await count(sessions, Invoice)
    async with sessions() as session, session.begin():
        await demo.load(session, settings, echo=lambda _line: None)
    assert (await count(sessions, Contract), await count(sessions, Invoice)) == (contracts, issued)


async def test_decline_and_cancel_through_the_pages_ask_for_a_reason_and_a_confirmation(web, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    await web.login(parties.provider_user.email)
    detail = await web.client.get(f"/contracts/{contract_id}")
    assert (
        f'href="/contracts/{contract_id}/decline"' in detail.text
        and f'/contracts/{contract_id}/cancel"' not in detail.text
    )
    page = await web.client.get(f"/contracts/{contract_id}/decline")
    assert page.status_code == 200 and 'name="reason"' in page.text
    no_reason = await web.submit(f"/contracts/{contract_id}/decline", {"confirm": "yes", "reason": ""})
    assert no_reason.status_code == 422 and 'id="error-reason"' in no_reason.text
    declined = await web.submit(f"/contracts/{contract_id}/decline", {"confirm": "yes", "reason": "Price list changed"})
    assert declined.status_code == 303 and (await _contract(sessions, contract_id)).status == "declined"
    await web.logout()
    await web.login(parties.agency_user.email)
    cancelled = await web.submit(f"/contracts/{contract_id}/cancel", {"confirm": "yes", "reason": "Bought elsewhere"})
    assert cancelled.status_code == 303 and (await _contract(sessions, contract_id)).status == "cancelled"


async def test_the_proposer_withdraws_an_amendment(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await signed_contract(sessions, settings, parties, today=date(2027, 1, 1))
    agency, provider = await bearer(sessions, parties.agency_user), await bearer(sessions, parties.provider_user)
    proposed = await client.post(
        f"/api/contracts/{contract_id}/amendments",
        headers=agency,
        json={"amendment_reason": "volume_change", "rationale": "Twenty more users", "quantity": 30},
    )
    assert proposed.status_code == 201
    assert (await client.post(f"/api/contracts/{contract_id}/withdraw", headers=provider, json={})).status_code == 403
    withdrawn = await client.post(
        f"/api/contracts/{contract_id}/withdraw", headers=agency, json={"reason": "Budget cut"}
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "active"
    assert [v["state"] for v in withdrawn.json()["versions"]] == ["signed", "withdrawn"]
    assert withdrawn.json()["current_version_id"] == withdrawn.json()["signed_version_id"]
