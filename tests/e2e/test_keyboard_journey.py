"""The agency journey with the keyboard alone, in a real browser: sign in, search, filter, tick services and
compare them, keep the search in a new project, open a listed service, draft a contract from a plan, send it
after confirming, and sign it for the agency as its signer. Nothing is clicked or filled: Tab and Shift+Tab move, Enter and
Space act, arrow keys choose, typing types. Reaching each control with Tab is the proof that it can be
reached; the skip link is the first stop and the focused element shows it is focused."""

from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, expect

from contracts.pricing import add_months
from market import clock
from market.demo import DEMO_PASSWORD
from tests.e2e.steps import assert_every_stop_shows_focus, assert_focus_visible, flash, focused, press_and_load, tab_to

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

AGENCY = "buyer@seoul.example.go.kr"  # the buyer drafts and sends
SIGNER, SIGNER_NAME = "signer@seoul.example.go.kr", "Signer Song"  # the agency's signer signs (buyers never do)
SERVICE, OTHER_SERVICE, PLAN = (
    "Hanbit Managed Database",
    "한빛 관리형 쿠버네티스",
    "db.small",
)  # Hanbit's two PaaS services
PROJECT = "Keyboard-only database 2026"
BUDGET_REFERENCE = "KBD-DB-001"


async def type_date(page: Page, field_id: str, day: date) -> None:
    """Type a date into the focused date input, in the order of the browser's locale (month/day/year in en-US)."""
    order = await page.evaluate(
        "() => new Intl.DateTimeFormat().formatToParts(new Date(2000, 10, 22)).filter(p => p.type !== 'literal').map(p => p.type)"
    )
    parts = {"year": f"{day.year:04d}", "month": f"{day.month:02d}", "day": f"{day.day:02d}"}
    for index, part in enumerate(order):
        await page.keyboard.type(parts[part])
        if index < len(order) - 1 and part == "year":
            await page.keyboard.press("ArrowRight")  # four digits do not always move on by themselves
    await expect(page.locator(f"#{field_id}")).to_have_value(day.isoformat())


async def test_the_agency_journey_with_the_keyboard_alone(page: Page) -> None:
    starts_on = clock.today() + timedelta(days=7)
    ends_on = add_months(starts_on, 6) - timedelta(days=1)

    # The skip link is the first Tab stop, shows its focus and moves focus to the main content.
    await page.goto("/login")
    assert await page.locator("html").get_attribute("lang") == "en"
    await page.keyboard.press("Tab")
    stop = await focused(page)
    assert (stop["tag"], stop["label"]) == ("A", "Skip to main content"), stop
    await assert_focus_visible(page)
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()

    # Sign in: the first stop in main is the e-mail address; Enter in the password field sends the form.
    await page.keyboard.press("Tab")
    await expect(page.locator("#field-email")).to_be_focused()
    await assert_focus_visible(page)
    await page.keyboard.type(AGENCY)
    await tab_to(page, id="field-password")
    await page.keyboard.type(DEMO_PASSWORD)
    await press_and_load(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Agency home")

    # Search from the menu, narrow by category with Space, sort with the arrow keys, apply.
    await tab_to(page, name="Search")
    await assert_focus_visible(page)
    await press_and_load(page)
    await tab_to(page, id="field-q")
    await page.keyboard.type("Hanbit")
    await press_and_load(page)  # Enter in the search box sends the search
    await expect(page.locator("#results-title")).to_be_visible()
    await tab_to(page, name=re.compile(r"^Cloud: PaaS"))
    await page.keyboard.press("Space")
    await expect(page.get_by_label(re.compile(r"^Cloud: PaaS"))).to_be_checked()
    await assert_focus_visible(page)
    await tab_to(page, id="field-sort")
    await page.keyboard.press("ArrowDown")  # from Relevance to Lowest price, without opening the list
    await expect(page.locator("#field-sort")).to_have_value("price")
    await tab_to(page, name="Apply filters")
    await press_and_load(page)
    await expect(page).to_have_url(re.compile(r"category=paas"))
    results = page.locator("ol.results > li")
    await expect(results).to_have_count(2)
    await expect(results.locator("h3")).to_have_text([OTHER_SERVICE, SERVICE])  # a vCPU-hour is the lowest price
    assert await assert_every_stop_shows_focus(page) > 20  # header, search form, filters, results, saving

    # Tick both with Space, go on to the compare button after the results and open the comparison.
    for _ in range(2):
        await tab_to(page, field="ids")
        await page.keyboard.press("Space")
        await assert_focus_visible(page)
    await expect(results.get_by_role("checkbox", checked=True)).to_have_count(2)
    await tab_to(page, name="Compare ticked services")
    await assert_focus_visible(page)
    await press_and_load(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Compare services")
    columns = page.locator("table.comparison thead th")
    await expect(columns).to_have_count(3)  # the attribute's column, then one a service
    for name in (SERVICE, OTHER_SERVICE):
        await expect(columns.filter(has_text=name)).to_have_count(1)

    # Back to the same results by the comparison's own link, and keep the search in a new project.
    await tab_to(page, name="Back to the search", backwards=True)
    await press_and_load(page)
    await expect(page).to_have_url(
        re.compile(r"/services\?q=Hanbit&category=paas&sort=price$")
    )  # the search, its empty fields dropped
    await expect(results.locator("h3")).to_have_text([OTHER_SERVICE, SERVICE])
    await tab_to(page, id="field-project")
    await expect(page.locator("#field-project")).to_have_value("new")
    await tab_to(page, id="field-name")
    await page.keyboard.type(PROJECT)
    await tab_to(page, name="Save the search")
    await press_and_load(page)
    await expect(page).to_have_url(re.compile(r"/projects/\d+$"))
    await flash(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text(PROJECT)
    await expect(page.locator("main")).to_contain_text("It finds 2 services now.")

    # From the project, open its search and follow the service's link.
    await tab_to(page, name="Open this search")
    await press_and_load(page)
    await tab_to(page, name=SERVICE)
    await assert_focus_visible(page)
    await press_and_load(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text(SERVICE)

    # Draft from a plan: a radio chosen with Space, dates typed, billing chosen with the arrow keys.
    await tab_to(page, name="Draft a contract from a plan")
    await press_and_load(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Draft a contract for {SERVICE}")
    plan = await tab_to(page, field="plan_id")
    assert plan["label"].startswith(f"{PLAN}:"), plan  # the group's first radio, as none is chosen yet
    await page.keyboard.press("Space")
    await expect(page.get_by_label(re.compile(f"^{re.escape(PLAN)}:"))).to_be_checked()
    await assert_focus_visible(page)
    await tab_to(page, id="field-quantity")
    await page.keyboard.type("2")
    await tab_to(page, id="field-starts_on")
    await type_date(page, "field-starts_on", starts_on)
    await tab_to(page, id="field-ends_on")
    await type_date(page, "field-ends_on", ends_on)
    await tab_to(page, id="field-billing_period")
    await expect(page.locator("#field-billing_period")).to_have_value("monthly")
    await page.keyboard.press("ArrowDown")
    await expect(page.locator("#field-billing_period")).to_have_value("quarterly")
    await assert_focus_visible(page)
    await tab_to(page, id="field-route")
    await expect(page.locator("#field-route")).to_have_value("direct")
    await tab_to(page, id="field-budget_reference")
    await page.keyboard.type(BUDGET_REFERENCE)
    await tab_to(page, name="Save the draft")
    await press_and_load(page)
    assert "was saved" in await flash(page)
    contract_path = urlsplit(page.url).path
    assert re.fullmatch(r"/contracts/\d+", contract_path), page.url
    summary = page.locator("dl.contract-summary")
    await expect(summary).to_contain_text(PLAN)
    await expect(summary).to_contain_text(f"{starts_on.isoformat()} to {ends_on.isoformat()}")
    await assert_every_stop_shows_focus(page)

    # Send it: the confirmation box is ticked with Space before the button sends.
    await tab_to(page, name="Send to the provider for signature")
    await press_and_load(page)
    await tab_to(page, id="check-confirm")
    await page.keyboard.press("Space")
    await expect(page.locator("#check-confirm")).to_be_checked()
    await assert_focus_visible(page)
    await tab_to(page, name="Freeze and send")
    await press_and_load(page)
    assert await flash(page) == "The contract was sent to the provider for signature."

    # The buyer signs out and the agency's signer signs in, from the header's button and the sign-in form.
    await tab_to(page, name="Sign out")
    await press_and_load(page)
    await page.goto("/login")
    await tab_to(page, id="field-email")
    await page.keyboard.type(SIGNER)
    await tab_to(page, id="field-password")
    await page.keyboard.type(DEMO_PASSWORD)
    await press_and_load(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Agency home")
    await page.goto(contract_path)  # the contract's address, as typed into the address bar

    # Sign for the agency: past the document's frame to the confirmation, the typed name and the password.
    await tab_to(page, name="Read and sign version 1")
    await press_and_load(page)
    await expect(page.locator("iframe.contract-document")).to_be_visible()
    await assert_every_stop_shows_focus(page)
    # The framed document is no Tab stop (tabindex -1: focus leaving a sandboxed frame lands unreliably), so the
    # keyboard reads it on its own page: the link to that page comes before the confirmation.
    await tab_to(page, name="Open the document on its own page")
    await tab_to(page, id="check-confirm_read")
    await page.keyboard.press("Space")
    await expect(page.locator("#check-confirm_read")).to_be_checked()
    await tab_to(page, id="field-signer_name")
    await page.keyboard.type(SIGNER_NAME)
    await tab_to(page, id="field-password")
    await page.keyboard.type(DEMO_PASSWORD)
    await tab_to(page, name="Sign")
    await assert_focus_visible(page)
    await press_and_load(page)
    assert await flash(page) == "Your signature was recorded."
    assert urlsplit(page.url).path == contract_path
    await expect(summary.locator("dd").last).to_have_text("Sent for signature")  # the provider has not signed yet
    await expect(page.locator("main table")).to_contain_text(f"agency: {SIGNER_NAME}")
    await expect(page.get_by_role("link", name="Read and sign version 1")).to_have_count(0)
