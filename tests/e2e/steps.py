"""What a person does in the browser: switch language, sign in; and the demo accounts to do it with."""

from __future__ import annotations

from playwright.async_api import Page, expect

from market.demo import DEMO_PASSWORD
from market.i18n import translations

# role: (demo account, heading of that role's home page)
ACCOUNTS = {
    "operator": ("operator@demo.example.go.kr", "Operator home"),
    "chair": ("chair@demo.example.go.kr", "Committee home"),
    "committee": ("committee@demo.example.go.kr", "Committee home"),
    "agency": ("buyer@seoul.example.go.kr", "Agency home"),
    "provider": ("provider@hanbit-cloud.example.kr", "Provider home"),
}


def korean(english: str) -> str:
    """The Korean catalog's text for `english`; fails when the catalog lacks it."""
    text = translations("ko").gettext(english)
    assert text != english, f"the Korean catalog has no translation for {english!r}"
    return text


async def switch_language(page: Page, language: str) -> None:
    """Use the language form in the header; the page comes back in that language."""
    await page.select_option("#language-select", language)
    await page.locator("form.language-switch button[type=submit]").click()
    await expect(page.locator("html")).to_have_attribute("lang", language)


async def sign_in(page: Page, email: str, password: str = DEMO_PASSWORD) -> None:
    if "/login" not in page.url:
        await page.goto("/login")
    await page.fill("#field-email", email)
    await page.fill("#field-password", password)
    await page.locator("main form button[type=submit]").click()
    await expect(page.locator("form[action='/logout']")).to_be_attached()


# --- journeys --------------------------------------------------------------------------------------------

BLOCKING_IMPACTS = {"serious", "critical"}


async def assert_accessible(page: Page) -> None:
    """axe-core on the page as it stands: no violation of serious or critical impact."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    blocking = [violation for violation in results.response["violations"] if violation["impact"] in BLOCKING_IMPACTS]
    report = "\n".join(
        f"{violation['id']} ({violation['impact']}): {violation['help']}\n"
        + "\n".join(f"    {node['target']}: {node['failureSummary']}" for node in violation["nodes"])
        for violation in blocking
    )
    assert not blocking, f"{page.url} has accessibility violations:\n{report}"


async def sign_out(page: Page) -> None:
    await page.locator("form[action='/logout'] button[type=submit]").click()
    await expect(page.locator("form[action='/logout']")).to_have_count(0)


async def sign_in_as(page: Page, email: str) -> None:
    """Sign out whoever is signed in, then sign in as `email`, in English."""
    if await page.locator("form[action='/logout']").count():
        await sign_out(page)
    await page.goto("/login")
    if await page.locator("html").get_attribute("lang") != "en":
        await switch_language(page, "en")
    await sign_in(page, email)


async def flash(page: Page) -> str:
    """The confirmation the page shows after a form was sent."""
    message = page.locator(".flash").first
    await expect(message).to_be_visible()
    return (await message.inner_text()).strip()
