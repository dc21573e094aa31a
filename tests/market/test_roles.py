"""Roles by kind of organisation (agency: buyer, signer, admin; provider: signer, admin; committee and operator as
before) and agency signing limits, set by another administrator on the page and through the API, audited."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from market.models import AuditEvent, Invitation, User
from tests.helpers import count, make_organisation, make_user
from tests.market.test_organisation import admin_token, member_row, writes
from tests.market.test_tokens import bearer


def offered_roles(html: str, select_id: str) -> list[str]:
    match = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', html, re.S)
    assert match, f"no select {select_id}"
    return re.findall(r'<option value="([^"]+)"', match.group(1))


async def test_each_kind_of_organisation_offers_only_its_own_roles(web) -> None:
    agency = await make_organisation(web.sessions, "agency")
    colleague = await make_user(web.sessions, agency, role="buyer", name="Buyer Cho")
    await web.login_as("agency", organisation=agency)
    page = (await web.client.get("/organisation")).text
    assert offered_roles(page, "field-role") == ["buyer", "signer", "admin"]
    assert offered_roles(page, f"role-{colleague.id}") == ["buyer", "signer", "admin"]
    assert "Signing limit" in page

    provider = await make_organisation(web.sessions, "provider")
    seller = await make_user(web.sessions, provider, role="signer", name="Seller Oh")
    await web.login_as("provider", organisation=provider)
    page = (await web.client.get("/organisation")).text
    assert offered_roles(page, "field-role") == ["signer", "admin"]
    assert offered_roles(page, f"role-{seller.id}") == ["signer", "admin"]
    assert "Signing limit" not in page


@pytest.mark.parametrize(
    ("kind", "role"), [("provider", "buyer"), ("agency", "member"), ("provider", "member"), ("agency", "owner")]
)
async def test_an_invitation_or_role_change_to_another_kinds_role_is_refused(web, kind: str, role: str) -> None:
    organisation, _admin, raw = await admin_token(web, kind)
    colleague = await make_user(web.sessions, organisation, role="signer")
    before = await writes(web)
    invited = await web.client.post(
        "/api/organisation/invitations", json={"email": "new@example.go.kr", "role": role}, headers=bearer(raw)
    )
    changed = await web.client.post(
        f"/api/organisation/members/{colleague.id}/role", json={"role": role}, headers=bearer(raw)
    )
    assert (invited.status_code, changed.status_code) == (422, 422), (invited.text, changed.text)
    assert "role" in invited.json()["errors"]
    assert (await member_row(web, colleague.id)).role == "signer"
    assert await writes(web) == before


async def test_an_agency_invitation_without_a_role_invites_a_buyer(web) -> None:
    _organisation, _admin, raw = await admin_token(web, "agency")
    invited = await web.client.post(
        "/api/organisation/invitations", json={"email": "new@agency.example.go.kr"}, headers=bearer(raw)
    )
    assert invited.status_code == 201 and invited.json()["role"] == "buyer"


async def test_an_administrator_sets_a_signers_limit_on_the_page_and_it_is_audited(web) -> None:
    agency = await make_organisation(web.sessions, "agency")
    signer = await make_user(web.sessions, agency, role="signer", name="Signer Song")
    await web.login_as("agency", organisation=agency)
    response = await web.submit(
        f"/organisation/members/{signer.id}/signing-limit", {"signing_limit": "50,000,000"}, form_page="/organisation"
    )
    assert response.status_code == 303, response.text
    assert (await member_row(web, signer.id)).signing_limit == 50_000_000
    async with web.sessions() as session:
        event = await session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "user.signing_limit"))
    assert event is not None and json.loads(event.summary) == {"email": signer.email, "from": 0, "to": 50_000_000}
    assert "₩50,000,000" in (await web.client.get("/organisation")).text


async def test_the_api_sets_a_limit_and_refuses_buyers_own_limits_providers_and_non_administrators(web) -> None:
    agency, admin, raw = await admin_token(web, "agency")
    signer = await make_user(web.sessions, agency, role="signer")
    buyer = await make_user(web.sessions, agency, role="buyer")
    url = "/api/organisation/members/{}/signing-limit"
    accepted = await web.client.post(
        url.format(signer.id), json={"signing_limit": 2_000_000_000_000}, headers=bearer(raw)
    )
    assert accepted.status_code == 200 and accepted.json()["signing_limit"] == 2_000_000_000_000  # beyond 32 bits
    _provider, _provider_admin, provider_raw = await admin_token(web, "provider")
    _other, _signer, signer_raw = await admin_token(web, "agency", role="signer")
    before = await writes(web)
    assert (
        await web.client.post(url.format(buyer.id), json={"signing_limit": 1}, headers=bearer(raw))
    ).status_code == 409
    assert (
        await web.client.post(url.format(admin.id), json={"signing_limit": 1}, headers=bearer(raw))
    ).status_code == 409
    assert (
        await web.client.post(url.format(signer.id), json={"signing_limit": -1}, headers=bearer(raw))
    ).status_code == 422
    assert (
        await web.client.post(url.format(signer.id), json={"signing_limit": 1}, headers=bearer(provider_raw))
    ).status_code == 403
    assert (
        await web.client.post(url.format(signer.id), json={"signing_limit": 1}, headers=bearer(signer_raw))
    ).status_code == 403
    assert await writes(web) == before
    assert (await member_row(web, buyer.id)).signing_limit == 0


async def test_a_provider_administrator_has_no_limits_to_set(web) -> None:
    provider, _admin, raw = await admin_token(web, "provider")
    seller = await make_user(web.sessions, provider, role="signer")
    refused = await web.client.post(
        f"/api/organisation/members/{seller.id}/signing-limit", json={"signing_limit": 1}, headers=bearer(raw)
    )
    assert refused.status_code == 403 and "without one" in refused.json()["detail"]


async def test_a_signer_made_a_buyer_loses_their_limit(web) -> None:
    agency, _admin, raw = await admin_token(web, "agency")
    signer = await make_user(web.sessions, agency, role="signer", signing_limit=9_000_000)
    changed = await web.client.post(
        f"/api/organisation/members/{signer.id}/role", json={"role": "buyer"}, headers=bearer(raw)
    )
    assert changed.status_code == 200 and changed.json()["role"] == "buyer" and changed.json()["signing_limit"] == 0
    async with web.sessions() as session:
        event = await session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "user.role_change"))
    assert event is not None and json.loads(event.summary)["signing_limit"] == {"from": 9_000_000, "to": 0}
    assert await count(web.sessions, Invitation) == 0
    assert (await member_row(web, signer.id)).role == "buyer"
    async with web.sessions() as session:
        assert await session.scalar(sa.select(User.signing_limit).where(User.id == signer.id)) == 0
