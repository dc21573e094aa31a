"""The agency's and the provider's home panels: what needs attention in their contracts and invoices."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from contracts.models import ContractVersion, VersionState
from market import clock
from tests.contracts.register_rows import add_budget, add_contract, add_invoice, register_world
from tests.helpers import make_organisation


def panel(text: str) -> str:
    match = re.search(r'<section class="panel".*?</section>', text, re.S)
    assert match, "no contracts panel on the page"
    return match.group(0)


async def test_agency_panel_counts_contracts_by_state(web, sessions):
    agency_user = await web.login_as("agency")
    world = await register_world(sessions, agency=await _organisation_of(sessions, agency_user))
    for status in ("draft", "sent", "active", "active", "completed"):
        await add_contract(sessions, world, status=status)

    text = panel((await web.client.get("/")).text)

    assert '<th scope="row">Active</th><td class="number">2</td>' in text
    assert '<th scope="row">Draft</th><td class="number">1</td>' in text
    assert '<th scope="row">Sent for signature</th><td class="number">1</td>' in text
    assert '<th scope="row">Completed</th><td class="number">1</td>' in text
    assert "Cancelled" not in text


async def test_agency_panel_lists_contracts_ending_within_ninety_days_and_their_renewals(web, sessions):
    agency_user = await web.login_as("agency")
    world = await register_world(
        sessions, agency=await _organisation_of(sessions, agency_user), provider_name="Hanbit Cloud"
    )
    today = clock.today()
    soon = await add_contract(
        sessions, world, starts_on=today - timedelta(days=300), ends_on=today + timedelta(days=20)
    )
    renewed = await add_contract(
        sessions, world, starts_on=today - timedelta(days=300), ends_on=today + timedelta(days=60)
    )
    renewal = await add_contract(
        sessions,
        world,
        status="draft",
        starts_on=today + timedelta(days=61),
        ends_on=today + timedelta(days=400),
        renewal_of_id=renewed.id,
    )
    later = await add_contract(
        sessions, world, starts_on=today - timedelta(days=10), ends_on=today + timedelta(days=200)
    )
    ended = await add_contract(
        sessions, world, status="completed", starts_on=today - timedelta(days=300), ends_on=today + timedelta(days=5)
    )

    text = panel((await web.client.get("/")).text)
    ending = text[text.index("Ending in the next 90 days") : text.index("Budget for")]

    assert soon.number in ending and renewed.number in ending
    assert later.number not in ending and ended.number not in ending
    assert ending.index(soon.number) < ending.index(renewed.number)  # the soonest first
    assert f"{renewal.number} (Draft)" in ending and "Not renewed yet" in ending
    assert f'href="/contracts/{soon.id}"' in ending


async def test_agency_panel_shows_spending_against_this_years_budget(web, sessions):
    agency_user = await web.login_as("agency")
    world = await register_world(sessions, agency=await _organisation_of(sessions, agency_user))
    year = clock.today().year
    await add_budget(sessions, world, year, 10_000_000)
    contract = await add_contract(
        sessions, world, amount_net=4_000_000, starts_on=date(year, 1, 1), ends_on=date(year, 12, 31)
    )
    await add_contract(
        sessions, world, amount_net=50_000_000, starts_on=date(year + 1, 1, 1), ends_on=date(year + 1, 12, 31)
    )
    await add_invoice(sessions, world, contract, amount_total=440_000, paid_on=date(year, 2, 1))

    text = panel((await web.client.get("/")).text)

    assert f"Budget for {year}" in text
    assert "₩10,000,000" in text and "₩4,400,000" in text and "₩5,600,000" in text and "₩440,000" in text
    assert 'aria-label="44% of the budget committed"' in text


async def test_agency_panel_without_a_budget_invites_recording_one(web, sessions):
    await web.login_as("agency")
    text = panel((await web.client.get("/")).text)
    assert "You have not recorded a budget" in text and 'href="/contracts/budget"' in text
    assert "You have no contracts yet" in text
    assert "None of your contracts ends in the next 90 days." in text
    assert "You have no unpaid invoices." in text


async def test_agency_panel_lists_unpaid_invoices_and_flags_overdue_ones(web, sessions):
    agency_user = await web.login_as("agency")
    world = await register_world(sessions, agency=await _organisation_of(sessions, agency_user))
    today = clock.today()
    contract = await add_contract(sessions, world)
    overdue, _ = await add_invoice(sessions, world, contract, period=1, due_on=today - timedelta(days=3))
    upcoming, _ = await add_invoice(sessions, world, contract, period=2, due_on=today + timedelta(days=10))
    paid, _ = await add_invoice(sessions, world, contract, period=3, paid_on=today - timedelta(days=1))

    text = panel((await web.client.get("/")).text)
    due = text[text.index("Invoices to pay") :]

    assert overdue.number in due and upcoming.number in due and paid.number not in due
    assert due.index(overdue.number) < due.index(upcoming.number)
    assert due.count("overdue") == 1


async def test_provider_panel_lists_contracts_to_sign_and_in_force(web, sessions):
    provider_user = await web.login_as("provider")
    world = await register_world(sessions, agency_name="Daejeon Office")
    world.provider = await _organisation_of(sessions, provider_user)
    to_sign = await add_contract(sessions, world, status="sent")
    draft = await add_contract(sessions, world, status="draft")
    active = await add_contract(sessions, world, status="active")
    signed = await add_contract(sessions, world, status="signed")

    text = panel((await web.client.get("/")).text)
    waiting = text[text.index("Waiting for your signature") : text.index("Contracts in force")]
    in_force = text[text.index("Contracts in force") : text.index("<h3>Invoices")]

    assert to_sign.number in waiting and draft.number not in waiting and active.number not in waiting
    assert active.number in in_force and signed.number in in_force and to_sign.number not in in_force
    assert "Daejeon Office" in waiting


async def test_provider_panel_drops_a_contract_it_has_already_signed(web, sessions):
    provider_user = await web.login_as("provider")
    world = await register_world(sessions)
    world.provider = await _organisation_of(sessions, provider_user)
    contract = await add_contract(sessions, world, status="sent")
    from contracts.models import Signature

    async with sessions() as session, session.begin():
        session.add(
            Signature(
                contract_id=contract.id,
                version_id=contract.current_version_id,
                side="provider",
                user_id=provider_user.id,  # type: ignore[arg-type]
                organisation_id=world.provider.id,
                signer_name="P",
                signer_role="admin",
                document_sha256="0" * 64,  # type: ignore[arg-type]
            )
        )

    text = panel((await web.client.get("/")).text)
    assert "Nothing is waiting for your signature." in text


async def test_provider_panel_lists_an_amendment_waiting_for_its_signature(web, sessions):
    provider_user = await web.login_as("provider")
    world = await register_world(sessions)
    world.provider = await _organisation_of(sessions, provider_user)
    contract = await add_contract(sessions, world, status="active")
    async with sessions() as session, session.begin():
        current = await session.get(ContractVersion, contract.signed_version_id)
        amendment = ContractVersion(
            **{
                **current.model_dump(exclude={"id", "number", "state", "kind", "signed_at"}),  # type: ignore[union-attr]
                "number": 2,
                "state": VersionState.sent,
                "kind": "amendment",
                "amendment_reason": "other",
            }
        )
        session.add(amendment)
        await session.flush()
        from contracts.models import Contract

        row = await session.get(Contract, contract.id)
        row.current_version_id = amendment.id  # type: ignore[union-attr]

    text = panel((await web.client.get("/")).text)
    waiting = text[text.index("Waiting for your signature") : text.index("Contracts in force")]
    assert contract.number in waiting


async def test_provider_panel_shows_invoices_and_whether_they_are_paid(web, sessions):
    provider_user = await web.login_as("provider")
    world = await register_world(sessions)
    world.provider = await _organisation_of(sessions, provider_user)
    contract = await add_contract(sessions, world, status="active")
    paid, _ = await add_invoice(sessions, world, contract, period=1, amount_total=110_000, paid_on=date(2026, 2, 1))
    unpaid, _ = await add_invoice(
        sessions, world, contract, period=2, amount_total=220_000, issued_on=date(2026, 2, 2), due_on=date(2099, 3, 1)
    )

    text = panel((await web.client.get("/")).text)

    assert "Outstanding: ₩220,000. Paid: ₩110,000." in text
    assert re.search(rf"{paid.number}.*?Paid on 2026-02-01", text, re.S)
    assert re.search(rf"{unpaid.number}.*?Open", text, re.S)


async def test_provider_panel_empty_states(web):
    await web.login_as("provider")
    text = panel((await web.client.get("/")).text)
    assert "Nothing is waiting for your signature." in text
    assert "You have no contract in force." in text
    assert "No invoices yet." in text


async def test_no_contracts_panel_for_other_kinds_of_user(web, sessions):
    await web.login_as("operator")
    response = await web.client.get("/")
    assert response.status_code == 200
    assert '<section class="panel"' not in response.text


async def test_panels_show_only_the_users_own_organisation(web, sessions):
    await web.login_as("agency")
    stranger = await register_world(sessions, agency=await make_organisation(sessions, "agency"))
    theirs = await add_contract(sessions, stranger, status="active", signed_at=datetime(2026, 1, 1, tzinfo=UTC))
    text = panel((await web.client.get("/")).text)
    assert theirs.number not in text
    assert "You have no contracts yet" in text


async def _organisation_of(sessions, user):
    from market.models import Organisation

    async with sessions() as session:
        return await session.get(Organisation, user.organisation_id)


async def test_agency_panel_lists_what_the_provider_signed_and_waits_for_the_agency(web, sessions):
    agency_user = await web.login_as("agency")
    world = await register_world(sessions, agency=await _organisation_of(sessions, agency_user))
    waiting = await add_contract(sessions, world, status="sent")
    from contracts.models import Signature

    async with sessions() as session, session.begin():
        session.add(
            Signature(
                contract_id=waiting.id,
                version_id=waiting.current_version_id,
                side="provider",
                user_id=world.provider_user.id,  # type: ignore[arg-type]
                organisation_id=world.provider.id,
                signer_name="P",
                signer_role="admin",
                document_sha256="0" * 64,  # type: ignore[arg-type]
            )
        )

    text = panel((await web.client.get("/")).text)
    assert waiting.number in text[text.index("Waiting for your signature") : text.index("Ending in the next")]
