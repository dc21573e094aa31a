"""Amendments: a reason from the fixed list and a rationale, a real change, both signatures, the original kept."""

from __future__ import annotations

from datetime import date
from typing import Any

from contracts.models import Contract, ContractVersion
from tests.contracts.factories import bearer, contract_parties, signed_contract
from tests.helpers import PASSWORD, audit_actions


def _sign(version: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "password": PASSWORD,
        "confirm_read": True,
        "signer_name": name,
        "document_sha256": version["document_sha256"],
    }


async def test_an_amendment_takes_effect_when_both_sign_and_the_original_stays_readable(
    client, web, sessions, settings, monkeypatch, parts
):
    seen: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(parts, "subscribers", {name: list(functions) for name, functions in parts.subscribers.items()})

    async def record(session: Any, **data: Any) -> None:
        seen.append(("contract.amended", data))

    parts.subscribe("contract.amended", record)

    parties = await contract_parties(sessions, unit_price=10_000)
    contract_id = await signed_contract(sessions, settings, parties, today=date(2027, 1, 1))
    agency, provider = await bearer(sessions, parties.agency_user), await bearer(sessions, parties.provider_user)
    proposed = await client.post(
        f"/api/contracts/{contract_id}/amendments",
        headers=provider,
        json={
            "amendment_reason": "price_reduction",
            "rationale": "Volume discount agreed at the quarterly review.",
            "unit_price": 9_000,
        },
    )
    assert proposed.status_code == 201, proposed.text
    body = proposed.json()
    amendment = body["versions"][-1]
    assert (amendment["kind"], amendment["state"], amendment["number"]) == ("amendment", "sent", 2)
    assert (
        amendment["amount_net"] == 9_000 * 10 * 12 and body["amount_total"] == 1_320_000
    )  # the signed text still binds
    assert (
        await client.post(
            f"/api/contracts/{contract_id}/amendments",
            headers=agency,
            json={"amendment_reason": "other", "rationale": "x", "quantity": 3},
        )
    ).status_code == 409  # one at a time
    first = await client.post(
        f"/api/contracts/{contract_id}/versions/2/signatures", headers=provider, json=_sign(amendment, "Seller Park")
    )
    assert first.status_code == 201 and first.json()["signed_version_id"] == body["versions"][0]["id"]
    second = await client.post(
        f"/api/contracts/{contract_id}/versions/2/signatures", headers=agency, json=_sign(amendment, "Buyer Kim")
    )
    assert second.status_code == 201
    after = second.json()
    assert (
        after["status"] == "active"
        and after["signed_version_id"] == amendment["id"]
        and after["amount_net"] == 1_080_000
    )
    assert [(v["number"], v["state"]) for v in after["versions"]] == [(1, "superseded"), (2, "signed")]
    assert seen == [("contract.amended", {"contract_id": contract_id, "version_id": amendment["id"]})]
    assert "contract.amend" in await audit_actions(sessions)
    # the signed original is still there, with its document intact
    await web.login(parties.agency_user.email)
    original = await web.client.get(f"/contracts/{contract_id}/versions/1/document")
    assert original.status_code == 200 and "₩10,000" in original.text
    check = await client.get(f"/api/contracts/{contract_id}/versions/1/check", headers=agency)
    assert check.json()["intact"] is True
    detail = await web.client.get(f"/contracts/{contract_id}")
    assert "Amendment 2" in detail.text and "Version 1" in detail.text and "Volume discount" in detail.text


async def test_an_amendment_must_change_something(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await signed_contract(sessions, settings, parties, today=date(2027, 1, 1))
    agency = await bearer(sessions, parties.agency_user)
    same = await client.post(
        f"/api/contracts/{contract_id}/amendments",
        headers=agency,
        json={"amendment_reason": "volume_change", "rationale": "No change really", "quantity": 10},
    )
    assert same.status_code == 422 and "changes nothing" in same.json()["detail"] + str(same.json()["errors"])
    unknown = await client.post(
        f"/api/contracts/{contract_id}/amendments",
        headers=agency,
        json={"amendment_reason": "whim", "rationale": "x", "quantity": 11},
    )
    assert unknown.status_code == 422 and "amendment_reason" in unknown.json()["errors"]
    no_rationale = await client.post(
        f"/api/contracts/{contract_id}/amendments",
        headers=agency,
        json={"amendment_reason": "volume_change", "rationale": "", "quantity": 11},
    )
    assert no_rationale.status_code == 422 and "rationale" in no_rationale.json()["errors"]
    higher = await client.post(
        f"/api/contracts/{contract_id}/amendments",
        headers=agency,
        json={"amendment_reason": "price_reduction", "rationale": "x", "unit_price": 20_000},
    )
    assert higher.status_code == 422 and "unit_price" in higher.json()["errors"]
    async with sessions() as session:
        contract = await session.get(Contract, contract_id)
        assert contract.current_version_id == contract.signed_version_id


async def test_only_a_contract_in_force_can_be_amended(client, sessions, settings):
    from tests.contracts.factories import sent_contract

    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    response = await client.post(
        f"/api/contracts/{contract_id}/amendments",
        headers=await bearer(sessions, parties.agency_user),
        json={"amendment_reason": "volume_change", "rationale": "More users", "quantity": 20},
    )
    assert response.status_code == 409


async def test_the_other_party_declines_an_amendment_and_the_signed_text_stays(client, web, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await signed_contract(sessions, settings, parties, today=date(2027, 1, 1))
    agency, provider = await bearer(sessions, parties.agency_user), await bearer(sessions, parties.provider_user)
    await web.login(parties.agency_user.email)
    form = await web.client.get(f"/contracts/{contract_id}/amend")
    assert form.status_code == 200 and "Duration extension" in form.text
    proposed = await web.submit(
        f"/contracts/{contract_id}/amend",
        {
            "amendment_reason": "duration_extension",
            "rationale": "Another half year",
            "ends_on": "2028-06-30",
            "confirm": "yes",
        },
    )
    assert proposed.status_code == 303, proposed.text
    assert (
        await client.post(f"/api/contracts/{contract_id}/decline", headers=agency, json={"reason": "mine"})
    ).status_code == 403
    declined = await client.post(
        f"/api/contracts/{contract_id}/decline", headers=provider, json={"reason": "Capacity is booked"}
    )
    assert declined.status_code == 200 and declined.json()["status"] == "active"
    assert declined.json()["current_version_id"] == declined.json()["signed_version_id"]
    assert declined.json()["ends_on"] == "2027-12-31"
    async with sessions() as session:
        versions = [await session.get(ContractVersion, v["id"]) for v in declined.json()["versions"]]
    assert [v.state for v in versions] == ["signed", "declined"]
