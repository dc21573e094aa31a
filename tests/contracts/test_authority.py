"""Authority inside an agency: administrators set budgets and the approval threshold; buyers draft and send but never
sign; signers sign within their limit (409 naming who can); above the threshold a second member approves a draft
before it is sent, and a change withdraws the approval; the approval shows on the page and in the OCDS release."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from contracts import authority, documents, drafting, ocds
from contracts.models import Budget, Contract, ContractVersion, Signature
from market.models import AuditEvent
from tests.contracts.factories import (
    Parties,
    bearer,
    contract_parties,
    principal,
    sent_contract,
    sign_as,
    signed_contract,
    terms,
)
from tests.contracts.test_ocds import RECORD_PACKAGE, assert_valid
from tests.helpers import PASSWORD, audit_actions, count, make_user

TOTAL = 1_320_000  # the factory's draft: 10 users x ₩10,000 x 12 months, with 10 % VAT


def _sign(version: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "password": PASSWORD,
        "confirm_read": True,
        "signer_name": name,
        "document_sha256": version["document_sha256"],
    }


def _draft(parties: Parties, **fields: Any) -> dict[str, Any]:
    return {
        "service_id": parties.service_id,
        "plan_id": parties.plan_id,
        "quantity": 10,
        "starts_on": "2027-01-01",
        "ends_on": "2027-12-31",
        "billing_period": "monthly",
        "route": "direct",
        "budget_reference": "2027-IT-001",
        "special_terms": "",
        **fields,
    }


async def _audit(sessions: Any, action: str) -> list[AuditEvent]:
    async with sessions() as session:
        return list(
            (
                await session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
            ).all()
        )


# --- budgets ---------------------------------------------------------------------------------------------


async def test_only_an_agency_administrator_sets_budgets_on_the_page_and_through_the_api(client, web, sessions):
    parties = await contract_parties(sessions)
    buyer = await make_user(sessions, parties.agency, role="buyer", name="Buyer Cho")
    signer = await make_user(sessions, parties.agency, role="signer", name="Signer Song", signing_limit=5_000_000)
    budget = {"year": 2027, "amount": 999_999_999_999}
    for user in (buyer, signer):
        refused = await client.put("/api/budgets", headers=await bearer(sessions, user), json=budget)
        assert refused.status_code == 403 and "administrator" in refused.json()["detail"], refused.text
        assert (
            await client.get("/api/budgets", headers=await bearer(sessions, user))
        ).status_code == 200  # everyone reads them
    await web.login(buyer.email)
    page = await web.client.get("/contracts/budget")
    assert page.status_code == 200 and 'action="/contracts/budget"' not in page.text
    refused_page = await web.submit(
        "/contracts/budget", {"year": "2027", "amount": "999,999,999,999"}, form_page="/contracts/budget"
    )
    assert refused_page.status_code == 403
    assert await count(sessions, Budget) == 0
    accepted = await client.put(
        "/api/budgets", headers=await bearer(sessions, parties.agency_user), json={"year": 2027, "amount": 50_000_000}
    )
    assert accepted.status_code == 200 and accepted.json()["amount"] == 50_000_000
    await web.login(parties.agency_user.email)
    assert (await web.submit("/contracts/budget", {"year": "2028", "amount": "60,000,000"})).status_code == 303
    assert await count(sessions, Budget) == 2


# --- signing -----------------------------------------------------------------------------------------------


async def test_a_buyer_cannot_sign_and_is_told_who_can(client, sessions, settings):
    parties = await contract_parties(sessions)
    buyer = await make_user(sessions, parties.agency, role="buyer", name="Buyer Cho")
    await make_user(sessions, parties.agency, role="signer", name="Signer Song", signing_limit=TOTAL)
    contract_id = await sent_contract(sessions, settings, parties)
    version = (await client.get(f"/api/contracts/{contract_id}", headers=await bearer(sessions, buyer))).json()[
        "versions"
    ][0]

    refused = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures",
        headers=await bearer(sessions, buyer),
        json=_sign(version, "Buyer Cho"),
    )

    assert refused.status_code == 403, refused.text
    assert "Buyers cannot sign" in refused.json()["detail"] and "Signer Song" in refused.json()["detail"]
    assert await count(sessions, Signature) == 0


async def test_a_signer_over_their_limit_gets_409_naming_the_members_whose_limit_suffices(client, sessions, settings):
    parties = await contract_parties(sessions)
    signer = await make_user(sessions, parties.agency, role="signer", name="Signer Song", signing_limit=TOTAL - 1)
    await make_user(sessions, parties.agency, role="signer", name="Signer Big", signing_limit=10_000_000)
    await make_user(sessions, parties.agency, role="signer", name="Signer Small", signing_limit=500_000)
    contract_id = await sent_contract(sessions, settings, parties)
    headers = await bearer(sessions, signer)
    version = (await client.get(f"/api/contracts/{contract_id}", headers=headers)).json()["versions"][0]

    refused = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures", headers=headers, json=_sign(version, "Signer Song")
    )

    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert "₩1,320,000" in detail and "₩1,319,999" in detail
    assert "Signer Big" in detail and "Buyer Kim" in detail  # the administrator holds a limit too
    assert "Signer Small" not in detail and "Signer Song" not in detail
    assert await count(sessions, Signature) == 0


async def test_a_signer_within_their_limit_signs(client, sessions, settings):
    parties = await contract_parties(sessions)
    signer = await make_user(sessions, parties.agency, role="signer", name="Signer Song", signing_limit=TOTAL)
    contract_id = await sent_contract(sessions, settings, parties)
    headers = await bearer(sessions, signer)
    version = (await client.get(f"/api/contracts/{contract_id}", headers=headers)).json()["versions"][0]

    signed = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures", headers=headers, json=_sign(version, "Signer Song")
    )

    assert signed.status_code == 201, signed.text
    [signature] = signed.json()["signatures"]
    assert (signature["side"], signature["signer_role"], signature["user_id"]) == ("agency", "signer", signer.id)


async def test_an_amendment_over_the_signers_limit_is_refused(client, sessions, settings):
    parties = await contract_parties(sessions)
    signer = await make_user(sessions, parties.agency, role="signer", name="Signer Song", signing_limit=2_000_000)
    contract_id = await signed_contract(sessions, settings, parties, today=date(2027, 1, 1))
    provider = await bearer(sessions, parties.provider_user)
    proposed = await client.post(
        f"/api/contracts/{contract_id}/amendments",
        headers=provider,
        json={"amendment_reason": "volume_change", "rationale": "Twice the users.", "quantity": 20},
    )
    assert proposed.status_code == 201, proposed.text
    amendment = proposed.json()["versions"][-1]
    assert amendment["amount_total"] == 2 * TOTAL

    refused = await client.post(
        f"/api/contracts/{contract_id}/versions/2/signatures",
        headers=await bearer(sessions, signer),
        json=_sign(amendment, "Signer Song"),
    )

    assert refused.status_code == 409 and "Buyer Kim" in refused.json()["detail"], refused.text
    accepted = await client.post(
        f"/api/contracts/{contract_id}/versions/2/signatures",
        headers=await bearer(sessions, parties.agency_user),
        json=_sign(amendment, "Buyer Kim"),
    )
    assert accepted.status_code == 201, accepted.text


async def test_a_provider_signer_signs_without_a_limit(client, sessions, settings):
    parties = await contract_parties(sessions)
    seller = await make_user(sessions, parties.provider, role="signer", name="Seller Oh")
    contract_id = await sent_contract(sessions, settings, parties)
    headers = await bearer(sessions, seller)
    version = (await client.get(f"/api/contracts/{contract_id}", headers=headers)).json()["versions"][0]
    signed = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures", headers=headers, json=_sign(version, "Seller Oh")
    )
    assert signed.status_code == 201, signed.text


async def test_a_signer_neither_drafts_nor_sends(client, sessions, settings):
    parties = await contract_parties(sessions)
    signer = await make_user(sessions, parties.agency, role="signer", name="Signer Song", signing_limit=TOTAL)
    headers = await bearer(sessions, signer)
    assert (await client.post("/api/contracts", headers=headers, json=_draft(parties))).status_code == 403
    drafted = await client.post(
        "/api/contracts", headers=await bearer(sessions, parties.agency_user), json=_draft(parties)
    )
    refused = await client.post(f"/api/contracts/{drafted.json()['id']}/send", headers=headers)
    assert refused.status_code == 403 and "buyers and administrators" in refused.json()["detail"]


# --- approval above the threshold ------------------------------------------------------------------------------


async def test_a_draft_above_the_threshold_is_sent_only_after_a_second_members_approval(client, sessions):
    parties = await contract_parties(sessions)
    admin = await bearer(sessions, parties.agency_user)
    buyer_user = await make_user(sessions, parties.agency, role="buyer", name="Buyer Cho")
    signer_user = await make_user(sessions, parties.agency, role="signer", name="Signer Song", signing_limit=TOTAL)
    buyer, signer = await bearer(sessions, buyer_user), await bearer(sessions, signer_user)
    assert (await client.put("/api/approval-threshold", headers=buyer, json={"amount": 1})).status_code == 403
    threshold = await client.put("/api/approval-threshold", headers=admin, json={"amount": 1_000_000})
    assert threshold.status_code == 200 and threshold.json() == {"amount": 1_000_000, "currency": "KRW"}
    assert (await client.get("/api/approval-threshold", headers=buyer)).json()["amount"] == 1_000_000
    [event] = await _audit(sessions, "approval_threshold.set")
    assert '"amount": 1000000' in event.summary

    drafted = await client.post("/api/contracts", headers=buyer, json=_draft(parties))
    assert drafted.status_code == 201 and drafted.json()["approval"]["needed"] is True
    contract_id = drafted.json()["id"]

    unapproved = await client.post(f"/api/contracts/{contract_id}/send", headers=buyer)
    assert unapproved.status_code == 409, unapproved.text
    assert (
        "approval threshold of ₩1,000,000" in unapproved.json()["detail"]
        and "must approve" in unapproved.json()["detail"]
    )
    assert (
        await client.post(f"/api/contracts/{contract_id}/approval", headers=buyer)
    ).status_code == 403  # buyers do not approve

    approved = await client.post(f"/api/contracts/{contract_id}/approval", headers=signer)
    assert approved.status_code == 200, approved.text
    approval = approved.json()["approval"]
    assert (
        approval["approved"] is True
        and approval["approved_by"] == "Signer Song"
        and approval["approved_by_role"] == "signer"
    )
    assert approved.json()["versions"][0]["approved_by_id"] == signer_user.id
    assert (
        await client.post(f"/api/contracts/{contract_id}/approval", headers=admin)
    ).status_code == 409  # approved already

    sent = await client.post(f"/api/contracts/{contract_id}/send", headers=buyer)
    assert sent.status_code == 200 and sent.json()["status"] == "sent", sent.text
    assert "contract.approve" in await audit_actions(sessions)


async def test_the_drafter_cannot_approve_their_own_draft(client, sessions):
    parties = await contract_parties(sessions)
    admin = await bearer(sessions, parties.agency_user)
    await client.put("/api/approval-threshold", headers=admin, json={"amount": 1_000_000})
    drafted = await client.post("/api/contracts", headers=admin, json=_draft(parties))

    own = await client.post(f"/api/contracts/{drafted.json()['id']}/approval", headers=admin)

    assert own.status_code == 409 and "second member" in own.json()["detail"], own.text
    async with sessions() as session:
        version = await session.get(ContractVersion, drafted.json()["current_version_id"])
    assert version is not None and version.approved_at is None


async def test_changing_an_approved_draft_withdraws_the_approval(client, sessions):
    parties = await contract_parties(sessions)
    admin = await bearer(sessions, parties.agency_user)
    buyer = await bearer(sessions, await make_user(sessions, parties.agency, role="buyer", name="Buyer Cho"))
    signer = await bearer(
        sessions, await make_user(sessions, parties.agency, role="signer", name="Signer Song", signing_limit=TOTAL)
    )
    await client.put("/api/approval-threshold", headers=admin, json={"amount": 1_000_000})
    drafted = (await client.post("/api/contracts", headers=buyer, json=_draft(parties))).json()
    contract_id = drafted["id"]
    assert (await client.post(f"/api/contracts/{contract_id}/approval", headers=signer)).status_code == 200

    lock = drafted["versions"][0]["lock_version"]
    changed = await client.put(
        f"/api/contracts/{contract_id}/draft",
        headers=buyer,
        json={**{k: v for k, v in _draft(parties).items() if k != "service_id"}, "quantity": 11, "lock_version": lock},
    )

    assert changed.status_code == 200, changed.text
    assert changed.json()["approval"]["approved"] is False and changed.json()["versions"][0]["approved_at"] is None
    [event] = await _audit(sessions, "contract.update_draft")
    assert '"approval_withdrawn": true' in event.summary
    assert (await client.post(f"/api/contracts/{contract_id}/send", headers=buyer)).status_code == 409
    assert (await client.post(f"/api/contracts/{contract_id}/approval", headers=signer)).status_code == 200
    assert (await client.post(f"/api/contracts/{contract_id}/send", headers=buyer)).status_code == 200


async def test_a_draft_at_or_below_the_threshold_is_sent_without_approval(client, sessions):
    parties = await contract_parties(sessions)
    admin = await bearer(sessions, parties.agency_user)
    await client.put("/api/approval-threshold", headers=admin, json={"amount": TOTAL})
    drafted = (await client.post("/api/contracts", headers=admin, json=_draft(parties))).json()
    assert drafted["approval"]["needed"] is False
    assert (await client.post(f"/api/contracts/{drafted['id']}/send", headers=admin)).status_code == 200


async def test_the_threshold_is_set_on_the_budget_page_by_an_administrator_only(web, sessions):
    parties = await contract_parties(sessions)
    buyer = await make_user(sessions, parties.agency, role="buyer", name="Buyer Cho")
    await web.login(buyer.email)
    assert (
        await web.submit("/contracts/approval-threshold", {"threshold": "1"}, form_page="/contracts/budget")
    ).status_code == 403
    await web.login(parties.agency_user.email)
    bad = await web.submit("/contracts/approval-threshold", {"threshold": "a lot"}, form_page="/contracts/budget")
    assert bad.status_code == 422 and 'id="field-threshold"' in bad.text
    assert (
        await web.submit("/contracts/approval-threshold", {"threshold": "100,000,000"}, form_page="/contracts/budget")
    ).status_code == 303
    async with sessions() as session:
        assert await authority.approval_threshold(session, parties.agency.id) == 100_000_000  # type: ignore[arg-type]
    assert "₩100,000,000" in (await web.client.get("/contracts/budget")).text


async def test_the_approval_shows_on_the_contract_page_and_in_the_ocds_release(client, web, sessions, settings):
    parties = await contract_parties(sessions)
    buyer_user = await make_user(sessions, parties.agency, role="buyer", name="Buyer Cho")
    signer_user = await make_user(sessions, parties.agency, role="signer", name="Signer Song", signing_limit=TOTAL)
    buyer, signer = principal(buyer_user, parties.agency), principal(signer_user, parties.agency)
    async with sessions() as session, session.begin():
        await authority.set_approval_threshold(session, parties.buyer, 1_000_000)
        contract = await drafting.draft(session, buyer, terms(parties))
        contract_id = contract.id
    await web.login(signer_user.email)
    assert (
        await web.submit(
            f"/contracts/{contract_id}/approve", {"confirm": "yes"}, form_page=f"/contracts/{contract_id}/approve"
        )
    ).status_code == 303
    async with sessions() as session, session.begin():
        await drafting.send(session, buyer, documents.store_for(settings), contract_id)  # type: ignore[arg-type]
    await sign_as(sessions, settings, parties.seller, contract_id)
    await sign_as(sessions, settings, signer, contract_id)

    await web.login(buyer_user.email)
    page = await web.client.get(f"/contracts/{contract_id}")
    assert "Version 1 was approved by Signer Song (signer)" in page.text

    async with sessions() as session:
        number = (await session.get(Contract, contract_id)).number  # type: ignore[union-attr]
    package = (await client.get(f"/api/ocds/records/{ocds.ocid(number)}")).json()
    assert_valid(RECORD_PACKAGE, package)
    [milestone] = package["records"][0]["compiledRelease"]["contracts"][0]["milestones"]
    assert (milestone["type"], milestone["status"], milestone["code"]) == ("approval", "met", "internalApproval")
    assert (
        milestone["dateMet"]
        and "(signer)" in milestone["description"]
        and "Signer Song" not in milestone["description"]
    )
