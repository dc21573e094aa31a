"""Passkeys in a real browser, with Chromium's virtual authenticator standing in for the device: the provider
registers a passkey on the account page, signs a sent contract with it, downloads the signature's evidence and
checks it with the standalone verifier and the `market` command."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from contracts import verify_signature
from tests.e2e.steps import assert_accessible, flash, sign_in_as

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PROVIDER = "provider@nurisoft.example.kr"  # the demo's contract sent to Nuri Soft waits for its signature


async def virtual_authenticator(page: Page) -> str:
    """A platform authenticator that verifies its user at once (CDP's WebAuthn domain)."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    answer = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return answer["authenticatorId"]


async def test_a_passkey_registered_on_the_account_page_signs_a_contract_whose_evidence_verifies(
    page: Page,
    server: str,
    market_command: Callable[..., str],
    tmp_path: Path,
) -> None:
    assert server.startswith("http://localhost:")
    await virtual_authenticator(page)
    await sign_in_as(page, PROVIDER)

    # register the passkey
    await page.goto("/account")
    await page.get_by_label("Passkey name").fill("Virtual laptop")
    await page.get_by_role("button", name="Register a passkey").click()
    assert "“Virtual laptop” is registered" in await flash(page)
    passkeys = page.locator("section", has=page.locator("#passkeys-title"))
    await expect(passkeys.locator("tbody tr")).to_have_count(1)
    await expect(passkeys).to_contain_text("Virtual laptop")
    await assert_accessible(page)
    signer = await page.locator("#field-name").input_value()

    # sign the contract waiting for Nuri Soft with it
    await page.goto("/contracts?status=sent")
    await page.locator("main tbody tr a").first.click()
    contract_url = page.url
    assert re.search(r"/contracts/\d+$", contract_url), contract_url
    await page.get_by_role("link", name="Read and sign version 1").click()
    await assert_accessible(page)
    await page.get_by_label("I have read the document above and sign it for my organisation.").check()
    await page.get_by_label("Type your full name").fill(signer)
    await page.get_by_role(
        "button", name="Sign with a passkey"
    ).focus()  # (a click right after typing may land on the name's autofill popup)
    await page.keyboard.press("Enter")
    # the page asks for the signing request, the authenticator signs, then the form is sent: allow the ceremony its time
    await expect(page).to_have_url(contract_url, timeout=30_000)
    assert await flash(page) == "Your signature was recorded."
    await expect(page.locator("main table")).to_contain_text("Signed with a passkey: the signature verifies.")
    await assert_accessible(page)

    # the evidence, downloaded as a person would, verifies with no database
    async with page.expect_download() as started:
        await page.get_by_role("link", name="Evidence (JSON)").first.click()
    download = await started.value
    path = tmp_path / download.suggested_filename
    await download.save_as(path)
    bundle = json.loads(path.read_text())
    assert bundle["method"] == "webauthn" and bundle["rp_id"] == "localhost" and bundle["origin"] == server
    verdict = verify_signature.verify(bundle)
    assert verdict.ok, verdict.problems
    assert market_command("contracts", "verify-signature", str(path)).startswith("VERIFIED")

    # the passkey was used: the account page says when
    await page.goto("/account")
    await expect(passkeys.locator("tbody tr td").nth(2)).not_to_have_text("Never")
