"""The committee's way through a submission in a real browser: the secretariat finds it complete, the chair
assigns three members, each reviews, the decision certifies, anyone can verify the certificate, and the
service is found in the catalogue."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.e2e.steps import assert_accessible, flash, sign_in_as, sign_out

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SERVICE = "Nuri 민원 챗봇"  # the demo's submission still waiting for the completeness check
MEMBERS = {
    "committee@demo.example.go.kr": "Member Park",
    "member2@demo.example.go.kr": "Member Choi",
    "member3@demo.example.go.kr": "Member Jung",
}


async def test_a_complete_submission_is_assigned_reviewed_certified_and_verifiable(page: Page) -> None:
    await sign_in_as(page, "operator@demo.example.go.kr")
    await page.goto("/committee/queue")
    await assert_accessible(page)
    await page.get_by_role("link", name=re.compile(re.escape(SERVICE))).click()
    case_url = page.url
    await assert_accessible(page)
    await page.get_by_role("button", name="Complete: send to the committee").click()
    await flash(page)

    await sign_in_as(page, "chair@demo.example.go.kr")
    await page.goto(case_url)
    await assert_accessible(page)
    for name in MEMBERS.values():
        await page.get_by_label(re.compile(f"^{name} ")).check()
    await page.get_by_role("button", name="Assign the chosen members").click()
    await flash(page)
    for name in MEMBERS.values():
        await expect(page.locator("main")).to_contain_text(name)

    for number, email in enumerate(MEMBERS, start=1):
        await sign_in_as(page, email)
        await page.goto("/committee/cases")
        await page.get_by_role("link", name=re.compile(re.escape(SERVICE))).first.click()
        if number == 1:
            await assert_accessible(page)
        review = page.locator("form[action$='/review']")
        for choice in await review.locator("input[type=radio][value=pass]").all():
            await choice.check()
        for score in await review.locator("input[type=number]").all():
            await score.fill("85")
        await review.get_by_role("button", name="Submit my final review").click()
        await flash(page)

    await expect(page.locator("main")).to_contain_text("certif", ignore_case=True)
    await sign_out(page)  # the register and the verification are public
    await page.goto("/certificates")
    await assert_accessible(page)
    row = page.locator("tbody tr", has_text=SERVICE)
    await row.get_by_role("link").click()
    await expect(page.locator("main [role=status]")).to_have_text("This certificate is valid.")
    await expect(page.locator("main")).to_contain_text(SERVICE)
    await assert_accessible(page)

    await page.goto("/services")  # listed at once: anyone searching finds it
    await page.locator("#field-q").fill("민원 챗봇")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page.locator("ol.results")).to_contain_text(SERVICE)
