"""Joining an organisation proves the mailbox: confirmation links, the same answer for known and new addresses,
administrators told of newcomers and able to remove members, throttled account mail, password changes that end
everything, expiring API tokens, and passwords that are hard to guess."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from market import accounts, clock
from market.auth import SESSION_COOKIE, SystemActor, start_session
from market.errors import Invalid
from market.models import AgencyDomain, ApiToken, LoginSession, Organisation, PasswordReset, User
from tests.helpers import (
    PASSWORD,
    audit_actions,
    business_number,
    confirmation_links,
    count,
    mails_to,
    make_organisation,
    make_user,
)
from tests.market.test_tokens import bearer, make_token

NEW_PASSWORD = "a-much-better-passphrase"
CSRF_VALUE = re.compile(r'name="_csrf_token" value="[^"]+"')
RESET_LINK = re.compile(r"https?://\S+?(/password/reset/\S+)")


async def approved_agency(web, domain: str = "seoul.go.kr", name: str = "Seoul City") -> Organisation:
    agency = await make_organisation(web.sessions, "agency", name=name)
    async with web.sessions() as session, session.begin():
        session.add(AgencyDomain(organisation_id=agency.id, domain=domain))  # type: ignore[arg-type]
    return agency


def agency_form(
    email: str = "park@seoul.go.kr", name: str = "Park Buyer", password: str = NEW_PASSWORD
) -> dict[str, str]:
    return {"name": name, "email": email, "password": password, "password_confirm": password}


def provider_form(email: str, seed: int = 4242) -> dict[str, str]:
    return {
        "organisation_name": f"Hanul Cloud {seed}",
        "registration_number": business_number(seed),
        "contact_email": "sales@hanul.example.kr",
        "contact_phone": "02-555-1234",
        "is_sme": "yes",
        "name": "Kim Provider",
        "email": email,
        "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD,
    }


async def user_named(web, email: str) -> User:
    async with web.sessions() as session:
        return await session.scalar(sa.select(User).where(User.email == email))


async def reset_links(web, email: str) -> list[str]:
    return [
        match.group(1) for mail in await mails_to(web.sessions, email) if (match := RESET_LINK.search(mail["body"]))
    ]


def same_answer(one, other) -> None:
    """Status, where it leads, cookies and body alike (a page's CSRF token aside)."""
    assert one.status_code == other.status_code
    assert one.headers.get("location") == other.headers.get("location")
    assert sorted(one.cookies.keys()) == sorted(other.cookies.keys())
    assert CSRF_VALUE.sub("", one.text) == CSRF_VALUE.sub("", other.text)


# --- confirming the address -----------------------------------------------------------------------


async def test_a_self_registered_account_cannot_sign_in_until_the_address_is_confirmed(web) -> None:
    await approved_agency(web)
    await web.submit("/register/agency", agency_form())
    refused = await web.login("park@seoul.go.kr", NEW_PASSWORD)
    assert refused.status_code == 403 and SESSION_COOKIE not in web.client.cookies
    assert "Confirm your e-mail address first" in refused.text and 'href="/register/resend"' in refused.text
    wrong = await web.login("park@seoul.go.kr", "not-the-password-at-all")
    assert wrong.status_code == 401 and "Confirm your e-mail" not in wrong.text  # only the right password learns it
    assert (await web.confirm("park@seoul.go.kr")).headers["location"] == "/login"
    assert (await web.login("park@seoul.go.kr", NEW_PASSWORD)).status_code == 303


async def test_an_unconfirmed_accounts_session_and_token_are_refused(web) -> None:
    await approved_agency(web)
    await web.submit("/register/agency", agency_form())
    user = await user_named(web, "park@seoul.go.kr")
    async with web.sessions() as session, session.begin():
        organisation = await session.get(Organisation, user.organisation_id)
    _, raw = await make_token(web.sessions, user, organisation)
    async with web.sessions() as session, session.begin():
        cookie = await start_session(session, await session.get(User, user.id), "10.0.0.1", "test")
    assert (await web.client.get("/api/me", headers=bearer(raw))).status_code == 401
    web.client.cookies.set(SESSION_COOKIE, cookie)
    assert (await web.client.get("/account", follow_redirects=False)).status_code in (303, 401)
    await web.confirm("park@seoul.go.kr")
    assert (await web.client.get("/api/me", headers=bearer(raw))).status_code == 200


async def test_a_confirmation_link_works_once(web) -> None:
    await approved_agency(web)
    await web.submit("/register/agency", agency_form())
    [link] = await confirmation_links(web.sessions, "park@seoul.go.kr")
    assert (await web.client.get(link, follow_redirects=False)).status_code == 303
    again = await web.client.get(link, follow_redirects=False)
    assert again.status_code == 404 and "not valid" in again.text
    assert (await audit_actions(web.sessions)).count("user.confirm_email") == 1


async def test_a_confirmation_link_expires_after_24_hours_and_a_new_one_can_be_asked_for(web) -> None:
    await approved_agency(web)
    await web.submit("/register/agency", agency_form())
    [link] = await confirmation_links(web.sessions, "park@seoul.go.kr")
    with clock.travel(clock.now() + timedelta(hours=24, minutes=1)):
        assert (await web.client.get(link, follow_redirects=False)).status_code == 404
        assert (await user_named(web, "park@seoul.go.kr")).email_verified_at is None
        response = await web.submit("/register/resend", {"email": "Park@seoul.go.kr"})
        assert response.status_code == 303 and response.headers["location"] == "/register/check-mail"
        old, new = await confirmation_links(web.sessions, "park@seoul.go.kr")
        assert old == link and (await web.client.get(new, follow_redirects=False)).status_code == 303
    assert (await user_named(web, "park@seoul.go.kr")).email_verified_at is not None


async def test_a_link_opened_within_24_hours_still_works(web) -> None:
    await approved_agency(web)
    await web.submit("/register/agency", agency_form())
    with clock.travel(clock.now() + timedelta(hours=23, minutes=59)):
        assert (await web.confirm("park@seoul.go.kr")).status_code == 303


async def test_sending_the_link_again_is_throttled_to_three_an_hour_with_the_same_answer(web) -> None:
    await approved_agency(web)
    await web.submit("/register/agency", agency_form())  # the first link
    answers = [await web.submit("/register/resend", {"email": "park@seoul.go.kr"}) for _ in range(3)]
    assert len(await confirmation_links(web.sessions, "park@seoul.go.kr")) == 3
    unknown = await web.submit("/register/resend", {"email": "nobody@seoul.go.kr"})
    for answer in (*answers, unknown):
        same_answer(answer, answers[0])
    assert "user.confirmation_throttled" in await audit_actions(web.sessions)
    assert await mails_to(web.sessions, "nobody@seoul.go.kr") == []
    with clock.travel(clock.now() + timedelta(hours=1, minutes=1)):
        await web.submit("/register/resend", {"email": "park@seoul.go.kr"})
        assert len(await confirmation_links(web.sessions, "park@seoul.go.kr")) == 4


async def test_sending_the_link_again_to_a_confirmed_account_sends_nothing(web) -> None:
    user = await make_user(web.sessions, await make_organisation(web.sessions, "agency"))
    response = await web.submit("/register/resend", {"email": user.email})
    assert response.status_code == 303 and response.headers["location"] == "/register/check-mail"
    assert await mails_to(web.sessions, user.email) == []


async def test_the_resend_form_names_a_missing_address(web) -> None:
    response = await web.submit("/register/resend", {"email": ""})
    assert response.status_code == 422 and 'href="#field-email"' in response.text


async def test_accounts_made_by_invitation_operators_and_the_cli_factories_are_confirmed(web) -> None:
    user = await make_user(
        web.sessions, await make_organisation(web.sessions, "provider")
    )  # accounts.create_user, as the CLI and demo do
    assert user.email_verified_at is not None
    assert (await web.login(user.email)).status_code == 303


# --- the same answer whatever the address -----------------------------------------------------------


async def test_agency_registration_answers_alike_for_a_new_and_a_registered_address(web) -> None:
    agency = await approved_agency(web)
    existing = await make_user(web.sessions, agency, role="member", email="lee@seoul.go.kr")
    new = await web.submit("/register/agency", agency_form("park@seoul.go.kr"))
    known = await web.submit("/register/agency", agency_form("lee@seoul.go.kr", name="Someone Else"))
    same_answer(new, known)
    [mail] = await mails_to(web.sessions, existing.email)
    assert "already have an account" in mail["body"]
    assert "/login" in mail["body"] and "/password/forgot" in mail["body"] and "/register/confirm/" not in mail["body"]
    assert (await user_named(web, "lee@seoul.go.kr")).name == existing.name  # the account is untouched
    assert "registration.existing_address" in await audit_actions(web.sessions)


async def test_provider_registration_answers_alike_for_a_new_and_a_registered_address(web) -> None:
    existing = await make_user(
        web.sessions, await make_organisation(web.sessions, "agency"), email="kim@hanul.example.kr"
    )
    new = await web.submit("/register/provider", provider_form("choi@gaon.example.kr", seed=1))
    known = await web.submit("/register/provider", provider_form(existing.email, seed=2))
    same_answer(new, known)
    async with web.sessions() as session:
        names = set((await session.scalars(sa.select(Organisation.name))).all())
    assert "Hanul Cloud 1" in names and "Hanul Cloud 2" not in names  # nothing made for the known address
    [mail] = await mails_to(web.sessions, existing.email)
    assert "already have an account" in mail["body"]


async def test_the_check_mail_page_is_the_same_for_everyone(web) -> None:
    await approved_agency(web)
    await make_user(web.sessions, await make_organisation(web.sessions, "agency"), email="lee@seoul.go.kr")
    new = await web.submit("/register/agency", agency_form("park@seoul.go.kr"))
    first = await web.client.get(new.headers["location"])
    await web.submit("/register/agency", agency_form("lee@seoul.go.kr"))
    second = await web.client.get(new.headers["location"])
    same_answer(first, second)
    assert "Check your e-mail" in first.text and 'href="/register/resend"' in first.text


async def test_mails_to_a_registered_address_are_throttled_too(web) -> None:
    await approved_agency(web)
    existing = await make_user(web.sessions, await make_organisation(web.sessions, "agency"), email="lee@seoul.go.kr")
    for _ in range(4):
        assert (await web.submit("/register/agency", agency_form("lee@seoul.go.kr"))).status_code == 303
    assert len(await mails_to(web.sessions, existing.email)) == 3


async def test_a_registered_business_number_is_still_refused_by_name(web) -> None:
    await make_organisation(web.sessions, "provider", registration_number=business_number(7))
    existing = await make_user(web.sessions, await make_organisation(web.sessions, "agency"))
    response = await web.submit("/register/provider", provider_form(existing.email, seed=7))
    assert response.status_code == 409 and 'href="#field-registration_number"' in response.text
    assert await mails_to(web.sessions, existing.email) == []


# --- administrators -------------------------------------------------------------------------------


async def test_the_agencys_administrators_are_told_of_a_confirmed_newcomer(web) -> None:
    agency = await approved_agency(web)
    admin = await make_user(web.sessions, agency, role="admin", email="admin@seoul.go.kr")
    member = await make_user(web.sessions, agency, role="member", email="member@seoul.go.kr")
    await web.submit("/register/agency", agency_form())
    assert await mails_to(web.sessions, admin.email) == []  # not before the address is proven
    await web.confirm("park@seoul.go.kr")
    [mail] = await mails_to(web.sessions, admin.email)
    assert "Park Buyer" in mail["subject"] and "park@seoul.go.kr" in mail["body"] and "/organisation" in mail["body"]
    assert await mails_to(web.sessions, member.email) == []


async def test_an_admin_removes_a_member_whose_session_and_token_stop_working(web) -> None:
    agency = await approved_agency(web)
    member = await make_user(web.sessions, agency, role="member", email="park@seoul.go.kr")
    _, raw = await make_token(web.sessions, member, agency)
    async with web.sessions() as session, session.begin():
        member_cookie = await start_session(session, await session.get(User, member.id), "10.0.0.2", "member's browser")
    assert (await web.client.get("/api/me", headers=bearer(raw))).status_code == 200
    admin = await web.login_as("agency", organisation=agency)
    page = await web.client.get("/organisation")
    assert f'href="/organisation/members/{member.id}/remove"' in page.text
    assert f'href="/organisation/members/{admin.id}/remove"' not in page.text
    confirm = await web.client.get(f"/organisation/members/{member.id}/remove")
    assert confirm.status_code == 200 and "Only the marketplace operators can restore the account" in confirm.text
    removed = await web.submit(
        f"/organisation/members/{member.id}/remove", form_page=f"/organisation/members/{member.id}/remove"
    )
    assert removed.status_code == 303 and removed.headers["location"] == "/organisation"
    assert (await web.client.get("/api/me", headers=bearer(raw))).status_code == 401
    assert await count(web.sessions, LoginSession, LoginSession.user_id == member.id) == 0
    assert await count(web.sessions, ApiToken, ApiToken.user_id == member.id, ApiToken.revoked_at.is_(None)) == 0
    row = await user_named(web, member.email)
    assert not row.active and row.removed_at is not None
    assert (await audit_actions(web.sessions))[-1] == "user.remove"
    assert "Removed" in (await web.client.get("/organisation")).text
    enable = await web.submit(f"/organisation/members/{member.id}/enable", form_page="/organisation")
    assert enable.status_code == 303 and not (await user_named(web, member.email)).active  # removal is for good
    await web.logout()
    web.client.cookies.set(SESSION_COOKIE, member_cookie)
    assert "Sign in" in (await web.client.get("/account")).text
    web.client.cookies.delete(SESSION_COOKIE)
    assert (await web.login(member.email)).status_code == 401


async def test_an_admin_cannot_remove_themselves(web) -> None:
    admin = await web.login_as("provider")
    assert (await web.client.get(f"/organisation/members/{admin.id}/remove")).status_code == 409
    response = await web.submit(f"/organisation/members/{admin.id}/remove", form_page="/organisation")
    assert response.status_code == 303 and "cannot remove yourself" in (await web.client.get("/organisation")).text
    assert (await user_named(web, admin.email)).active


async def test_api_removes_a_member_and_refuses_oneself_and_twice(web) -> None:
    provider = await make_organisation(web.sessions, "provider")
    admin = await make_user(web.sessions, provider)
    member = await make_user(web.sessions, provider, role="member")
    _, raw = await make_token(web.sessions, admin, provider)
    _, member_raw = await make_token(web.sessions, member, provider)
    assert (
        await web.client.post(f"/api/organisation/members/{admin.id}/remove", headers=bearer(raw))
    ).status_code == 409
    removed = await web.client.post(f"/api/organisation/members/{member.id}/remove", headers=bearer(raw))
    assert removed.status_code == 200 and removed.json()["active"] is False and removed.json()["removed_at"]
    assert (await web.client.get("/api/me", headers=bearer(member_raw))).status_code == 401
    assert (
        await web.client.post(f"/api/organisation/members/{member.id}/remove", headers=bearer(raw))
    ).status_code == 409
    assert (
        await web.client.post(f"/api/organisation/members/{member.id}/enable", headers=bearer(raw))
    ).status_code == 409


async def test_an_operator_can_restore_a_removed_member(web) -> None:
    provider = await make_organisation(web.sessions, "provider")
    admin = await make_user(web.sessions, provider)
    member = await make_user(web.sessions, provider, role="member")
    _, raw = await make_token(web.sessions, admin, provider)
    await web.client.post(f"/api/organisation/members/{member.id}/remove", headers=bearer(raw))
    secretariat = await make_organisation(web.sessions, "operator")
    operator = await make_user(web.sessions, secretariat)
    _, operator_raw = await make_token(web.sessions, operator, secretariat)
    restored = await web.client.post(f"/api/operator/users/{member.id}/enable", headers=bearer(operator_raw))
    assert restored.status_code == 200
    row = await user_named(web, member.email)
    assert row.active and row.removed_at is None
    assert (await web.login(member.email)).status_code == 303


async def test_a_member_cannot_remove_anyone(web) -> None:
    provider = await make_organisation(web.sessions, "provider")
    admin = await make_user(web.sessions, provider)
    await web.login_as("provider", role="member", organisation=provider)
    assert (await web.submit(f"/organisation/members/{admin.id}/remove", form_page="/organisation")).status_code == 403
    assert (await user_named(web, admin.email)).removed_at is None


# --- password reset and change ---------------------------------------------------------------------


async def test_a_fourth_reset_request_within_the_hour_sends_nothing_and_is_recorded(web) -> None:
    user = await make_user(web.sessions, await make_organisation(web.sessions, "agency"))
    answers = [await web.submit("/password/forgot", {"email": user.email}) for _ in range(4)]
    for answer in answers[1:]:
        same_answer(answer, answers[0])
    assert len(await reset_links(web, user.email)) == 3
    assert (await audit_actions(web.sessions)).count("password.reset_throttled") == 1
    with clock.travel(clock.now() + timedelta(hours=1, minutes=1)):
        await web.submit("/password/forgot", {"email": user.email})
    assert len(await reset_links(web, user.email)) == 4


async def test_a_completed_reset_ends_other_links_sessions_and_tokens(web) -> None:
    organisation = await make_organisation(web.sessions, "agency")
    user = await make_user(web.sessions, organisation)
    _, raw = await make_token(web.sessions, user, organisation)
    async with web.sessions() as session, session.begin():
        await start_session(session, await session.get(User, user.id), "10.0.0.9", "other browser")
    await web.submit("/password/forgot", {"email": user.email})
    await web.submit("/password/forgot", {"email": user.email})
    first, second = await reset_links(web, user.email)
    assert (await web.submit(second, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})).status_code == 303
    assert (await web.client.get(first)).status_code == 404
    assert await count(web.sessions, LoginSession, LoginSession.user_id == user.id) == 0
    assert (await web.client.get("/api/me", headers=bearer(raw))).status_code == 401
    assert await count(web.sessions, ApiToken, ApiToken.revoked_at.is_(None)) == 0


async def test_a_password_change_ends_reset_links_and_tokens_but_keeps_this_browser(web) -> None:
    organisation = await make_organisation(web.sessions, "provider")
    user = await make_user(web.sessions, organisation)
    _, raw = await make_token(web.sessions, user, organisation)
    await web.submit("/password/forgot", {"email": user.email})
    [link] = await reset_links(web, user.email)
    assert (await web.login(user.email)).status_code == 303
    changed = await web.submit(
        "/account/password",
        {"current_password": PASSWORD, "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        form_page="/account",
    )
    assert changed.status_code == 303
    assert (await web.client.get("/account")).status_code == 200
    assert (await web.client.get("/api/me", headers=bearer(raw))).status_code == 401
    assert (await web.client.get(link)).status_code == 404


async def test_a_reset_confirms_an_address_not_yet_confirmed(web) -> None:
    await approved_agency(web)
    await web.submit("/register/agency", agency_form())
    await web.submit("/password/forgot", {"email": "park@seoul.go.kr"})
    [link] = await reset_links(web, "park@seoul.go.kr")
    await web.submit(link, {"password": "another-horse-battery", "password_confirm": "another-horse-battery"})
    assert (await web.login("park@seoul.go.kr", "another-horse-battery")).status_code == 303


# --- API token expiry -----------------------------------------------------------------------------


async def test_a_token_lives_90_days_by_default_and_is_refused_after(web) -> None:
    organisation = await make_organisation(web.sessions, "provider")
    user = await make_user(web.sessions, organisation)
    token, raw = await make_token(web.sessions, user, organisation)
    assert token.expires_at - clock.now() > timedelta(days=89, hours=23)
    assert token.expires_at - clock.now() <= timedelta(days=90)
    with clock.travel(clock.now() + timedelta(days=89)):
        assert (await web.client.get("/api/me", headers=bearer(raw))).status_code == 200
    with clock.travel(clock.now() + timedelta(days=90, minutes=1)):
        refused = await web.client.get("/api/me", headers=bearer(raw))
        assert refused.status_code == 401


@pytest.mark.parametrize(("days", "status"), [(0, 422), (1, 201), (365, 201), (366, 422), (-5, 422), (10**30, 422)])
async def test_api_token_lifetime_is_between_1_and_365_days(web, days: int, status: int) -> None:
    organisation = await make_organisation(web.sessions, "agency")
    user = await make_user(web.sessions, organisation)
    _, raw = await make_token(web.sessions, user, organisation)
    response = await web.client.post("/api/tokens", json={"name": "ci", "lifetime_days": days}, headers=bearer(raw))
    assert response.status_code == status, response.text
    if status == 201:
        expires = response.json()["expires_at"]
        async with web.sessions() as session:
            token = await session.scalar(sa.select(ApiToken).where(ApiToken.name == "ci"))
        assert token.expires_at.isoformat()[:16] == expires[:16]
        assert timedelta(days=days) - timedelta(minutes=1) <= token.expires_at - clock.now() <= timedelta(days=days)
    else:
        assert "lifetime_days" in response.json()["errors"]
        assert await count(web.sessions, ApiToken) == 1


async def test_the_account_page_takes_a_lifetime_and_shows_each_tokens_expiry(web) -> None:
    user = await web.login_as("agency")
    refused = await web.submit(
        "/account/tokens", {"token_name": "nightly", "lifetime_days": "400"}, form_page="/account"
    )
    assert (
        refused.status_code == 422
        and 'href="#field-lifetime_days"' in refused.text
        and 'value="nightly"' in refused.text
    )
    created = await web.submit("/account/tokens", {"token_name": "nightly", "lifetime_days": "7"}, form_page="/account")
    assert created.status_code == 201
    async with web.sessions() as session:
        token = await session.scalar(sa.select(ApiToken).where(ApiToken.user_id == user.id))
    assert timedelta(days=7) - timedelta(minutes=1) <= token.expires_at - clock.now() <= timedelta(days=7)
    page = await web.client.get("/account")
    assert 'name="lifetime_days"' in page.text and "Expires" in page.text and "Expired" not in page.text
    async with web.sessions() as session, session.begin():
        await session.execute(sa.update(ApiToken).values(expires_at=clock.now() - timedelta(minutes=1)))
    assert "Expired" in (await web.client.get("/account")).text


# --- guessable passwords --------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["password1234", "qwertyuiop12", "1234567890"])
def test_common_passwords_are_refused(password: str) -> None:
    with pytest.raises(Invalid) as refused:
        accounts.check_password(password)
    assert "guess" in refused.value.errors["password"]


def test_a_password_made_of_the_users_own_name_and_address_is_refused() -> None:
    guessable = "minsu.kim@hanul.example.kr1"
    accounts.check_password(guessable)  # strong enough for a stranger
    with pytest.raises(Invalid):
        accounts.check_password(guessable, email="minsu.kim@hanul.example.kr", name="Kim Minsu")


@pytest.mark.parametrize("password", [PASSWORD, NEW_PASSWORD, "demo-password-2026", "another-horse-battery"])
def test_the_passwords_the_demo_and_tests_use_pass(password: str) -> None:
    accounts.check_password(password, email="someone@example.go.kr", name="Some One")


@pytest.mark.parametrize("password", ["password1234", "Park Buyer 2026"])
async def test_registration_refuses_a_guessable_password_and_writes_nothing(web, password: str) -> None:
    await approved_agency(web)
    users = await count(web.sessions, User)
    response = await web.submit("/register/agency", agency_form(password=password))
    assert (
        response.status_code == 422
        and 'href="#field-password"' in response.text
        and "Too easy to guess" in response.text
    )
    assert await count(web.sessions, User) == users
    assert await mails_to(web.sessions, "park@seoul.go.kr") == []


async def test_accepting_an_invitation_refuses_a_guessable_password(web) -> None:
    provider = await make_organisation(web.sessions, "provider", name="Hanul Cloud")
    admin = await make_user(web.sessions, provider)
    async with web.sessions() as session, session.begin():
        actor = SystemActor(email=admin.email, user_id=admin.id, organisation_id=provider.id)
        await accounts.create_invitation(
            session, web.client.app.state["settings"], actor, organisation=provider, email="minsu.kim@hanul.example.kr"
        )
    [mail] = await mails_to(web.sessions, "minsu.kim@hanul.example.kr")
    link = re.search(r"https?://\S+?(/invitations/\S+)", mail["body"]).group(1)
    form = {
        "name": "Kim Minsu",
        "password": "minsu.kim@hanul.example.kr1",
        "password_confirm": "minsu.kim@hanul.example.kr1",
    }
    refused = await web.submit(link, form)
    assert refused.status_code == 422 and "Too easy to guess" in refused.text
    assert await count(web.sessions, User) == 1
    accepted = await web.submit(link, {**form, "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert (
        accepted.status_code == 303
        and (await user_named(web, "minsu.kim@hanul.example.kr")).email_verified_at is not None
    )


async def test_reset_and_change_refuse_a_guessable_password(web) -> None:
    user = await web.login_as("provider")
    changed = await web.submit(
        "/account/password",
        {"current_password": PASSWORD, "password": "qwertyuiop12", "password_confirm": "qwertyuiop12"},
        form_page="/account",
    )
    assert changed.status_code == 422 and "Too easy to guess" in changed.text
    await web.submit("/password/forgot", {"email": user.email})
    [link] = await reset_links(web, user.email)
    reset = await web.submit(link, {"password": "password1234", "password_confirm": "password1234"})
    assert reset.status_code == 422 and "Too easy to guess" in reset.text
    async with web.sessions() as session:
        assert (await session.scalar(sa.select(PasswordReset))).used_at is None
