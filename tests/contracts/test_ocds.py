"""The OCDS 1.1 export: releases written as contracts change, a feed a harvester can poll without missing or
repeating a change, and records; everything validated against the official 1.1.5 schemas, offline."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

import committee
from contracts import ocds
from contracts.models import Contract, Release
from market import clock, hooks
from market.settings import configured
from tests.contracts.register_rows import add_amendment, add_contract, add_invoice, register_world
from tests.helpers import YEAR, count

SCHEMAS = Path(__file__).parent / "ocds_schema"
CANONICAL = "https://standard.open-contracting.org/schema/1__1__5/"


# The schemas' date-time and uri formats, checked here without the optional packages jsonschema would use.
FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme in ("http", "https") and parts.netloc)


def _validator(name: str) -> Draft4Validator:
    """The package schema, with the release schema it names by address served from the copy in the repository."""
    resources = []
    for file in (
        "release-schema.json",
        "versioned-release-validation-schema.json",
        "release-package-schema.json",
        "record-package-schema.json",
    ):
        resources.append(
            (
                CANONICAL + file,
                Resource.from_contents(json.loads((SCHEMAS / file).read_text()), default_specification=DRAFT4),
            )
        )
    registry: Registry = Registry().with_resources(resources)
    return Draft4Validator(json.loads((SCHEMAS / name).read_text()), registry=registry, format_checker=FORMATS)


RELEASE_PACKAGE = _validator("release-package-schema.json")
RECORD_PACKAGE = _validator("record-package-schema.json")


def assert_valid(validator: Draft4Validator, document: dict[str, Any]) -> None:
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


async def announce(sessions, event: str, **data: Any) -> None:
    """The event as the contracts' services announce it, in a transaction of its own."""
    async with sessions() as session, session.begin():
        await hooks.emit(event, session, **data)


async def releases_of(sessions, contract_id: int) -> list[Release]:
    async with sessions() as session:
        return list(
            (
                await session.scalars(sa.select(Release).where(Release.contract_id == contract_id).order_by(Release.id))
            ).all()
        )


async def signed(sessions, world, **fields: Any) -> Contract:
    contract = await add_contract(sessions, world, **fields)
    await announce(sessions, "contract.signed", contract_id=contract.id, version_id=contract.signed_version_id)
    return contract


async def test_signing_writes_a_contract_release_that_validates(client, sessions):
    world = await register_world(sessions, agency_name="Seoul Office", provider_name="Hanbit Cloud")
    contract = await signed(
        sessions, world, amount_net=1_200_000, starts_on=date(YEAR, 1, 1), ends_on=date(YEAR, 12, 31)
    )

    package = (await client.get("/api/ocds/releases")).json()

    assert_valid(RELEASE_PACKAGE, package)
    assert package["version"] == "1.1" and package["publisher"]["name"]
    [release] = package["releases"]
    assert release["ocid"] == f"{configured().ocid_prefix}-{contract.number}" == f"ocds-kr0000-{contract.number}"
    assert release["tag"] == ["award", "contract"]
    assert release["initiationType"] == "tender"
    roles = {party["name"]: party["roles"] for party in release["parties"]}
    assert roles == {"Seoul Office": ["buyer", "procuringEntity"], "Hanbit Cloud": ["supplier"]}
    assert release["buyer"]["name"] == "Seoul Office"
    assert release["tender"]["procurementMethod"] == "direct"
    assert release["tender"]["procuringEntity"]["name"] == "Seoul Office"
    [award] = release["awards"]
    [ocds_contract] = release["contracts"]
    assert (
        award["value"] == {"amount": 1_320_000, "currency": "KRW"} and award["suppliers"][0]["name"] == "Hanbit Cloud"
    )
    assert ocds_contract["value"] == {"amount": 1_320_000, "currency": "KRW"}
    assert ocds_contract["awardID"] == award["id"] and ocds_contract["status"] == "active"
    assert ocds_contract["period"] == {
        "startDate": f"{YEAR}-01-01T00:00:00+09:00",
        "endDate": f"{YEAR}-12-31T23:59:59+09:00",
    }
    assert (
        ocds_contract["items"][0]["quantity"] == 120
        and ocds_contract["items"][0]["unit"]["name"] == "per user per month"
        and ocds_contract["items"][0]["unit"]["value"] == {"amount": 10_000, "currency": "KRW"}
    )
    assert ocds_contract["items"][0]["classification"] == {
        "scheme": "x_marketplaceCategory",
        "id": "saas",
        "description": "Cloud: SaaS",
    }  # English, always


async def test_central_route_names_the_central_procurement_agency_as_procuring_entity(client, sessions):
    world = await register_world(sessions, agency_name="Gangwon Office")
    await signed(sessions, world, route="central")

    release = (await client.get("/api/ocds/releases")).json()["releases"][0]

    roles = {party["name"]: party["roles"] for party in release["parties"]}
    assert roles["Gangwon Office"] == ["buyer"]
    assert roles[ocds.CENTRAL_PROCUREMENT_AGENCY["name"]] == ["procuringEntity"]
    assert release["tender"]["procuringEntity"]["name"] == ocds.CENTRAL_PROCUREMENT_AGENCY["name"]
    assert release["tender"]["procurementMethod"] == "direct"
    assert "central procurement agency" in release["tender"]["procurementMethodDetails"]


async def test_amendment_release_keeps_the_award_and_updates_the_contract(client, sessions):
    world = await register_world(sessions)
    contract = await signed(sessions, world, amount_net=1_000_000)
    version = await add_amendment(
        sessions,
        world,
        contract,
        amount_net=1_500_000,
        ends_on=date(2027, 6, 30),
        signed_at=datetime(2026, 5, 1, tzinfo=UTC),
        rationale="Six more months.",
    )
    await announce(sessions, "contract.amended", contract_id=contract.id, version_id=version.id)

    package = (await client.get("/api/ocds/releases")).json()

    assert_valid(RELEASE_PACKAGE, package)
    latest = package["releases"][-1]
    assert latest["tag"] == ["contractAmendment"]
    assert latest["awards"][0]["value"]["amount"] == 1_100_000
    assert latest["contracts"][0]["value"]["amount"] == 1_650_000
    assert latest["contracts"][0]["period"]["endDate"].startswith("2027-06-30")
    [amendment] = latest["contracts"][0]["amendments"]
    assert "Six more months." in amendment["rationale"] and amendment["releaseID"] == latest["id"]


async def test_payment_adds_a_transaction_with_payer_and_payee(client, sessions):
    world = await register_world(sessions, agency_name="Jeonju Office", provider_name="Saebyeok Cloud")
    contract = await signed(sessions, world)
    invoice, payment = await add_invoice(sessions, world, contract, amount_total=110_000, paid_on=date(2026, 2, 3))
    await announce(sessions, "invoice.paid", invoice_id=invoice.id, payment_id=payment.id)  # type: ignore[union-attr]

    latest = (await client.get("/api/ocds/releases")).json()["releases"][-1]

    assert latest["tag"] == ["implementation"]
    [transaction] = latest["contracts"][0]["implementation"]["transactions"]
    assert transaction["value"] == {"amount": 110_000, "currency": "KRW"}
    assert transaction["payer"]["name"] == "Jeonju Office" and transaction["payee"]["name"] == "Saebyeok Cloud"
    assert transaction["date"].startswith("2026-02-03") and transaction["id"].startswith(invoice.number)
    roles = {party["name"]: party["roles"] for party in latest["parties"]}
    assert "payer" in roles["Jeonju Office"] and "payee" in roles["Saebyeok Cloud"]


async def test_termination_and_completion_are_contract_termination_releases(client, sessions):
    world = await register_world(sessions)
    ended = await signed(sessions, world)
    completed = await signed(sessions, world)
    async with sessions() as session, session.begin():
        row = await session.get(Contract, ended.id)
        row.status, row.ended_on, row.end_reason, row.amount_paid_at_end = (
            "terminated",
            date(2026, 6, 30),
            "Agency reorganised.",
            330_000,
        )  # type: ignore[union-attr]
        other = await session.get(Contract, completed.id)
        other.status, other.ended_on = "completed", date(YEAR, 12, 31)  # type: ignore[union-attr]
    await announce(sessions, "contract.terminated", contract_id=ended.id)
    await announce(sessions, "contract.completed", contract_id=completed.id)

    package = (await client.get("/api/ocds/releases")).json()

    assert_valid(RELEASE_PACKAGE, package)
    by_id = {
        release["contracts"][0]["id"]: release
        for release in package["releases"]
        if release["tag"] == ["contractTermination"]
    }
    assert by_id[ended.number]["contracts"][0]["status"] == "terminated"
    assert "Agency reorganised." in by_id[ended.number]["contracts"][0]["description"]
    assert by_id[completed.number]["contracts"][0]["status"] == "terminated"
    assert by_id[completed.number]["contracts"][0]["description"].startswith("Completed on 2026-12-31")


async def test_a_repeated_event_writes_no_second_release(sessions):
    world = await register_world(sessions)
    contract = await signed(sessions, world)
    await announce(sessions, "contract.signed", contract_id=contract.id, version_id=contract.signed_version_id)
    await announce(sessions, "contract.started", contract_id=contract.id)
    await announce(sessions, "contract.started", contract_id=contract.id)
    assert [r.tags for r in await releases_of(sessions, contract.id)] == [["award", "contract"], ["implementation"]]


async def test_an_unsigned_contract_gets_no_release(sessions):
    world = await register_world(sessions)
    contract = await add_contract(sessions, world, status="sent")
    await announce(sessions, "contract.started", contract_id=contract.id)
    assert await count(sessions, Release) == 0


async def test_framework_relation_names_the_services_certificate(client, sessions, monkeypatch):
    async def certificate_of_service(session, service_id):
        return SimpleNamespace(number="DS-2026-00042", service_name="Cloud Drive")

    monkeypatch.setattr(committee, "certificate_of_service", certificate_of_service)
    world = await register_world(sessions)
    await signed(sessions, world)

    release = (await client.get("/api/ocds/releases")).json()["releases"][0]

    [related] = release["relatedProcesses"]
    assert related["relationship"] == ["framework"] and related["identifier"] == "DS-2026-00042"
    assert related["uri"] == "http://testserver.local/certificates/DS-2026-00042"


async def test_a_renewal_is_related_to_the_contract_it_renews(client, sessions):
    world = await register_world(sessions)
    first = await signed(sessions, world)
    renewal = await signed(sessions, world, renewal_of_id=first.id)

    releases = (await client.get("/api/ocds/releases")).json()["releases"]

    [prior] = [p for p in releases[-1]["relatedProcesses"] if p["relationship"] == ["prior"]]
    assert releases[-1]["contracts"][0]["id"] == renewal.number and prior["identifier"] == ocds.ocid(first.number)


async def test_feed_pages_with_a_cursor_that_never_misses_or_repeats(client, sessions):
    world = await register_world(sessions)
    contracts = [await signed(sessions, world) for _ in range(5)]

    seen: list[str] = []
    url = "/api/ocds/releases?limit=2"
    for _ in range(3):
        package = (await client.get(url)).json()
        assert_valid(RELEASE_PACKAGE, package)
        seen += [release["id"] for release in package["releases"]]
        url = package["links"]["next"]
    assert len(seen) == 5 == len(set(seen))

    polled = (await client.get(url)).json()  # nothing new yet: the same cursor comes back
    assert polled["releases"] == [] and polled["links"]["next"] == url

    await announce(sessions, "contract.started", contract_id=contracts[0].id)
    later = (await client.get(url)).json()
    assert [release["tag"] for release in later["releases"]] == [["implementation"]]


async def test_feed_filters_by_release_date(client, sessions):
    world = await register_world(sessions)
    old, new = await signed(sessions, world), await signed(sessions, world)
    async with sessions() as session, session.begin():
        await session.execute(
            sa.update(Release)
            .where(Release.contract_id == old.id)
            .values(released_at=datetime(2026, 1, 10, 5, tzinfo=UTC))
        )
        await session.execute(
            sa.update(Release)
            .where(Release.contract_id == new.id)
            .values(released_at=datetime(2026, 3, 10, 5, tzinfo=UTC))
        )

    def numbers(package: dict[str, Any]) -> list[str]:
        return [release["contracts"][0]["id"] for release in package["releases"]]

    assert numbers((await client.get("/api/ocds/releases", params={"since": "2026-02-01"})).json()) == [new.number]
    assert numbers((await client.get("/api/ocds/releases", params={"until": "2026-01-10"})).json()) == [old.number]
    assert numbers(
        (await client.get("/api/ocds/releases", params={"since": "2026-01-10T00:00:00Z", "until": "2026-03-31"})).json()
    ) == [old.number, new.number]
    next_link = (await client.get("/api/ocds/releases", params={"since": "2026-02-01"})).json()["links"]["next"]
    assert "since=2026-02-01" in next_link


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "last week"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"limit": "0"}, "limit"),
        ({"after": "x"}, "after"),
    ],
)
async def test_feed_refuses_bad_parameters_naming_them(client, params, field):
    response = await client.get("/api/ocds/releases", params=params)
    assert response.status_code == 422
    assert field in json.dumps(response.json())


async def test_record_has_every_release_and_a_compiled_release(client, sessions):
    world = await register_world(sessions)
    contract = await signed(sessions, world)
    invoice, payment = await add_invoice(sessions, world, contract, paid_on=date(2026, 2, 3))
    await announce(sessions, "invoice.paid", invoice_id=invoice.id, payment_id=payment.id)  # type: ignore[union-attr]
    ocid = ocds.ocid(contract.number)

    package = (await client.get(f"/api/ocds/records/{ocid}")).json()

    assert_valid(RECORD_PACKAGE, package)
    [record] = package["records"]
    assert record["ocid"] == ocid
    assert [release["tag"] for release in record["releases"]] == [["award", "contract"], ["implementation"]]
    assert record["compiledRelease"]["tag"] == ["compiled"]
    assert record["compiledRelease"]["contracts"][0]["implementation"]["transactions"][0]["value"]["amount"] == 110_000


async def test_record_of_an_unknown_process_is_404(client):
    response = await client.get("/api/ocds/records/ocds-kmkt01-CT-1999-00001")
    assert response.status_code == 404


async def test_contract_signed_through_the_service_is_published(client, sessions, settings):
    from tests.contracts.factories import contract_parties, signed_contract

    parties = await contract_parties(sessions)
    contract_id = await signed_contract(
        sessions,
        settings,
        parties,
        starts_on=clock.today() + timedelta(days=30),
        ends_on=clock.today() + timedelta(days=395),
    )

    package = (await client.get("/api/ocds/releases")).json()

    assert_valid(RELEASE_PACKAGE, package)
    [release] = package["releases"]
    assert release["tag"] == ["award", "contract"]
    assert release["buyer"]["name"] == parties.agency.name
    assert [r.contract_id for r in await releases_of(sessions, contract_id)] == [contract_id]


async def test_a_release_written_later_cannot_take_a_place_before_one_still_uncommitted(sessions):
    """While one transaction holds a new release uncommitted, another waits to write its own: the feed's ids follow
    commit order, so a harvester's cursor never passes a release that is committed afterwards."""
    world = await register_world(sessions)
    first, second = await add_contract(sessions, world), await add_contract(sessions, world)

    async def write(
        contract: Contract, release: asyncio.Future[int] | None = None, hold: asyncio.Event | None = None
    ) -> int:
        async with sessions() as session, session.begin():
            written = await ocds.write_release(session, contract.id, "contract.signed", "contract")  # type: ignore[arg-type]
            assert written is not None
            if release is not None and hold is not None:
                release.set_result(written.id)  # type: ignore[arg-type]
                await hold.wait()
            return written.id  # type: ignore[return-value]

    written_first: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    hold = asyncio.Event()
    holder = asyncio.create_task(write(first, written_first, hold))
    await written_first
    waiter = asyncio.create_task(write(second))
    await asyncio.sleep(0.3)
    assert not waiter.done()
    hold.set()
    first_id, second_id = await holder, await waiter
    assert first_id < second_id


async def test_a_contract_lived_through_the_services_publishes_its_whole_lifecycle(client, sessions, settings):
    from contracts import documents, lifecycle
    from contracts.schemas import AmendInput, TerminateInput
    from tests.contracts.factories import active_contract, contract_parties, sign_as

    parties = await contract_parties(sessions)
    contract_id = await active_contract(sessions, settings, parties)
    async with sessions() as session, session.begin():
        await lifecycle.amend(
            session,
            parties.buyer,
            documents.store_for(settings),
            contract_id,
            AmendInput(amendment_reason="volume_change", rationale="Twenty more users.", quantity=30),
        )
    await sign_as(sessions, settings, parties.seller, contract_id)
    await sign_as(sessions, settings, parties.buyer, contract_id)
    async with sessions() as session, session.begin():
        await lifecycle.terminate(
            session,
            parties.seller,
            contract_id,
            TerminateInput(reason="Service retired.", effective_on=date(YEAR, 12, 31)),
            today=date(YEAR, 12, 1),
        )
        number = (await session.get(Contract, contract_id)).number  # type: ignore[union-attr]

    package = (await client.get(f"/api/ocds/records/{ocds.ocid(number)}")).json()

    assert_valid(RECORD_PACKAGE, package)
    [record] = package["records"]
    assert [release["tag"] for release in record["releases"]] == [
        ["award", "contract"],
        ["implementation"],
        ["contractAmendment"],
        ["contractTermination"],
    ]
    compiled = record["compiledRelease"]["contracts"][0]
    assert compiled["status"] == "terminated" and "Service retired." in compiled["description"]
    assert compiled["items"][0]["quantity"] == 30 and "Twenty more users." in compiled["amendments"][0]["rationale"]
    assert compiled["value"]["amount"] > record["compiledRelease"]["awards"][0]["value"]["amount"]


async def test_a_payment_recorded_through_the_service_is_published_as_a_transaction(client, sessions, settings):
    from contracts import invoices
    from contracts.models import Invoice
    from tests.contracts.factories import active_contract, contract_parties

    parties = await contract_parties(sessions)
    contract_id = await active_contract(sessions, settings, parties)
    async with sessions() as session, session.begin():
        await invoices.issue_due_invoices(session, settings, date(2026, 1, 1))
    async with sessions() as session:
        invoice = await session.scalar(
            sa.select(Invoice).where(Invoice.contract_id == contract_id).order_by(Invoice.period).limit(1)
        )
    assert invoice is not None
    async with sessions() as session, session.begin():
        await invoices.record_payment(
            session,
            parties.seller,
            invoice.id,
            invoices.PaymentInput(amount=invoice.amount_total, paid_on=date(2026, 1, 20), reference="T-1"),  # type: ignore[arg-type]
            today=date(2026, 1, 21),
        )

    latest = (await client.get("/api/ocds/releases")).json()["releases"][-1]

    assert latest["tag"] == ["implementation"]
    [transaction] = latest["contracts"][0]["implementation"]["transactions"]
    assert transaction["value"]["amount"] == invoice.amount_total and transaction["id"].startswith(invoice.number)


async def test_backfill_publishes_contracts_signed_before_publication_began(sessions):
    world = await register_world(sessions)
    published = await signed(sessions, world)
    silent = await add_contract(sessions, world, status="completed", ended_on=date(YEAR, 12, 31))
    await add_contract(sessions, world, status="sent")
    async with sessions() as session, session.begin():
        assert await ocds.backfill(session) == 1
    assert len(await releases_of(sessions, published.id)) == 1
    [release] = await releases_of(sessions, silent.id)
    assert release.data["contracts"][0]["status"] == "terminated" and release.tags == [
        "award",
        "contract",
        "contractTermination",
    ]
    async with sessions() as session, session.begin():
        assert await ocds.backfill(session) == 0
