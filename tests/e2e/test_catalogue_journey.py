"""The catalogue in a real browser: a provider lists a service with a plan and its service definition and
submits it; an agency searches, narrows by category, compares two demo services and keeps the search in a
procurement project. Every page reached is checked with axe."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

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
    await field(page, "file").set_input_files(files=[{"name": "definition.pdf", "mimeType": "application/pdf", "buffer": PDF}])
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


async def test_an_agency_searches_filters_compares_and_saves_the_search(page: Page) -> None:
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
    assert await results.count() >= 2
    for hit in await results.all():
        await expect(hit.locator(".facts")).to_contain_text("Cloud: SaaS")
    await assert_accessible(page)

    chosen = [(await results.nth(index).locator("h3").inner_text()).strip() for index in range(2)]
    for index in range(2):
        await results.nth(index).get_by_role("checkbox").check()
    await page.get_by_role("button", name="Compare ticked services").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Compare services")
    comparison = page.locator("table.comparison")
    for name in chosen:
        await expect(comparison).to_contain_text(name)
    await assert_accessible(page)

    await page.go_back()
    await page.locator("#field-project").select_option("new")
    await page.locator("#field-name").fill("Electronic approval 2026")
    await page.get_by_role("button", name="Save the search").click()
    await expect(page).to_have_url(re.compile(r"/projects/\d+$"))
    await flash(page)
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Electronic approval 2026")
    await assert_accessible(page)
