from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.e2e.steps import ACCOUNTS, korean, sign_in, switch_language

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest.mark.parametrize("role", ACCOUNTS)
async def test_each_demo_role_lands_on_its_home_page_in_english_and_korean(page: Page, role: str) -> None:
    email, heading = ACCOUNTS[role]
    await page.goto("/login")
    await switch_language(page, "en")
    await sign_in(page, email)
    await expect(page.locator("h1")).to_have_text(heading)

    await switch_language(page, "ko")
    await expect(page.locator("h1")).to_have_text(korean(heading))
    await expect(page).to_have_title(f"{korean(heading)} · {korean('Cloud Service Marketplace')}")


async def test_wrong_password_keeps_the_visitor_on_the_sign_in_form_with_a_message(page: Page) -> None:
    await page.goto("/login")
    await switch_language(page, "en")
    await page.fill("#field-email", ACCOUNTS["agency"][0])
    await page.fill("#field-password", "not-the-password")
    await page.locator("main form button[type=submit]").click()
    await expect(page.locator(".error-summary")).to_contain_text("The e-mail address or password is wrong.")
    await expect(page.locator("form[action='/logout']")).to_have_count(0)
