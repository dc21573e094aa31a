"""The catalogue in a real browser: a provider lists a service with a plan and its service definition and
submits it; an agency searches, narrows by category, compares three demo services with the cost calculator,
keeps the search in a procurement project, ends it, downloads its results as CSV and XLSX, and records the
award. Every page reached is checked with axe."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from openpyxl import load_workbook
from playwright.async_api import Download, Page, expect

from tests.e2e.steps import assert_accessible, flash, sign_in_as

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PDF = b"%PDF-1.7\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"

LISTING = {
    "name": "Hanbit Secure Archive",
    "summary": "Long-term archive for public records, hosted in Korea",
    "description": "Write-once storage with retention rules and audit trails.",
    "features": "Retention rules\nLegal hold",
    "benefits": "No tender needed\nData stays in Korea",
    "data_country": "KR",
    "data_region": "Seoul",
    "sla_availability": "99.9",
    "support_hours": "24x7",
    "response_time_minutes": "60",
    "service_credits": "10% of the monthly fee per hour of downtime",
    "onboarding_terms": "Ready within 5 working days",
    "data_export_format": "CSV, JSON",
    "data_return_terms": "Returned within 30 days",
    "data_deletion_terms": "Deleted within 30 days, with a certificate",
    "plans.0.name": "Standard",
    "plans.0.unit_price": "12000",
    "plans.0.minimum_term_months": "12",
    "plans.0.free_trial_days": "30",
}


def field(page: Page, name: str):
    return page.locator(f'[id="field-{name}"]')


async def test_a_provider_lists_and_submits_a_service(page: Page) -> None:
    await sign_in_as(page, "provider@hanbit-cloud.example.kr")
    await page.goto("/services/new")
    await assert_accessible(page)
    for name, value in LISTING.items():
        await field(page, name).fill(value)
    await field(page, "category").select_option("saas")
    await field(page, "deployment_model").select_option("public")
    await field(page, "support_channels.email").check()
    await field(page, "plans.0.unit").select_option("user_month")
    await page.get_by_role("button", name="Save draft").click()
    await expect(page).to_have_url(re.compile(r"/services/\d+/edit$"))
    await flash(page)
    await assert_accessible(page)
    service_path = page.url.removesuffix("/edit")

    await page.goto(f"{service_path}/documents")
    await field(page, "kind").select_option("service_definition")
    await field(page, "file").set_input_files(
        files=[{"name": "definition.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    await page.get_by_role("button", name="Upload").click()
    await expect(page.locator(".flash").first).to_contain_text("definition.pdf")
    await assert_accessible(page)

    await page.goto(f"{service_path}/submit")
    await expect(page.locator(".error-summary")).to_have_count(0)
    await assert_accessible(page)
    await page.get_by_role("button", name="Submit version 1").click()
    await expect(page).to_have_url(re.compile(re.escape(service_path) + "$"))
    await expect(page.locator(".flash").first).to_contain_text("Submitted to the committee")
    await assert_accessible(page)


async def test_an_agency_searches_compares_keeps_ends_exports_and_awards(page: Page) -> None:
    await sign_in_as(page, "buyer@seoul.example.go.kr")
    await page.goto("/services")
    await page.locator("#field-q").fill("Nuri")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page.locator("#results-title")).to_be_visible()
    await assert_accessible(page)

    await page.locator("#field-category").get_by_label(re.compile(r"^Cloud: SaaS")).check()
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page).to_have_url(re.compile(r"category=saas"))
    results = page.locator("ol.results > li")
    found = await results.count()
    assert found >= 3
    for hit in await results.all():
        await expect(hit.locator(".facts")).to_contain_text("Cloud: SaaS")
    await assert_accessible(page)
    search_url = page.url

    # Compare three: the rows that differ are marked, the ones all share are not; the calculator totals each plan.
    chosen = [(await results.nth(index).locator("h3").inner_text()).strip() for index in range(3)]
    for index in range(3):
        await results.nth(index).get_by_role("checkbox").check()
    await page.get_by_role("button", name="Compare ticked services").last.click()  # the one after the results
    await expect(page.get_by_role("heading", level=1)).to_have_text("Compare services")
    comparison = page.locator("table.comparison")
    for column, name in enumerate(chosen, start=1):  # column 0 names the attributes
        await expect(comparison.locator("thead th").nth(column)).to_contain_text(name)
    summary = comparison.locator("tbody tr").filter(has=page.get_by_role("rowheader", name=re.compile(r"^Summary")))
    await expect(summary).to_have_class("differs")
    await expect(summary.locator(".differs-mark")).to_have_text("(differs)")
    category = comparison.locator("tbody tr").filter(has=page.get_by_role("rowheader", name=re.compile(r"^Category")))
    await expect(category).to_have_class("same")
    await expect(category.locator(".differs-mark")).to_have_count(0)
    await assert_accessible(page)

    await page.get_by_label("Quantity").fill("25")
    await page.get_by_label("Term in months").fill("12")
    await page.get_by_role("button", name="Calculate").click()
    costs = page.locator("table.costs")
    await expect(costs.locator("caption")).to_have_text("Cost of each plan for a quantity of 25 over 12 months")
    for name in chosen:
        plans = costs.locator("tbody tr").filter(has=page.get_by_role("rowheader", name=name, exact=True))
        rows = [await plan.locator("td").all_inner_texts() for plan in await plans.all()]
        priced = [cells for cells in rows if len(cells) == 9]  # a plan without a price spans the amounts with "—"
        assert priced, f"no plan of {name} has a total in the cost calculator"
        net, vat, gross = (int(text.strip().removeprefix("₩").replace(",", "")) for text in priced[0][5:8])
        assert net > 0 and net + vat == gross, f"{name}: {priced[0]}"
    await assert_accessible(page)

    # Keep the search in a new project, then end it: a confirmation first, then the results are frozen.
    await page.goto(search_url)
    await page.locator("#field-project").select_option("new")
    await page.locator("#field-name").fill("Electronic approval 2026")
    await page.get_by_role("button", name="Save the search").click()
    await expect(page).to_have_url(re.compile(r"/projects/\d+$"))
    await flash(page)
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Electronic approval 2026")
    await assert_accessible(page)
    project_path = urlsplit(page.url).path

    await page.get_by_role("link", name="End the search…").click()
    await expect(page).to_have_url(re.compile(re.escape(project_path) + "/end$"))
    await expect(page.locator("main")).to_contain_text(f"The search finds {found} services.")
    await assert_accessible(page)
    await page.get_by_role("button", name="End the search and keep its results").click()
    await expect(page).to_have_url(re.compile(re.escape(project_path) + "$"))
    await expect(page.locator(".flash").first).to_contain_text("The search has ended")
    await expect(page.get_by_role("link", name="End the search…")).to_have_count(0)
    snapshot = (
        page.locator("table").filter(has=page.get_by_role("columnheader", name="Lowest price")).locator("tbody tr")
    )
    await expect(snapshot).to_have_count(found)
    await assert_accessible(page)

    # The export, in both formats: named after the day it ended and the project; header rows, then one row a service.
    csv_download = await download(page, "CSV")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-electronic-approval-2026-results\.csv", csv_download.suggested_filename)
    table = list(csv.reader(io.StringIO((await read(csv_download)).decode("utf-8-sig"))))
    assert table[0] == ["Project", "Electronic approval 2026"]
    assert table[1][0] == "Search ended" and table[1][1].startswith(csv_download.suggested_filename[:10])
    assert table[2][0] == "Search" and "Nuri" in table[2][1]
    assert table[3] == ["Services found", str(found)]
    columns = ["No.", "Provider", "Service", "Summary", "Lowest price (KRW)", "Unit", "Page address", "Contact"]
    assert table[5] == columns
    services = table[6:]
    assert len(services) == found
    assert all(len(row) == len(columns) for row in services)
    assert set(chosen) <= {row[2] for row in services}
    assert all(re.fullmatch(r".+/services/\d+", row[6]) for row in services)

    xlsx_download = await download(page, "Excel (XLSX)")
    assert xlsx_download.suggested_filename == csv_download.suggested_filename.removesuffix("csv") + "xlsx"
    sheet = load_workbook(io.BytesIO(await read(xlsx_download)), read_only=True).active
    assert [row[2] for row in list(sheet.iter_rows(values_only=True))[6:]] == [row[2] for row in services]

    # The outcome: the confirmation is required; once recorded it is final and leads to the contract.
    await page.get_by_role("link", name="Record the outcome…").click()
    await assert_accessible(page)
    awarded = chosen[0]
    await page.get_by_label("Awarded", exact=True).check()
    awarded_id = await page.locator("#field-service_id option").filter(has_text=awarded).get_attribute("value")
    await page.locator("#field-service_id").select_option(awarded_id)
    await page.get_by_label("Reason").fill("Lowest total cost for 25 users over 12 months; CSAP certified.")
    await page.get_by_role("button", name="Record the outcome").click()
    await expect(page.locator("#field-confirm .error-message")).to_be_visible()
    await assert_accessible(page)
    await page.get_by_label("I understand that the outcome is final.").check()
    await page.get_by_role("button", name="Record the outcome").click()
    await expect(page).to_have_url(re.compile(re.escape(project_path) + "$"))
    await expect(page.locator(".flash").first).to_contain_text("The outcome was recorded.")
    outcome = page.locator("main dl")
    await expect(outcome).to_contain_text("Awarded")
    await expect(outcome).to_contain_text(awarded)
    await expect(outcome).to_contain_text("Lowest total cost for 25 users")
    await expect(page.get_by_role("link", name="Record the outcome…")).to_have_count(0)
    draft = page.get_by_role("link", name="Draft the contract for the awarded service")
    project_id = project_path.rsplit("/", 1)[1]
    await expect(draft).to_have_attribute("href", f"/contracts/new?service_id={awarded_id}&project_id={project_id}")
    await assert_accessible(page)

    await page.goto(f"{project_path}/outcome")
    await expect(page.locator("main")).to_contain_text("The outcome was already recorded.")
    await expect(page.locator("main form")).to_have_count(0)
    await assert_accessible(page)


async def download(page: Page, link: str) -> Download:
    """Follow a download link and wait for the file."""
    async with page.expect_download() as started:
        await page.get_by_role("link", name=link, exact=True).click()
    return await started.value


async def read(download: Download) -> bytes:
    return Path(await download.path()).read_bytes()
