"""The headers every answer carries (`market.headers`): a Content-Security-Policy without inline script, no framing,
nosniff, a referrer policy; no-store for a signed-in user; over https HSTS and Secure `__Host-` cookies. And the
templates keep to the policy: no inline script, no event-handler attribute, no style attribute."""

from __future__ import annotations

import re
from datetime import date
from http.cookies import SimpleCookie
from pathlib import Path

from litestar.testing import AsyncTestClient

from market.app import create_app
from market.auth import TOKEN_PREFIX
from market.models import ApiToken
from market.security import new_token, token_hash
from market.templating import TEMPLATES_DIR
from tests.contracts.factories import contract_parties, sent_contract
from tests.helpers import Browserless, make_organisation, make_user


def directives(response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return {part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2] for part in policy.split(";") if part.strip()}


async def test_every_page_carries_the_policy_and_the_safety_headers(client) -> None:
    for address, status in (
        ("/", 200),
        ("/services", 200),
        ("/login", 200),
        ("/no-such-page", 404),
        ("/static/market.css", 200),
        ("/api/search", 200),
    ):
        response = await client.get(address)
        assert response.status_code == status, address
        policy = directives(response)
        assert policy["script-src"] == "'self'", address  # no 'unsafe-inline', no other origin
        assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert "strict-transport-security" not in response.headers  # plain http in tests


async def test_an_anonymous_page_may_be_cached_but_a_signed_in_one_never(web) -> None:
    assert "no-store" not in (await web.client.get("/services")).headers.get("cache-control", "")
    await web.login_as("agency")
    for address in ("/", "/services", "/account", "/no-such-page"):
        assert (await web.client.get(address)).headers["cache-control"] == "no-store", address


async def test_an_api_answer_to_a_token_is_not_stored(client, sessions) -> None:
    user = await make_user(sessions, await make_organisation(sessions, "agency"))
    raw = new_token(TOKEN_PREFIX)
    async with sessions() as session, session.begin():
        session.add(ApiToken(user_id=user.id, name="t", token_hash=token_hash(raw), prefix=raw[:12]))
    response = await client.get("/api/me", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"


async def test_the_contract_document_may_be_framed_by_the_signing_page_only(web, sessions, settings) -> None:
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(
        sessions, settings, parties, starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31)
    )
    await web.login(parties.provider_user.email)
    page = await web.client.get(f"/contracts/{contract_id}/versions/1/sign")
    assert directives(page)["frame-ancestors"] == "'none'" and "<iframe" in page.text
    document = await web.client.get(f"/contracts/{contract_id}/versions/1/document")
    policy = directives(document)
    assert policy["frame-ancestors"] == "'self'" and "sandbox" in policy and policy["default-src"] == "'none'"
    assert document.headers["cache-control"] == "no-store"


async def test_over_https_every_cookie_is_secure_and_our_own_are_host_only(settings, sessions) -> None:
    app = create_app(settings.with_(base_url="https://market.example.kr"))
    async with AsyncTestClient(app=app, base_url="https://testserver.local") as client:
        web = Browserless(client, sessions)
        user = await make_user(sessions, await make_organisation(sessions, "agency"))
        answers = [await client.get("/login"), await web.login(user.email)]
        answers.append(await web.submit("/account/profile", {"name": "Kim", "language": "en"}, form_page="/account"))
        answers.append(await web.submit("/language", {"language": "ko", "next": "/"}, form_page="/"))
        answers.append(await client.get("/"))  # shows the flash message and clears its cookie
        names: set[str] = set()
        for response in answers:
            assert response.headers["strict-transport-security"].startswith("max-age=")
            for header in response.headers.get_list("set-cookie"):
                name = next(iter(SimpleCookie(header)))
                attributes = {part.strip().lower() for part in header.split(";")[1:]}
                assert "secure" in attributes and "path=/" in attributes, header
                assert name.startswith("__Host-"), header
                names.add(name)
        assert {"__Host-csrftoken", "__Host-market_session", "__Host-market_lang", "__Host-market_flash"} <= names
        assert (await client.get("/account")).status_code == 200  # the prefixed session cookie signs in
        assert (
            '<html lang="ko">' in (await client.get("/services")).text
        )  # the switch's prefixed cookie outranks the saved "en"


def _templates() -> list[Path]:
    return sorted(Path(TEMPLATES_DIR).rglob("*.html"))


def test_no_template_holds_inline_script_an_event_handler_or_a_style_attribute() -> None:
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
    handler = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
    style_attribute = re.compile(r"\sstyle\s*=", re.IGNORECASE)
    offenders = [
        f"{path.relative_to(TEMPLATES_DIR)}: {kind}"
        for path in _templates()
        for kind, pattern in (
            ("inline script", inline_script),
            ("event handler", handler),
            ("style attribute", style_attribute),
        )
        if pattern.search(path.read_text())
    ]
    assert offenders == []
