"""The open contract register: public, signed contracts only, searchable, paged, downloadable, with statistics."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

from tests.contracts.register_rows import add_amendment, add_contract, add_invoice, register_world


async def test_register_lists_only_signed_contracts_without_signing_in(client, sessions):
    world = await register_world(sessions, agency_name="Seoul Metropolitan Office", provider_name="Hanbit Cloud")
    shown = {
        status: await add_contract(sessions, world, status=status)
        for status in ("signed", "active", "completed", "terminated")
    }
    hidden = {
        status: await add_contract(sessions, world, status=status)
        for status in ("draft", "sent", "declined", "cancelled")
    }

    response = await client.get("/contracts/register")

    assert response.status_code == 200
    for contract in shown.values():
        assert contract.number in response.text
    for contract in hidden.values():
        assert contract.number not in response.text
    assert (
        "Seoul Metropolitan Office" in response.text
        and "Hanbit Cloud" in response.text
        and "Cloud Drive" in response.text
    )
    assert "₩1,100,000" in response.text  # the value in force, with VAT
    assert "4 contracts" in response.text


async def test_register_empty_state_says_nothing_is_signed_yet(client):
    response = await client.get("/contracts/register")
    assert response.status_code == 200
    assert "No contract has been signed through the marketplace yet" in response.text


async def test_keyword_matches_number_agency_provider_and_service(client, sessions):
    one = await register_world(
        sessions, agency_name="Busan City Hall", provider_name="Gaon Systems", service_name="Mail Archive"
    )
    two = await register_world(
        sessions, agency_name="Daegu Office", provider_name="Nara Cloud", service_name="Video Meetings"
    )
    first = await add_contract(sessions, one)
    second = await add_contract(sessions, two)

    for keyword, expected, other in (
        ("busan", first, second),
        ("nara", second, first),
        ("video", second, first),
        (first.number.lower(), first, second),
    ):
        response = await client.get("/contracts/register", params={"q": keyword})
        assert expected.number in response.text, keyword
        assert other.number not in response.text, keyword


async def test_keyword_with_like_wildcards_is_matched_literally(client, sessions):
    world = await register_world(sessions)
    await add_contract(sessions, world)
    response = await client.get("/contracts/register", params={"q": "%"})
    assert "No signed contract matches this search" in response.text


async def test_filters_by_status_route_category_agency_and_year(client, sessions):
    saas = await register_world(sessions, category="saas")
    iaas = await register_world(sessions, category="iaas")
    active_direct = await add_contract(
        sessions, saas, status="active", route="direct", signed_at=datetime(2025, 6, 1, tzinfo=UTC)
    )
    completed_central = await add_contract(
        sessions, saas, status="completed", route="central", signed_at=datetime(2026, 2, 1, tzinfo=UTC)
    )
    iaas_contract = await add_contract(sessions, iaas, status="active", signed_at=datetime(2026, 3, 1, tzinfo=UTC))

    async def numbers(**params: str) -> set[str]:
        response = await client.get("/contracts/register", params=params)
        assert response.status_code == 200, response.text
        return {c.number for c in (active_direct, completed_central, iaas_contract) if f">{c.number}<" in response.text}

    assert await numbers(status="completed") == {completed_central.number}
    assert await numbers(route="central") == {completed_central.number}
    assert await numbers(category="iaas") == {iaas_contract.number}
    assert await numbers(agency=str(iaas.agency.id)) == {iaas_contract.number}
    assert await numbers(year="2025") == {active_direct.number}
    assert await numbers(year="2026", category="saas") == {completed_central.number}
    assert await numbers(status="", route="", category="", agency="", year="") == {
        active_direct.number,
        completed_central.number,
        iaas_contract.number,
    }


async def test_year_is_the_year_of_signature_in_seoul(client, sessions):
    world = await register_world(sessions)
    late = await add_contract(
        sessions, world, signed_at=datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
    )  # 1 January 2026 in Seoul
    assert f">{late.number}<" in (await client.get("/contracts/register", params={"year": "2026"})).text
    assert f">{late.number}<" not in (await client.get("/contracts/register", params={"year": "2025"})).text


async def test_unknown_filter_values_are_refused_naming_the_field(client, sessions):
    for params, field in (
        ({"status": "draft"}, "status"),
        ({"category": "toasters"}, "category"),
        ({"sort": "random"}, "sort"),
        ({"year": "soon"}, "year"),
    ):
        response = await client.get("/contracts/register", params=params)
        assert response.status_code == 422, params
        assert field in response.text


async def test_sorts_by_value_and_by_agency(client, sessions):
    a = await register_world(sessions, agency_name="Alpha Agency")
    b = await register_world(sessions, agency_name="Beta Agency")
    small = await add_contract(sessions, b, amount_net=100_000)
    large = await add_contract(sessions, a, amount_net=9_000_000)
    middle = await add_contract(sessions, a, amount_net=500_000)

    def order(text: str, *contracts) -> list[str]:
        return [c.number for c in sorted(contracts, key=lambda c: text.index(f">{c.number}<"))]

    text = (await client.get("/contracts/register", params={"sort": "value_desc"})).text
    assert order(text, small, large, middle) == [large.number, middle.number, small.number]
    text = (await client.get("/contracts/register", params={"sort": "value_asc"})).text
    assert order(text, small, large, middle) == [small.number, middle.number, large.number]
    text = (await client.get("/contracts/register", params={"sort": "agency"})).text
    assert order(text, small, large, middle)[-1] == small.number


async def test_pages_hold_twenty_and_a_page_beyond_the_end_is_404(client, sessions):
    world = await register_world(sessions)
    contracts = [await add_contract(sessions, world, signed_at=datetime(2026, 1, 1 + n, tzinfo=UTC)) for n in range(25)]

    first = await client.get("/contracts/register")
    second = await client.get("/contracts/register", params={"page": "2"})

    assert sum(f">{c.number}<" in first.text for c in contracts) == 20
    assert sum(f">{c.number}<" in second.text for c in contracts) == 5
    assert f">{contracts[-1].number}<" in first.text  # newest first
    assert "Page 1 of 2" in first.text and 'rel="next"' in first.text
    assert (await client.get("/contracts/register", params={"page": "3"})).status_code == 404
    assert (await client.get("/contracts/register", params={"page": "0"})).status_code == 404


async def test_paging_links_keep_the_filters(client, sessions):
    world = await register_world(sessions)
    for n in range(21):
        await add_contract(sessions, world, route="central", signed_at=datetime(2026, 1, 1 + n, tzinfo=UTC))
    response = await client.get("/contracts/register", params={"route": "central"})
    assert 'href="/contracts/register?route=central&amp;page=2"' in response.text


async def test_csv_downloads_the_filtered_set_with_formulas_neutralised(client, sessions):
    world = await register_world(sessions, provider_name='=HYPERLINK("x")', agency_name="Gwangju Office")
    other = await register_world(sessions, agency_name="Jeju Office")
    kept = [await add_contract(sessions, world) for _ in range(3)]
    dropped = await add_contract(sessions, other)

    response = await client.get("/contracts/register.csv", params={"agency": str(world.agency.id)})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["Number", "Status", "Agency"]
    assert sorted(row[0] for row in rows[1:]) == sorted(c.number for c in kept)
    assert dropped.number not in response.text
    assert all(row[3].startswith("'=") for row in rows[1:])
    assert rows[1][10] == "1100000"


async def test_register_page_links_to_the_csv_of_the_same_search(client, sessions):
    world = await register_world(sessions)
    await add_contract(sessions, world, status="completed")
    response = await client.get("/contracts/register", params={"status": "completed"})
    assert 'href="/contracts/register.csv?status=completed"' in response.text


async def test_entry_shows_the_public_facts_and_no_document_or_signature_details(client, sessions):
    world = await register_world(sessions, agency_name="Incheon Port Authority", provider_name="Baram Cloud")
    contract = await add_contract(
        sessions, world, status="terminated", ended_on=date(2026, 6, 30), end_reason="Service no longer needed."
    )
    await add_invoice(sessions, world, contract, paid_on=date(2026, 2, 1), amount_total=110_000)

    response = await client.get(f"/contracts/register/{contract.number}")

    assert response.status_code == 200
    text = response.text
    for expected in (
        "Incheon Port Authority",
        "Baram Cloud",
        "Cloud Drive",
        "Standard",
        "Terminated",
        "2026-06-30",
        "Service no longer needed.",
        "₩110,000",
        "₩1,100,000",
    ):
        assert expected in text, expected
    for secret in ("203.0.113.9", "secret-agent", "0" * 64, "Buyer Kim", "Seller Park"):
        assert secret not in text, secret


async def test_entry_lists_signed_amendments_and_shows_the_value_in_force(client, sessions):
    world = await register_world(sessions)
    contract = await add_contract(sessions, world, amount_net=1_000_000)
    await add_amendment(
        sessions,
        world,
        contract,
        amount_net=1_500_000,
        ends_on=date(2027, 6, 30),
        signed_at=datetime(2026, 5, 1, tzinfo=UTC),
        rationale="Six more months.",
    )
    response = await client.get(f"/contracts/register/{contract.number}")
    assert "Six more months." in response.text and "Duration extension" in response.text
    assert "₩1,650,000" in response.text and "2027-06-30" in response.text


async def test_entry_of_an_unsigned_or_unknown_contract_is_404(client, sessions):
    world = await register_world(sessions)
    draft = await add_contract(sessions, world, status="sent")
    assert (await client.get(f"/contracts/register/{draft.number}")).status_code == 404
    assert (await client.get("/contracts/register/CT-1999-00001")).status_code == 404


async def test_statistics_count_contracts_and_value_by_category_agency_and_month(client, sessions):
    saas = await register_world(sessions, agency_name="Ulsan Office", category="saas")
    iaas = await register_world(sessions, agency_name="Sejong Office", category="iaas")
    await add_contract(sessions, saas, amount_net=1_000_000, signed_at=datetime(2026, 1, 10, tzinfo=UTC))
    await add_contract(sessions, saas, amount_net=2_000_000, signed_at=datetime(2026, 1, 20, tzinfo=UTC))
    await add_contract(sessions, iaas, amount_net=5_000_000, signed_at=datetime(2026, 3, 5, tzinfo=UTC))
    await add_contract(sessions, iaas, status="sent", amount_net=9_000_000)

    response = await client.get("/contracts/register/statistics")

    assert response.status_code == 200
    text = response.text
    assert "3 signed contracts. Their value in force, with VAT: ₩8,800,000." in text
    assert (
        '<tr><th scope="row">Ulsan Office</th><td class="number">2</td><td class="number">₩3,300,000</td></tr>' in text
    )
    assert (
        '<tr><th scope="row">Sejong Office</th><td class="number">1</td><td class="number">₩5,500,000</td></tr>' in text
    )
    assert '<tr><th scope="row">2026-01</th><td class="number">2</td><td class="number">₩3,300,000</td></tr>' in text
    assert '<tr><th scope="row">2026-03</th><td class="number">1</td><td class="number">₩5,500,000</td></tr>' in text
    assert text.count('<svg role="img"') == 3  # a chart per breakdown, with its table


async def test_statistics_for_a_year_and_their_empty_state(client, sessions):
    world = await register_world(sessions)
    await add_contract(sessions, world, signed_at=datetime(2026, 4, 1, tzinfo=UTC))
    assert "1 signed contract." in (await client.get("/contracts/register/statistics", params={"year": "2026"})).text
    assert (
        "No contract was signed in 2024."
        in (await client.get("/contracts/register/statistics", params={"year": "2024"})).text
    )


async def test_contract_signed_through_the_service_appears_in_the_register(client, sessions, settings):
    from tests.contracts.factories import active_contract, contract_parties

    parties = await contract_parties(sessions)
    contract_id = await active_contract(sessions, settings, parties)
    from contracts.models import Contract

    async with sessions() as session:
        number = (await session.get(Contract, contract_id)).number  # type: ignore[union-attr]

    listing = await client.get("/contracts/register")
    entry = await client.get(f"/contracts/register/{number}")

    assert f">{number}<" in listing.text
    assert entry.status_code == 200 and parties.agency.name in entry.text and "Active" in entry.text


async def test_register_api_answers_the_same_search_as_json(client, sessions):
    world = await register_world(sessions, agency_name="Suwon Office")
    kept = await add_contract(sessions, world, route="central")
    await add_contract(sessions, world, route="direct")
    await add_contract(sessions, world, status="draft", route="central")

    response = await client.get("/api/contracts/register", params={"route": "central"})

    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 1 and body["pages"] == 1
    [row] = body["contracts"]
    assert row["number"] == kept.number and row["agency"]["name"] == "Suwon Office" and row["amount_total"] == 1_100_000
    assert (await client.get("/api/contracts/register", params={"page": "2"})).status_code == 404
    assert (await client.get("/api/contracts/register", params={"status": "draft"})).status_code == 422


def test_the_register_filters_by_exactly_the_public_states() -> None:
    from typing import get_args

    from contracts.register import RegisterQuery
    from contracts.workflow import PUBLIC

    assert set(get_args(RegisterQuery.model_fields["status"].annotation)) - {""} == PUBLIC
