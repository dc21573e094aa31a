"""Invoices in manual mode: the daily sweep issues one per begun billing period, the provider or an operator
records bank transfers, and each side sees its own invoices (pages, /api, CSV)."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from contracts import invoices, sweep
from contracts.models import Invoice, Payment
from market import clock
from market.cli import main
from market.parts import Parts
from tests.contracts.factories import Parties, active_contract, contract_parties, principal
from tests.helpers import YEAR, audit_actions, count, make_organisation, make_user

MARCH_15 = date(2026, 3, 15)


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch, parts: Parts) -> list[tuple[str, dict[str, Any]]]:
    """What the invoices announce, recorded beside the real subscribers."""
    seen: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(parts, "subscribers", {name: list(functions) for name, functions in parts.subscribers.items()})
    for event in ("invoice.issued", "invoice.paid"):

        async def record(session: Any, *, _event: str = event, **data: Any) -> None:
            seen.append((_event, data))

        parts.subscribe(event, record)
    return seen


async def run_sweep(sessions, settings, today: date) -> sweep.SweepReport:
    async with sessions() as session, session.begin():
        return await sweep.sweep(session, settings, today)


async def invoices_of(sessions, contract_id: int) -> list[Invoice]:
    async with sessions() as session:
        return list(
            (
                await session.scalars(
                    sa.select(Invoice).where(Invoice.contract_id == contract_id).order_by(Invoice.period)
                )
            ).all()
        )


async def monthly_world(sessions, settings, **overrides: Any) -> tuple[Parties, int, list[Invoice]]:
    parties = await contract_parties(sessions)
    contract_id = await active_contract(sessions, settings, parties, **overrides)
    await run_sweep(sessions, settings, MARCH_15)
    return parties, contract_id, await invoices_of(sessions, contract_id)


# --- issuing --------------------------------------------------------------------------------------------


async def test_the_sweep_issues_one_invoice_per_begun_period_due_in_30_days_and_a_second_run_issues_none(
    sessions, settings, emitted
):
    parties = await contract_parties(sessions, unit_price=10_000)
    contract_id = await active_contract(sessions, settings, parties, quantity=10)
    report = await run_sweep(sessions, settings, MARCH_15)
    issued = await invoices_of(sessions, contract_id)
    assert [invoice.period for invoice in issued] == [1, 2, 3]  # January, February, March have begun
    assert [(i.period_start, i.period_end) for i in issued] == [
        (date(2026, 1, 1), date(2026, 1, 31)),
        (date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 3, 1), date(2026, 3, 31)),
    ]
    assert all(i.amount_net == 100_000 and i.amount_vat == 10_000 and i.amount_total == 110_000 for i in issued)
    assert all(i.issued_on == MARCH_15 and i.due_on == MARCH_15 + timedelta(days=30) for i in issued)
    assert all(i.status == "open" and i.payment_mode == "manual" for i in issued)
    assert {i.agency_id for i in issued} == {parties.agency.id} and {i.provider_id for i in issued} == {
        parties.provider.id
    }
    assert len({i.number for i in issued}) == 3 and all(i.number.startswith("INV-2026-") for i in issued)
    assert report.issued == [i.number for i in issued]
    assert [name for name, _ in emitted].count("invoice.issued") == 3
    assert (await audit_actions(sessions)).count("contracts.invoice_issued") == 3

    again = await run_sweep(sessions, settings, MARCH_15)
    assert again.issued == [] and await count(sessions, Invoice) == 3
    later = await run_sweep(sessions, settings, date(2026, 4, 1))
    assert len(later.issued) == 1 and await count(sessions, Invoice) == 4


async def test_quarterly_and_single_payment_contracts_are_invoiced_per_quarter_and_once(sessions, settings):
    quarterly = await active_contract(
        sessions, settings, await contract_parties(sessions), billing_period="quarterly", quantity=1
    )
    once = await active_contract(
        sessions, settings, await contract_parties(sessions), billing_period="once", quantity=1
    )
    await run_sweep(sessions, settings, date(2026, 7, 1))
    quarters = await invoices_of(sessions, quarterly)
    assert [(i.period_start, i.period_end) for i in quarters] == [
        (date(2026, 1, 1), date(2026, 3, 31)),
        (date(2026, 4, 1), date(2026, 6, 30)),
        (date(2026, 7, 1), date(2026, 9, 30)),
    ]
    assert all(i.amount_net == 30_000 for i in quarters)
    single = await invoices_of(sessions, once)
    assert len(single) == 1 and single[0].amount_net == 120_000 and single[0].amount_total == 132_000


async def test_a_contract_not_yet_started_is_not_invoiced(sessions, settings):
    from tests.contracts.factories import signed_contract

    contract_id = await signed_contract(
        sessions, settings, today=date(YEAR, 3, 1), starts_on=date(YEAR, 6, 1), ends_on=date(YEAR, 12, 31)
    )
    await run_sweep(sessions, settings, date(YEAR, 3, 15))
    assert await invoices_of(sessions, contract_id) == []


def test_the_contracts_sweep_command_prints_the_invoices_it_issued(
    sessions, settings, database_url, tmp_path, monkeypatch
):
    async def arrange() -> int:
        return await active_contract(sessions, settings, await contract_parties(sessions))

    contract_id = asyncio.run(arrange())
    monkeypatch.setenv("MARKET_DATABASE_URL", database_url)
    monkeypatch.setenv("MARKET_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["contracts", "sweep", "--today", "2026-02-10"])
    assert result.exit_code == 0, result.output
    assert "2 invoices issued: INV-2026-000001, INV-2026-000002" in result.output
    again = CliRunner().invoke(main, ["contracts", "sweep", "--today", "2026-02-10"])
    assert again.exit_code == 0 and "0 invoices issued" in again.output
    assert len(asyncio.run(invoices_of(sessions, contract_id))) == 2
    wrong = CliRunner().invoke(main, ["contracts", "sweep", "--today", "tomorrow"])
    assert wrong.exit_code != 0 and "YYYY-MM-DD" in wrong.output


# --- manual payments ----------------------------------------------------------------------------------------


async def test_the_provider_records_a_bank_transfer_and_the_invoice_is_paid(web, sessions, settings, emitted):
    parties, _contract_id, issued = await monthly_world(sessions, settings)
    invoice = issued[0]
    await web.login(parties.provider_user.email)
    page = await web.client.get(f"/invoices/{invoice.id}")
    assert page.status_code == 200 and "Record a bank transfer" in page.text and invoice.number in page.text
    response = await web.submit(
        f"/invoices/{invoice.id}/payments",
        {"amount": "110,000", "paid_on": "2026-03-10", "reference": "KB 2026-0310"},
        form_page=f"/invoices/{invoice.id}",
    )
    assert response.status_code == 303, response.text
    (paid,) = [i for i in await invoices_of(sessions, invoice.contract_id) if i.id == invoice.id]
    assert paid.status == "paid" and paid.paid_at is not None
    async with sessions() as session:
        payment = await session.scalar(sa.select(Payment).where(Payment.invoice_id == invoice.id))
    assert (payment.amount, payment.paid_on, payment.method, payment.reference) == (
        110_000,
        date(2026, 3, 10),
        "bank_transfer",
        "KB 2026-0310",
    )
    assert payment.recorded_by_id == parties.provider_user.id
    assert ("invoice.paid", {"invoice_id": invoice.id, "payment_id": payment.id}) in emitted
    assert (await audit_actions(sessions))[-1] == "contracts.invoice_paid"
    shown = await web.client.get(f"/invoices/{invoice.id}")
    assert "KB 2026-0310" in shown.text and "Record a bank transfer" not in shown.text


async def test_partial_transfers_add_up_and_the_invoice_is_paid_when_they_cover_it(sessions, settings, emitted):
    parties, _contract_id, issued = await monthly_world(sessions, settings)
    invoice = issued[0]
    for amount in (60_000, 50_000):
        async with sessions() as session, session.begin():
            await invoices.record_payment(
                session,
                parties.seller,
                invoice.id,
                invoices.PaymentInput(amount=amount, paid_on=date(2026, 3, 1)),
                today=MARCH_15,
            )
        async with sessions() as session:
            status = (await session.get(Invoice, invoice.id)).status
        assert status == ("open" if amount == 60_000 else "paid")
    assert [name for name, _ in emitted].count("invoice.paid") == 1
    assert (await audit_actions(sessions))[-2:] == ["contracts.payment_recorded", "contracts.invoice_paid"]


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"amount": "120000", "paid_on": "2026-03-10"}, "amount", "At most ₩110,000 is outstanding"),
        ({"amount": "0", "paid_on": "2026-03-10"}, "amount", "out of range"),
        ({"amount": "lots", "paid_on": "2026-03-10"}, "amount", "whole number"),
        ({"amount": "110000", "paid_on": "2026-04-01"}, "paid_on", "cannot be in the future"),
        ({"amount": "110000", "paid_on": "10/03/2026"}, "paid_on", "YYYY-MM-DD"),
        ({"amount": "110000", "paid_on": "2026-03-10", "reference": "x" * 201}, "reference", "At most 200"),
    ],
)
async def test_a_bad_payment_is_refused_naming_the_field_and_nothing_is_written(
    web, sessions, settings, form, field, message
):
    with clock.travel(MARCH_15):
        await _refused_payment(web, sessions, settings, form, field, message)


async def _refused_payment(web, sessions, settings, form, field, message):
    parties, _contract_id, issued = await monthly_world(sessions, settings)
    await web.login(parties.provider_user.email)
    before = await audit_actions(sessions)
    response = await web.submit(f"/invoices/{issued[0].id}/payments", form, form_page=f"/invoices/{issued[0].id}")
    assert response.status_code == 422
    assert f'id="error-{field}"' in response.text and message in response.text
    assert await count(sessions, Payment) == 0 and await audit_actions(sessions) == before


async def test_a_paid_invoice_takes_no_more_payments_and_only_the_provider_or_an_operator_records_them(
    sessions, settings
):
    parties, _contract_id, issued = await monthly_world(sessions, settings)
    from market.errors import Conflict, Forbidden

    with pytest.raises(Forbidden):
        async with sessions() as session, session.begin():
            await invoices.record_payment(
                session,
                parties.buyer,
                issued[0].id,
                invoices.PaymentInput(amount=1000, paid_on=MARCH_15),
                today=MARCH_15,
            )
    operator_org = await make_organisation(sessions, "operator")
    operator = principal(await make_user(sessions, operator_org), operator_org)
    async with sessions() as session, session.begin():
        await invoices.record_payment(
            session, operator, issued[0].id, invoices.PaymentInput(amount=110_000, paid_on=MARCH_15), today=MARCH_15
        )
    with pytest.raises(Conflict, match="is Paid"):
        async with sessions() as session, session.begin():
            await invoices.record_payment(
                session, parties.seller, issued[0].id, invoices.PaymentInput(amount=1, paid_on=MARCH_15), today=MARCH_15
            )


async def test_an_operator_voids_an_invoice_only_after_confirming(web, sessions, settings):
    _parties, _contract_id, issued = await monthly_world(sessions, settings)
    await web.login_as("operator")
    path = f"/invoices/{issued[1].id}"
    refused = await web.submit(f"{path}/void", {"reason": "Issued twice by mistake"}, form_page=path)
    assert refused.status_code == 422 and 'id="error-confirm"' in refused.text
    done = await web.submit(f"{path}/void", {"reason": "Issued twice by mistake", "confirm": "yes"}, form_page=path)
    assert done.status_code == 303
    assert [i.status for i in await invoices_of(sessions, issued[1].contract_id)] == ["open", "void", "open"]
    assert (await audit_actions(sessions))[-1] == "contracts.invoice_voided"
    again = await web.submit(f"{path}/void", {"reason": "Again", "confirm": "yes"}, form_page="/invoices")
    assert again.status_code == 409


# --- who sees what --------------------------------------------------------------------------------------------


async def test_each_party_sees_its_own_invoices_and_another_organisation_gets_404(web, sessions, settings):
    parties, _contract_id, issued = await monthly_world(sessions, settings)
    others = await contract_parties(sessions)
    other_contract = await active_contract(sessions, settings, others)
    await run_sweep(sessions, settings, date(2026, 1, 5))
    assert len(await invoices_of(sessions, other_contract)) == 1

    await web.login(parties.agency_user.email)
    listing = await web.client.get("/invoices")
    assert listing.status_code == 200
    assert all(i.number in listing.text for i in issued) and "Record a bank transfer" not in listing.text
    mine = await web.client.get(f"/invoices/{issued[0].id}")
    assert mine.status_code == 200 and "Record a bank transfer" not in mine.text
    other_invoice = (await invoices_of(sessions, other_contract))[0]
    assert (await web.client.get(f"/invoices/{other_invoice.id}")).status_code == 404
    assert other_invoice.number not in listing.text

    await web.logout()
    await web.login(others.provider_user.email)
    assert (await web.client.get(f"/invoices/{issued[0].id}")).status_code == 404
    forbidden = await web.submit(
        f"/invoices/{issued[0].id}/payments", {"amount": "1", "paid_on": "2026-03-01"}, form_page="/invoices"
    )
    assert forbidden.status_code == 404 and await count(sessions, Payment) == 0

    await web.logout()
    await web.login_as("committee")
    assert (await web.client.get("/invoices")).status_code == 403


async def test_the_list_filters_by_status_pages_and_exports_csv(web, sessions, settings, monkeypatch):
    monkeypatch.setattr(invoices, "PAGE_SIZE", 2)
    parties, _contract_id, issued = await monthly_world(sessions, settings)
    async with sessions() as session, session.begin():
        await invoices.record_payment(
            session,
            parties.seller,
            issued[0].id,
            invoices.PaymentInput(amount=110_000, paid_on=MARCH_15),
            today=MARCH_15,
        )
    await web.login(parties.provider_user.email)
    first = await web.client.get("/invoices")
    assert "Page 1 of 2" in first.text and 'rel="next"' in first.text
    assert (await web.client.get("/invoices?page=3")).status_code == 404
    paid = await web.client.get("/invoices?status=paid")
    assert issued[0].number in paid.text and issued[1].number not in paid.text
    due = await web.client.get("/invoices?status=due")
    assert issued[0].number not in due.text and issued[1].number in due.text
    assert (await web.client.get("/invoices?status=nonsense")).status_code == 422

    exported = await web.client.get("/invoices/export.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert sorted(row["number"] for row in rows) == sorted(i.number for i in issued)
    assert {row["number"]: row["status"] for row in rows}[issued[0].number] == "paid"
    assert {row["number"]: row["amount_paid"] for row in rows}[issued[0].number] == "110000"


async def test_the_api_lists_shows_and_records_payments_with_problem_json_for_bad_input(client, sessions, settings):
    from tests.catalog.listing_factories import api_token

    parties, _contract_id, issued = await monthly_world(sessions, settings)
    seller = await api_token(sessions, parties.provider_user)
    buyer = await api_token(sessions, parties.agency_user)

    listing = await client.get("/api/invoices?status=due", headers=buyer)
    assert listing.status_code == 200
    body = listing.json()
    assert body["total"] == 3 and {item["number"] for item in body["items"]} == {i.number for i in issued}
    assert body["items"][0]["agency"]["id"] == parties.agency.id and body["items"][0]["currency"] == "KRW"

    bad = await client.post(f"/api/invoices/{issued[0].id}/payments", json={"amount": 110_000}, headers=seller)
    assert bad.status_code == 422 and "paid_on" in bad.json()["errors"]
    extra = await client.post(
        f"/api/invoices/{issued[0].id}/payments",
        json={"amount": 1, "paid_on": "2026-03-01", "status": "paid"},
        headers=seller,
    )
    assert extra.status_code == 422 and "status" in extra.json()["errors"]
    agency_try = await client.post(
        f"/api/invoices/{issued[0].id}/payments", json={"amount": 1, "paid_on": "2026-03-01"}, headers=buyer
    )
    assert agency_try.status_code == 403

    done = await client.post(
        f"/api/invoices/{issued[0].id}/payments",
        json={"amount": 110_000, "paid_on": "2026-03-01", "reference": "transfer"},
        headers=seller,
    )
    assert done.status_code == 201, done.text
    assert done.json()["status"] == "paid" and done.json()["payments"][0]["reference"] == "transfer"
    shown = await client.get(f"/api/invoices/{issued[0].id}", headers=buyer)
    assert shown.status_code == 200 and shown.json()["outstanding"] == 0
    assert (await client.get("/api/invoices/999999", headers=buyer)).status_code == 404
    assert (await client.get("/api/invoices")).status_code == 401


async def test_two_sweeps_at_the_same_moment_issue_each_period_once(sessions, settings):
    first = await active_contract(sessions, settings, await contract_parties(sessions))
    second = await active_contract(sessions, settings, await contract_parties(sessions))

    async def one_sweep() -> sweep.SweepReport:
        async with sessions() as session, session.begin():
            return await sweep.sweep(session, settings, MARCH_15)

    reports = await asyncio.gather(one_sweep(), one_sweep())
    assert sorted(len(report.issued) for report in reports) == [0, 6]
    assert len(await invoices_of(sessions, first)) == 3 and len(await invoices_of(sessions, second)) == 3
    async with sessions() as session:
        numbers = (await session.scalars(sa.select(Invoice.number).order_by(Invoice.number))).all()
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 7)]


async def test_the_worker_runs_the_sweep_daily_for_todays_date(sessions, settings, monkeypatch, parts):
    assert parts.periodic["contracts.sweep"] == (sweep.periodic_sweep, 24 * 3600)
    contract_id = await active_contract(sessions, settings, await contract_parties(sessions))
    with clock.travel(date(2026, 2, 1)):
        await sweep.periodic_sweep(sessions, settings)
    assert [i.period for i in await invoices_of(sessions, contract_id)] == [1, 2]


def test_the_sweep_day_is_the_day_in_the_marketplaces_time_zone(settings):
    from datetime import UTC, datetime

    assert clock.today(settings.zone, datetime(2026, 2, 28, 15, 30, tzinfo=UTC)) == date(
        2026, 3, 1
    )  # already March in Seoul
    assert clock.today(settings.zone, datetime(2026, 2, 28, 14, 59, tzinfo=UTC)) == date(2026, 2, 28)


async def test_two_transfers_recorded_at_the_same_moment_never_exceed_the_invoice(sessions, settings):
    from market.errors import Invalid

    parties, _contract_id, issued = await monthly_world(sessions, settings)

    async def record() -> str:
        try:
            async with sessions() as session, session.begin():
                await invoices.record_payment(
                    session,
                    parties.seller,
                    issued[0].id,
                    invoices.PaymentInput(amount=60_000, paid_on=MARCH_15),
                    today=MARCH_15,
                )
        except Invalid as exc:
            return exc.errors["amount"]
        return "recorded"

    outcomes = await asyncio.gather(record(), record())
    assert sorted(outcomes) == ["At most ₩50,000 is outstanding on this invoice.", "recorded"]
    assert await count(sessions, Payment) == 1
