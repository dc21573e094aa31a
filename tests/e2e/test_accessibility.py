"""axe-core on the shell's pages: no violation of serious or critical impact."""

from __future__ import annotations

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, expect

from tests.e2e.steps import ACCOUNTS, sign_in, switch_language

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

BLOCKING = {"serious", "critical"}


async def assert_no_serious_violations(page: Page) -> None:
    results = await Axe().run(page)
    blocking = [violation for violation in results.response["violations"] if violation["impact"] in BLOCKING]
    report = "\n".join(
        f"{violation['id']} ({violation['impact']}): {violation['help']}\n"
        + "\n".join(f"    {node['target']}: {node['failureSummary']}" for node in violation["nodes"])
        for violation in blocking
    )
    assert not blocking, f"{page.url} has accessibility violations:\n{report}"


@pytest.mark.parametrize("language", ["ko", "en"])
async def test_sign_in_page_has_no_serious_accessibility_violations(page: Page, language: str) -> None:
    await page.goto("/login")
    await switch_language(page, language)
    await assert_no_serious_violations(page)


async def test_sign_in_form_with_errors_has_no_serious_accessibility_violations(page: Page) -> None:
    await page.goto("/login")
    await page.locator("main form button[type=submit]").click()
    await page.locator(".error-summary").wait_for()
    await assert_no_serious_violations(page)


async def test_public_home_page_has_no_serious_accessibility_violations(page: Page) -> None:
    await page.goto("/")
    await assert_no_serious_violations(page)


@pytest.mark.parametrize("role", ["operator", "chair", "agency", "provider"])
async def test_home_page_of_each_role_has_no_serious_accessibility_violations(page: Page, role: str) -> None:
    await sign_in(page, ACCOUNTS[role][0])
    await assert_no_serious_violations(page)


@pytest.mark.parametrize("path", ["/organisation", "/contracts/budget"])
async def test_an_agency_administrators_members_limits_budgets_and_threshold_have_no_serious_accessibility_violations(
    page: Page, path: str
) -> None:
    await sign_in(page, "admin@seoul.example.go.kr")
    await page.goto(path)
    await expect(
        page.locator("main form").first
    ).to_be_attached()  # the administrator's forms (roles, limits; budgets, threshold)
    await assert_no_serious_violations(page)
