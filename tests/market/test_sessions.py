from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from market.database import utcnow
from market.models import LoginSession, Organisation, User


async def _age_session(web, **changes) -> None:
    async with web.sessions() as session, session.begin():
        await session.execute(sa.update(LoginSession).values(**changes))


async def test_an_idle_session_expires(web, settings) -> None:
    await web.login_as("agency")
    assert (await web.client.get("/")).text.count("Agency home") >= 1
    await _age_session(web, last_seen_at=utcnow() - timedelta(minutes=settings.session_idle_minutes + 1))
    home = await web.client.get("/")
    assert "Agency home" not in home.text
    async with web.sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(LoginSession)) == 0


async def test_a_session_ends_after_its_absolute_lifetime_even_when_active(web, settings) -> None:
    await web.login_as("provider")
    await _age_session(web, created_at=utcnow() - timedelta(hours=settings.session_absolute_hours, minutes=1))
    assert "Provider home" not in (await web.client.get("/")).text


async def test_a_disabled_user_is_signed_out_at_the_next_request(web) -> None:
    user = await web.login_as("provider")
    async with web.sessions() as session, session.begin():
        await session.execute(sa.update(User).where(User.id == user.id).values(active=False))
    assert "Provider home" not in (await web.client.get("/")).text


async def test_users_of_a_deactivated_organisation_are_signed_out(web) -> None:
    user = await web.login_as("agency")
    async with web.sessions() as session, session.begin():
        await session.execute(
            sa.update(Organisation).where(Organisation.id == user.organisation_id).values(active=False)
        )
    assert "Agency home" not in (await web.client.get("/")).text


async def test_each_role_lands_on_its_own_home_page(web) -> None:
    headings = {
        "agency": "Agency home",
        "provider": "Provider home",
        "committee": "Committee home",
        "operator": "Operator home",
    }
    for kind, heading in headings.items():
        await web.login_as(kind)
        page = (await web.client.get("/")).text
        assert f"<h1>{heading}</h1>" in page
        assert all(f"<h1>{other}</h1>" not in page for other in headings.values() if other != heading)
        await web.logout()


async def test_the_language_switch_changes_the_page_language(web) -> None:
    await web.client.get("/")
    response = await web.submit("/language", {"language": "ko", "next": "/login"}, form_page="/")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    page = await web.client.get("/login")
    assert '<html lang="ko">' in page.text
    response = await web.submit("/language", {"language": "en", "next": "https://evil.example/"}, form_page="/")
    assert response.headers["location"] == "/"  # never off-site
    assert '<html lang="en">' in (await web.client.get("/")).text
