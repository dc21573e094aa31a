"""The Content-Security-Policy in a real browser: the main journey's pages load with no violation reported, an
inline script injected into a page does not run, and the confirmation before a dangerous button (a static script,
not an inline handler) still asks."""

from __future__ import annotations

import pytest
from playwright.async_api import Dialog, Page, expect

from tests.e2e.steps import sign_in_as

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# Registered before any page script runs (through the browser's devtools protocol, which the policy does not govern).
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""

PUBLIC_PAGES = ["/", "/services", "/login", "/contracts/register", "/certificates"]


async def violations(page: Page) -> list[str]:
    return await page.evaluate("window.__violations")


async def test_the_journeys_pages_load_without_a_policy_violation(page: Page) -> None:
    await page.add_init_script(WATCH_VIOLATIONS)
    reported: list[str] = []
    page.on(
        "console", lambda message: reported.append(message.text) if "Content Security Policy" in message.text else None
    )
    for address in PUBLIC_PAGES:
        response = await page.goto(address)
        assert response is not None and "script-src 'self'" in (await response.all_headers())["content-security-policy"]
        assert await violations(page) == [], address
    await page.goto("/services")
    await page.locator("main a[href^='/services/']").first.click()
    await expect(page.locator("h1")).to_be_visible()
    assert await violations(page) == [], page.url
    await sign_in_as(page, "buyer@seoul.example.go.kr")
    for address in ("/", "/services", "/contracts", "/account"):
        await page.goto(address)
        assert await violations(page) == [], address
    assert reported == []


async def test_an_injected_inline_script_does_not_run(page: Page) -> None:
    await page.add_init_script(WATCH_VIOLATIONS)
    await page.goto("/services")
    await page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.__injected = true";
        document.body.appendChild(script);
        const button = document.createElement("button");
        button.setAttribute("onclick", "window.__clicked = true");
        button.id = "injected-button";
        document.body.appendChild(button);
    }""")
    await page.locator("#injected-button").click()
    assert await page.evaluate("window.__injected === undefined && window.__clicked === undefined")
    assert any(entry.startswith("script-src") for entry in await violations(page))


async def test_a_dangerous_button_still_asks_before_its_form_is_sent(page: Page) -> None:
    await sign_in_as(page, "chair@demo.example.go.kr")
    await page.goto("/committee/certificates")
    revoke = page.locator("form[action$='/revoke']").first
    number = (await revoke.get_attribute("action") or "").split("/")[-2]
    await revoke.locator("input[name=reason]").fill("Asked, then thought better of it")
    asked: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.dismiss()

    page.once("dialog", dismiss)
    address = page.url
    await revoke.get_by_role("button", name="Revoke").click()
    await expect(page.locator("h1")).to_have_text("Certificates by expiry")
    assert asked == ["Revoke this certificate? The listing leaves search at once."]
    assert page.url == address
    await expect(page.locator(".flash, .notice")).to_have_count(0)
    # the certificate the button was for is still listed, and still valid
    await expect(page.locator("main table tbody tr", has_text=number).locator("td").nth(4)).to_have_text("Valid")
