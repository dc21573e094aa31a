from __future__ import annotations

import sqlalchemy as sa

from market.auth import SESSION_COOKIE
from market.models import LoginFailure, LoginSession
from tests.helpers import PASSWORD, count, make_organisation, make_user


async def test_login_lands_on_the_home_page_of_the_users_role(web) -> None:
    organisation = await make_organisation(web.sessions, "agency", name="Busan City")
    user = await make_user(web.sessions, organisation, name="Buyer Seo")
    response = await web.login(user.email)
    assert response.status_code == 303
    home = await web.client.get("/")
    assert "Agency home" in home.text and "Buyer Seo" in home.text


async def test_wrong_password_and_unknown_account_get_the_same_answer(web) -> None:
    user = await make_user(web.sessions, await make_organisation(web.sessions, "provider"))
    wrong = await web.login(user.email, "not-the-password")
    unknown = await web.login("nobody@example.kr", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert "The e-mail address or password is wrong." in wrong.text
    assert "The e-mail address or password is wrong." in unknown.text
    assert await count(web.sessions, LoginSession) == 0


async def test_login_is_throttled_after_repeated_failures_per_account(web, settings) -> None:
    user = await make_user(web.sessions, await make_organisation(web.sessions, "provider"))
    for _ in range(settings.login_failures_per_account):
        assert (await web.login(user.email, "wrong-password")).status_code == 401
    blocked = await web.login(user.email, PASSWORD)  # even the right password waits
    assert blocked.status_code == 429
    assert "Too many failed sign-in attempts" in blocked.text
    ghost = "ghost@example.kr"
    for _ in range(settings.login_failures_per_account):
        await web.login(ghost, "wrong-password")
    assert (await web.login(ghost, "wrong-password")).status_code == 429  # same for an account that does not exist
    assert (
        await count(web.sessions, LoginFailure, LoginFailure.account_key == ghost)
        == settings.login_failures_per_account
    )


async def test_session_id_changes_at_login(web) -> None:
    user = await make_user(web.sessions, await make_organisation(web.sessions, "agency"))
    await web.login(user.email)
    first = web.client.cookies.get(SESSION_COOKIE)
    await web.login(user.email)
    second = web.client.cookies.get(SESSION_COOKIE)
    assert first and second and first != second
    async with web.sessions() as session:
        assert (await session.scalar(sa.select(sa.func.count()).select_from(LoginSession))) == 1  # the old one ended


async def test_form_without_csrf_token_is_refused(web) -> None:
    user = await make_user(web.sessions, await make_organisation(web.sessions, "agency"))
    await web.client.get("/login")
    response = await web.client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 403
    assert "Reload the page" in response.text
    assert await count(web.sessions, LoginSession) == 0


async def test_logout_ends_the_session(web) -> None:
    await web.login_as("agency")
    assert (await web.logout()).status_code == 303
    assert await count(web.sessions, LoginSession) == 0
    response = await web.client.get("/account", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
