from __future__ import annotations

import sqlalchemy as sa

from market.auth import SESSION_COOKIE, start_session
from market.i18n import LANGUAGE_COOKIE
from market.models import AuditEvent, LoginSession, User
from market.security import token_hash, verify_password
from tests.helpers import PASSWORD, audit_actions, count

NEW_PASSWORD = "a-much-better-passphrase"


async def user_row(web, user_id: int) -> User:
    async with web.sessions() as session:
        return await session.get(User, user_id)


async def test_an_anonymous_visitor_is_sent_to_sign_in(web) -> None:
    response = await web.client.get("/account", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def test_account_page_shows_the_profile_and_the_forms(web) -> None:
    user = await web.login_as("agency")
    page = await web.client.get("/account")
    assert page.status_code == 200
    assert user.email in page.text and 'value="Test User"' in page.text
    for field in ("name", "language", "current_password", "password", "password_confirm", "token_name"):
        assert f'id="field-{field}"' in page.text, field
    assert "You have no API tokens." in page.text


async def test_saving_the_profile_changes_name_and_language_and_is_audited(web) -> None:
    user = await web.login_as("provider")
    response = await web.submit("/account/profile", {"name": "Lee Provider", "language": "ko"}, form_page="/account")
    assert response.status_code == 303
    saved = await user_row(web, user.id)
    assert saved.name == "Lee Provider" and saved.language == "ko"
    assert web.client.cookies.get(LANGUAGE_COOKIE) == "ko"  # shows at once, over an earlier switch
    assert (await audit_actions(web.sessions))[-1] == "user.update_profile"


async def test_a_profile_with_an_unknown_language_or_no_name_is_refused_and_writes_nothing(web) -> None:
    user = await web.login_as("provider")
    before = await count(web.sessions, AuditEvent)
    response = await web.submit("/account/profile", {"name": "", "language": "fr"}, form_page="/account")
    assert response.status_code == 422 and response.headers["content-type"].startswith("text/html")
    assert 'href="#field-name"' in response.text and 'href="#field-language"' in response.text
    long = await web.submit("/account/profile", {"name": "x" * 121, "language": "en"}, form_page="/account")
    assert long.status_code == 422 and 'href="#field-name"' in long.text
    saved = await user_row(web, user.id)
    assert saved.name == "Test User" and saved.language is None
    assert await count(web.sessions, AuditEvent) == before


async def test_changing_the_password_ends_other_sessions_and_keeps_this_browser_signed_in(web) -> None:
    user = await web.login_as("agency")
    old_cookie = web.client.cookies.get(SESSION_COOKIE)
    async with web.sessions() as session, session.begin():
        other = await start_session(session, await session.get(User, user.id), "10.0.0.7", "a phone")
    response = await web.submit(
        "/account/password",
        {"current_password": PASSWORD, "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        form_page="/account",
    )
    assert response.status_code == 303
    new_cookie = web.client.cookies.get(SESSION_COOKIE)
    assert new_cookie and new_cookie != old_cookie
    async with web.sessions() as session:
        hashes = set((await session.scalars(sa.select(LoginSession.token_hash))).all())
    assert hashes == {token_hash(new_cookie)}
    assert token_hash(other) not in hashes
    assert (await web.client.get("/account")).status_code == 200
    assert verify_password((await user_row(web, user.id)).password_hash, NEW_PASSWORD)
    assert "password.change" in await audit_actions(web.sessions)


async def test_a_wrong_current_password_is_refused_and_changes_nothing(web) -> None:
    user = await web.login_as("agency")
    before = await count(web.sessions, AuditEvent), await count(web.sessions, LoginSession)
    response = await web.submit(
        "/account/password",
        {"current_password": "not-my-password", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        form_page="/account",
    )
    assert response.status_code == 422 and 'href="#field-current_password"' in response.text
    assert verify_password((await user_row(web, user.id)).password_hash, PASSWORD)
    assert (await count(web.sessions, AuditEvent), await count(web.sessions, LoginSession)) == before


async def test_a_mismatched_confirmation_is_refused_and_changes_nothing(web) -> None:
    user = await web.login_as("agency")
    before = await count(web.sessions, AuditEvent)
    response = await web.submit(
        "/account/password",
        {"current_password": PASSWORD, "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD + "!"},
        form_page="/account",
    )
    assert response.status_code == 422 and 'href="#field-password_confirm"' in response.text
    assert verify_password((await user_row(web, user.id)).password_hash, PASSWORD)
    assert await count(web.sessions, AuditEvent) == before


async def test_a_weak_new_password_is_refused_and_changes_nothing(web) -> None:
    user = await web.login_as("agency")
    before = await count(web.sessions, AuditEvent), await count(web.sessions, LoginSession)
    response = await web.submit(
        "/account/password",
        {"current_password": PASSWORD, "password": "short", "password_confirm": "short"},
        form_page="/account",
    )
    assert response.status_code == 422 and 'href="#field-password"' in response.text
    assert verify_password((await user_row(web, user.id)).password_hash, PASSWORD)
    assert (await count(web.sessions, AuditEvent), await count(web.sessions, LoginSession)) == before


async def test_an_oversized_new_password_is_refused(web) -> None:
    user = await web.login_as("agency")
    long = "x" * 201
    response = await web.submit(
        "/account/password",
        {"current_password": PASSWORD, "password": long, "password_confirm": long},
        form_page="/account",
    )
    assert response.status_code == 422 and 'href="#field-password"' in response.text
    assert verify_password((await user_row(web, user.id)).password_hash, PASSWORD)


async def test_the_account_forms_need_the_csrf_token(web) -> None:
    user = await web.login_as("agency")
    response = await web.client.post("/account/profile", data={"name": "Mallory", "language": "en"})
    assert response.status_code == 403
    assert (await user_row(web, user.id)).name == "Test User"
