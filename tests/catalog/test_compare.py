"""Comparing 2 to 4 listed services: the side-by-side table, the cost calculator and the CSV export."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog.models import Service
from market.models import Organisation
from tests.catalog.listed import CSAP_HIGH, ISO27001, list_service, plan
from tests.helpers import make_organisation

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def provider(sessions: Sessions) -> Organisation:
    return await make_organisation(
        sessions, "provider", "Hanbit Cloud Co., Ltd.", is_sme=True, contact_email="sales@hanbit.example.kr"
    )


@pytest.fixture
async def three(sessions: Sessions, provider: Organisation) -> list[Service]:
    return [
        await list_service(
            sessions,
            provider,
            "Mail One",
            summary="E-mail",
            category="saas",
            support_hours="24x7",
            certifications=[CSAP_HIGH],
            plans=[plan("Basic", "user_month", 10_000)],
        ),
        await list_service(
            sessions,
            provider,
            "Mail Two",
            summary="E-mail",
            category="saas",
            support_hours="24x7",
            certifications=[ISO27001],
            plans=[plan("Inclusive", "user_month", 11_000, vat_included=True)],
        ),
        await list_service(
            sessions,
            provider,
            "Compute",
            summary="Virtual machines",
            category="iaas",
            support_hours="24x7",
            plans=[
                plan("vCPU", "vcpu_hour", 100),
                plan("Setup", "project", 1_200_000),
                plan("Yearly", "year", 120_000, minimum_term_months=24),
            ],
        ),
    ]


def ids(services: list[Service]) -> list[tuple[str, str]]:
    return [("ids", str(service.id)) for service in services]


def row(body: dict[str, Any], key: str) -> dict[str, Any]:
    return next(item for item in body["rows"] if item["key"] == key)


def costs(body: dict[str, Any], service: Service) -> dict[str, dict[str, Any]]:
    column = next(item for item in body["services"] if item["id"] == service.id)
    return {cost["plan"]: cost for cost in column["costs"]}


async def test_every_attribute_is_side_by_side_and_differing_rows_are_marked(
    client: Client, three: list[Service]
) -> None:
    body = (await client.get("/api/compare", params=ids(three))).json()
    assert [service["name"] for service in body["services"]] == ["Mail One", "Mail Two", "Compute"]
    assert row(body, "category")["differs"] is True
    assert row(body, "support_hours") == {
        "key": "support_hours",
        "label": "Support hours",
        "values": ["24x7"] * 3,
        "differs": False,
    }
    assert row(body, "certifications")["values"][0].startswith("CSAP")
    assert {
        "provider",
        "summary",
        "description",
        "features",
        "benefits",
        "data_location",
        "sla_availability",
        "support_channels",
        "response_time",
        "service_credits",
        "onboarding_terms",
        "data_export_format",
        "data_return_terms",
        "data_deletion_terms",
        "plans",
        "lowest_price",
        "deployment_model",
    } <= {item["key"] for item in body["rows"]}

    page = await client.get("/compare", params=ids(three))
    assert page.status_code == 200
    category_row = re.search(r'<tr class="(\w+)"[^>]*>\s*<th scope="row">Category(.*?)</tr>', page.text, re.S)
    assert category_row and category_row.group(1) == "differs"
    assert "(differs)" in category_row.group(2)  # said in words, not only by colour
    hours_row = re.search(r'<tr class="(\w+)"[^>]*>\s*<th scope="row">Support hours(.*?)</tr>', page.text, re.S)
    assert hours_row and hours_row.group(1) == "same" and "(differs)" not in hours_row.group(2)


async def test_two_to_four_services_are_compared_and_others_refused(
    client: Client, sessions: Sessions, provider: Organisation, three: list[Service]
) -> None:
    one = await client.get("/api/compare", params=ids(three[:1]))
    assert one.status_code == 422
    assert "ids" in one.json()["errors"]
    five = three + [await list_service(sessions, provider, f"Extra {n}") for n in range(2)]
    assert (await client.get("/api/compare", params=ids(five))).status_code == 422
    assert (await client.get("/api/compare", params=ids(five[:4]))).status_code == 200
    page = await client.get("/compare", params=ids(three[:1]))
    assert page.status_code == 422
    assert "Choose from 2 to 4 services to compare." in page.text


async def test_a_service_that_is_not_listed_cannot_be_compared(client: Client, three: list[Service]) -> None:
    response = await client.get("/api/compare", params=[*ids(three[:1]), ("ids", "999999")])
    assert response.status_code == 404
    assert "999999" in response.json()["detail"]


async def test_the_calculator_gives_monthly_and_total_cost_with_vat_apart(client: Client, three: list[Service]) -> None:
    body = (await client.get("/api/compare", params=[*ids(three), ("quantity", "5"), ("months", "12")])).json()
    basic = costs(body, three[0])["Basic"]
    assert basic["monthly"] == {"net": 50_000, "vat": 5_000, "gross": 55_000}
    assert basic["total"] == {"net": 600_000, "vat": 60_000, "gross": 660_000}
    inclusive = costs(body, three[1])["Inclusive"]  # 11,000 with VAT: 10,000 + 1,000
    assert inclusive["monthly"] == {"net": 50_000, "vat": 5_000, "gross": 55_000}
    compute = costs(body, three[2])
    assert compute["vCPU"]["monthly"]["net"] == 100 * 5 * 730
    assert compute["Setup"]["total"]["net"] == 6_000_000 and compute["Setup"]["monthly"]["net"] == 500_000
    assert compute["Yearly"]["billed_months"] == 24  # the minimum term
    assert compute["Yearly"]["total"]["net"] == 120_000 * 5 * 2

    page = await client.get("/compare", params=[*ids(three), ("quantity", "5"), ("months", "12")])
    assert "₩660,000" in page.text and "₩60,000" in page.text


async def test_a_quantity_or_term_that_is_not_a_whole_number_is_refused(client: Client, three: list[Service]) -> None:
    response = await client.get("/api/compare", params=[*ids(three), ("quantity", "0"), ("months", "1.5")])
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"quantity", "months"}


async def test_the_comparison_downloads_as_csv(client: Client, three: list[Service]) -> None:
    response = await client.get("/compare/export", params=[*ids(three), ("quantity", "2"), ("months", "3")])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["Attribute", "Mail One", "Mail Two", "Compute", "Differs"]
    category = next(item for item in rows if item and item[0] == "Category")
    assert category[-1] == "Yes"
    basic = next(item for item in rows if len(item) > 2 and item[1] == "Basic")
    assert basic[0] == "Mail One" and basic[8] == "60000" and basic[10] == "66000"  # 10,000 x 2 x 3 months, then VAT


async def test_the_comparison_leads_back_to_the_search_it_was_ticked_in(client: Client, three: list[Service]) -> None:
    search = await client.get("/services", params={"q": "Mail", "category": "saas"})
    assert search.status_code == 200
    back = re.search(r'<input type="hidden" name="back" value="([^"]*)">', search.text)
    assert back and "q=Mail" in back.group(1) and "category=saas" in back.group(1)

    query = back.group(1).replace("&amp;", "&")
    page = await client.get("/compare", params=[*ids(three[:2]), ("back", query)])
    assert f'<a href="/services?{back.group(1)}">Back to the search</a>' in page.text
    assert f'<input type="hidden" name="back" value="{back.group(1)}">' in page.text  # kept by the calculator
    refused = await client.get("/compare", params=[*ids(three[:1]), ("back", query)])
    assert f'<a href="/services?{back.group(1)}">Back to the search</a>' in refused.text
    plain = await client.get("/compare", params=ids(three[:2]))
    assert '<a href="/services">Back to the search</a>' in plain.text
