"""A contract in a real browser, from a listed service to the public register: the agency drafts from a plan
and sends it; the provider signs, then the agency; the daily sweep issues the first invoice and the worker
sends it to Stripe (the stand-in); Stripe's signed webhook marks it paid; anyone can find the contract in the
register. Every page reached is checked with axe."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from playwright.async_api import Page, expect

from contracts.pricing import add_months
from market import clock
from tests.contracts.stripe_standin import StripeStandIn, deliver
from tests.e2e.steps import assert_accessible, flash, sign_in_as, sign_out

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SERVICE, PLAN = (
    "Hanbit Managed Database",
    "db.small",
)  # a listed demo service of Hanbit Cloud, billed per instance-month
AGENCY, AGENCY_NAME = "buyer@seoul.example.go.kr", "Buyer Kang"  # the buyer drafts and sends
SIGNER, SIGNER_NAME = "signer@seoul.example.go.kr", "Signer Song"  # the agency's signer signs (buyers never do)
PROVIDER, PROVIDER_NAME = "provider@hanbit-cloud.example.kr", "Provider Han"
BUDGET_REFERENCE = "E2E-DB-001"


async def sign_version(page: Page, contract_url: str, name: str) -> None:
    """Open the contract, read the stored document's page and sign it: confirm, typed name, password again."""
    from market.demo import DEMO_PASSWORD

    await page.goto(contract_url)
    await assert_accessible(page)
    await page.get_by_role("link", name="Read and sign version 1").click()
    await expect(page.locator("iframe.contract-document")).to_be_visible()
    await assert_accessible(page)
    await page.get_by_label("I have read the document above and sign it for my organisation.").check()
    await page.get_by_label("Type your full name").fill(name)
    await page.get_by_label("Your password, again").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign", exact=True).click()
    assert await flash(page) == "Your signature was recorded."


async def test_a_contract_is_drafted_signed_by_both_invoiced_paid_through_stripe_and_published(
    page: Page,
    server: str,
    market_command: Callable[..., str],
    stripe_standin: StripeStandIn,
) -> None:
    starts_on = clock.today()  # in force as soon as both have signed, so the sweep invoices its first month today
    ends_on = add_months(starts_on, 3) - timedelta(days=1)

    # the agency finds the service and drafts from its plan
    await sign_in_as(page, AGENCY)
    await page.goto("/services")
    await page.locator("#field-q").fill(SERVICE)
    await page.get_by_role("button", name="Search", exact=True).click()
    await page.get_by_role("link", name=SERVICE, exact=True).first.click()
    await expect(page.locator("h1")).to_contain_text(SERVICE)
    await assert_accessible(page)
    await page.get_by_role("link", name="Draft a contract from a plan").click()
    await assert_accessible(page)
    await page.get_by_label(re.compile(f"^{re.escape(PLAN)}:")).check()
    await page.get_by_label("Quantity").fill("2")
    await page.get_by_label("Start date").fill(starts_on.isoformat())
    await page.get_by_label("End date").fill(ends_on.isoformat())
    await page.get_by_label("Billing").select_option("monthly")
    await page.get_by_label("Contract route").select_option("direct")
    await page.get_by_label("Budget reference").fill(BUDGET_REFERENCE)
    await page.get_by_role("button", name="Save the draft").click()
    assert "was saved" in await flash(page)
    contract_url = page.url
    assert re.search(r"/contracts/\d+$", contract_url), contract_url
    number = re.sub(r"^Contract ", "", (await page.locator("h1").inner_text()).strip())
    summary = page.locator("dl.contract-summary")
    await expect(summary).to_contain_text(PLAN)
    await expect(summary).to_contain_text("Draft")
    await assert_accessible(page)

    # sending freezes the document; the page asks for a confirmation first
    await page.get_by_role("link", name="Send to the provider for signature").click()
    await assert_accessible(page)
    await page.get_by_label("I confirm this step.").check()
    await page.get_by_role("button", name="Freeze and send").click()
    assert await flash(page) == "The contract was sent to the provider for signature."
    await expect(page.locator("main")).to_contain_text("The stored document matches its fingerprint.")

    # the provider signs first, then the agency's signer
    await sign_in_as(page, PROVIDER)
    await sign_version(page, contract_url, PROVIDER_NAME)
    await expect(summary).not_to_contain_text("Active")
    await sign_in_as(page, SIGNER)
    await sign_version(page, contract_url, SIGNER_NAME)
    await expect(summary.locator("dd").last).to_have_text("Active")
    await expect(page.locator("main table")).to_contain_text(f"provider: {PROVIDER_NAME}")
    await expect(page.locator("main table")).to_contain_text(f"agency: {SIGNER_NAME}")
    await assert_accessible(page)

    # the daily sweep issues the first month's invoice; the worker creates, finalises and sends it in Stripe
    report = market_command("contracts", "sweep", "--today", starts_on.isoformat())
    assert re.search(r"\b[1-9]\d* invoices issued", report), report
    market_command("worker", "--once")

    await page.goto("/invoices")
    await assert_accessible(page)
    row = page.locator("tbody tr", has_text=number)
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Open")
    await row.get_by_role("link").click()
    invoice_id = page.url.rsplit("/", 1)[1]
    await expect(page.locator("main")).to_contain_text("Stripe invoice in_")
    await assert_accessible(page)
    stripe_invoice = next(
        item for item in stripe_standin.invoices.values() if item["metadata"].get("invoice_id") == invoice_id
    )
    assert stripe_invoice["status"] == "open" and stripe_invoice["sent_count"] == 1

    # the agency pays in Stripe; Stripe tells the marketplace with a signed webhook
    paid = stripe_standin.set_status(stripe_invoice["id"], "paid")
    async with httpx.AsyncClient(base_url=server, timeout=10) as client:
        answer = await deliver(client, stripe_standin.event("invoice.paid", paid))
    assert answer.status_code == 200, answer.text
    assert answer.json()["applied"] == "pay"

    await page.reload()
    status = page.locator("main table").first.locator("tr", has=page.locator("th", has_text="Status")).locator("td")
    await expect(status).to_have_text("Paid")
    await expect(page.locator("main")).to_contain_text(stripe_invoice["id"])
    await assert_accessible(page)

    # the register is public: signed out, anyone finds the contract
    await sign_out(page)
    await page.goto("/contracts/register")
    await page.locator("#field-q").fill(number)
    await page.get_by_role("button", name="Search", exact=True).click()
    entry = page.locator("tbody tr", has_text=number)
    await expect(entry).to_have_count(1)
    await expect(entry).to_contain_text(SERVICE)
    await expect(entry).to_contain_text("Active")
    await assert_accessible(page)
    await entry.get_by_role("link", name=number).click()
    await expect(page.locator("h1")).to_contain_text(number)
    await expect(page.locator("main")).to_contain_text("Seoul Metropolitan Government")
    await assert_accessible(page)
