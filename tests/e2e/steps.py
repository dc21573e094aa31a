"""What a person does in the browser: switch language, sign in, move with the keyboard alone; and the demo
accounts to do it with."""

from __future__ import annotations

import re
from typing import Any

import pytest
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


# --- the keyboard alone --------------------------------------------------------------------------------------

# What a keyboard user (and a screen reader) knows of the focused element: a stable number for this page
# load, the tag, id, name attribute and an approximation of the accessible name (enough to tell controls apart).
_FOCUSED = """() => {
  const element = document.activeElement;
  if (!element || element === document.body) return {key: 0, tag: "BODY", id: "", name: "", label: ""};
  window.__tabStops = window.__tabStops || new WeakMap();
  if (!window.__tabStops.has(element)) window.__tabStops.set(element, (window.__tabCount = (window.__tabCount || 0) + 1));
  const text = (node) => (node ? node.innerText || node.textContent || "" : "").replace(/\\s+/g, " ").trim();
  let label = "";
  const labelledby = element.getAttribute("aria-labelledby");
  if (labelledby) label = labelledby.split(/\\s+/).map((id) => text(document.getElementById(id))).join(" ");
  if (!label) label = element.getAttribute("aria-label") || "";
  if (!label && element.labels && element.labels.length) label = text(element.labels[0]);
  if (!label && !["INPUT", "SELECT", "TEXTAREA", "IFRAME"].includes(element.tagName)) label = text(element).slice(0, 120);
  if (!label) label = element.getAttribute("title") || element.value || "";
  return {key: window.__tabStops.get(element), tag: element.tagName, id: element.id, name: element.getAttribute("name") || "",
          label: label.trim()};
}"""


def _describe(stop: dict[str, Any]) -> str:
    return f"<{stop['tag'].lower()}{' #' + stop['id'] if stop['id'] else ''}{' name=' + stop['name'] if stop['name'] else ''}> {stop['label']!r}"


async def focused(page: Page) -> dict[str, Any]:
    """The focused element: tag, id, name attribute and accessible name (label)."""
    return await page.evaluate(_FOCUSED)


async def tab_to(
    page: Page,
    *,
    name: str | re.Pattern[str] | None = None,
    id: str | None = None,
    field: str | None = None,
    backwards: bool = False,
    limit: int = 200,
) -> dict[str, Any]:
    """Press Tab (Shift+Tab when `backwards`) until the focused element is the one named, by accessible name
    (exact text or a pattern), id or name attribute; fails listing every stop visited when it is not reachable."""
    assert name is not None or id is not None or field is not None, "say which element to reach"

    def matches(stop: dict[str, Any]) -> bool:
        if id is not None and stop["id"] != id:
            return False
        if field is not None and stop["name"] != field:
            return False
        if isinstance(name, re.Pattern):
            return bool(name.search(stop["label"]))
        return name is None or stop["label"] == name

    visited: list[dict[str, Any]] = []
    for _ in range(limit):
        await page.keyboard.press("Shift+Tab" if backwards else "Tab")
        stop = await focused(page)
        if matches(stop):
            return stop
        if stop["key"] and any(seen["key"] == stop["key"] for seen in visited):
            break  # round the page once: it is not there
        visited.append(stop)
    wanted = ", ".join(
        f"{what}={value!r}" for what, value in (("name", name), ("id", id), ("field", field)) if value is not None
    )
    pytest.fail(
        f"{page.url}: no Tab stop with {wanted}; visited {len(visited)}:\n"
        + "\n".join(f"  {_describe(stop)}" for stop in visited),
        pytrace=False,
    )


async def assert_focus_visible(page: Page) -> None:
    """The focused element shows it: a visible outline or a box shadow."""
    style = await page.evaluate(
        """() => { const style = getComputedStyle(document.activeElement);
                   return {outline: style.outlineStyle, width: style.outlineWidth, shadow: style.boxShadow}; }"""
    )
    outlined = style["outline"] != "none" and style["width"] not in ("0px", "")
    assert outlined or style["shadow"] != "none", (
        f"{_describe(await focused(page))} on {page.url} has no visible focus: {style}"
    )


async def assert_every_stop_shows_focus(page: Page, limit: int = 300) -> int:
    """Tab once round the whole page: every stop shows that it is focused. Returns the number of stops; the focus
    is left on the first stop after where it was."""
    hidden: list[str] = []
    seen: set[int] = set()
    for _ in range(limit):
        await page.keyboard.press("Tab")
        stop = await focused(page)
        if not stop["key"]:
            continue  # past the end of the page, before Tab wraps round to its start
        if stop["key"] in seen:
            break
        seen.add(stop["key"])
        try:
            await assert_focus_visible(page)
        except AssertionError as exc:
            hidden.append(str(exc))
    assert not hidden, "\n".join(hidden)
    return len(seen)


async def press_and_load(page: Page, key: str = "Enter") -> None:
    """Press a key that follows a link or sends a form, and wait for the next page."""
    async with page.expect_navigation():
        await page.keyboard.press(key)
