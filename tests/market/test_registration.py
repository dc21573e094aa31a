from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from market import accounts
from market.auth import SESSION_COOKIE, SystemActor, start_session
from market.database import utcnow
from market.models import (
    AgencyDomain,
    AuditEvent,
    Invitation,
    LoginSession,
    Organisation,
    OutboxMessage,
    PasswordReset,
    User,
)
from market.security import verify_password
from tests.helpers import PASSWORD, audit_actions, business_number, count, mails_to, make_organisation, make_user

NEW_PASSWORD = "a-much-better-passphrase"
LINK = re.compile(r"https?://\S+/(invitations|password/reset)/(\S+)")


def provider_form(**changes: str) -> dict[str, str]:
    form = {
        "organisation_name": "Hanul Cloud Co.",
        "registration_number": business_number(4242),
        "contact_email": "sales@hanul.example.kr",
        "contact_phone": "02-555-1234",
        "is_sme": "yes",
        "name": "Kim Provider",
        "email": "Kim@Hanul.example.kr",
        "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD,
    }
    form.update(changes)
    return form


async def rows(sessions) -> tuple[int, int, int, int]:
    return (
        await count(sessions, Organisation),
        await count(sessions, User),
        await count(sessions, AuditEvent),
        await count(sessions, LoginSession),
    )


async def links_sent_to(sessions, email: str) -> list[str]:
    """The links in the e-mails queued for `email`, oldest first."""
    async with sessions() as session:
        payloads = (await session.scalars(sa.select(OutboxMessage.payload).order_by(OutboxMessage.id))).all()
    found = []
    for payload in map(json.loads, payloads):
        if payload["to"] == email:
            match = LINK.search(payload["body"])
            assert match, payload["body"]
            found.append("/" + match.group(1) + "/" + match.group(2))
    return found


async def approve_domain(sessions, organisation: Organisation, domain: str) -> None:
    async with sessions() as session, session.begin():
        session.add(AgencyDomain(organisation_id=organisation.id, domain=domain))  # type: ignore[arg-type]


# --- provider -------------------------------------------------------------------------------------


async def test_provider_registration_creates_the_organisation_and_its_admin_who_signs_in_once_the_address_is_confirmed(
    web,
) -> None:
    response = await web.submit("/register/provider", provider_form())
    assert response.status_code == 303 and response.headers["location"] == "/register/check-mail"
    assert SESSION_COOKIE not in web.client.cookies
    async with web.sessions() as session:
        organisation = await session.scalar(sa.select(Organisation))
        user = await session.scalar(sa.select(User))
    assert organisation.kind == "provider" and organisation.name == "Hanul Cloud Co." and organisation.is_sme
    assert organisation.registration_number == accounts.normalise_business_number(business_number(4242))
    assert user.email == "kim@hanul.example.kr" and user.role == "admin" and user.organisation_id == organisation.id
    assert verify_password(user.password_hash, NEW_PASSWORD) and user.email_verified_at is None
    assert "Check your e-mail" in (await web.client.get("/register/check-mail")).text
    confirmed = await web.confirm(user.email)
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/login"
    assert (await web.login(user.email, NEW_PASSWORD)).status_code == 303
    assert "Provider home" in (await web.client.get("/")).text
    assert await audit_actions(web.sessions) == [
        "organisation.create",
        "user.create",
        "user.confirmation_sent",
        "user.confirm_email",
        "user.login",
    ]


async def test_provider_registration_with_a_wrong_check_digit_is_refused_and_writes_nothing(web) -> None:
    number = business_number(77)
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    response = await web.submit("/register/provider", provider_form(registration_number=wrong))
    assert response.status_code == 422 and response.headers["content-type"].startswith("text/html")
    assert 'href="#field-registration_number"' in response.text and "check digit" in response.text
    assert await rows(web.sessions) == (0, 0, 0, 0)


async def test_provider_registration_names_every_missing_field(web) -> None:
    response = await web.submit("/register/provider", {})
    assert response.status_code == 422
    for name in (
        "organisation_name",
        "registration_number",
        "contact_email",
        "contact_phone",
        "is_sme",
        "name",
        "email",
        "password",
        "password_confirm",
    ):
        assert f'href="#field-{name}"' in response.text, name
    assert await rows(web.sessions) == (0, 0, 0, 0)


async def test_provider_registration_with_mismatched_passwords_is_refused_and_keeps_the_other_answers(web) -> None:
    response = await web.submit("/register/provider", provider_form(password_confirm=NEW_PASSWORD + "x"))
    assert response.status_code == 422
    assert 'href="#field-password_confirm"' in response.text and "The two passwords do not match." in response.text
    assert 'value="Hanul Cloud Co."' in response.text  # the form is filled in again
    assert NEW_PASSWORD not in response.text  # but never with the password
    assert await rows(web.sessions) == (0, 0, 0, 0)


async def test_provider_registration_with_a_short_password_is_refused(web) -> None:
    response = await web.submit("/register/provider", provider_form(password="short", password_confirm="short"))
    assert response.status_code == 422
    assert 'href="#field-password"' in response.text and "At least 10 characters." in response.text
    assert await rows(web.sessions) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("field", "size"),
    [("organisation_name", 201), ("name", 121), ("email", 255), ("password", 201), ("contact_phone", 41)],
)
async def test_provider_registration_with_an_oversized_value_is_refused(web, field: str, size: int) -> None:
    value = ("a" * size) if field != "email" else ("a" * (size - 11) + "@example.kr")
    changes = {field: value, "password_confirm": value} if field == "password" else {field: value}
    response = await web.submit("/register/provider", provider_form(**changes))
    assert response.status_code == 422
    assert f'href="#field-{field}"' in response.text
    assert await rows(web.sessions) == (0, 0, 0, 0)


async def test_provider_registration_with_bad_contact_details_names_both_fields(web) -> None:
    response = await web.submit(
        "/register/provider", provider_form(contact_email="not-an-address", contact_phone="call me")
    )
    assert response.status_code == 422
    assert 'href="#field-contact_email"' in response.text and 'href="#field-contact_phone"' in response.text
    assert await rows(web.sessions) == (0, 0, 0, 0)


async def test_provider_registration_with_an_address_already_registered_creates_no_organisation_and_tells_the_mailbox(
    web,
) -> None:
    existing = await make_user(web.sessions, await make_organisation(web.sessions, "agency"))
    organisations, users = await count(web.sessions, Organisation), await count(web.sessions, User)
    response = await web.submit("/register/provider", provider_form(email=existing.email))
    assert response.status_code == 303 and response.headers["location"] == "/register/check-mail"
    assert (await count(web.sessions, Organisation), await count(web.sessions, User)) == (organisations, users)
    [mail] = await mails_to(web.sessions, existing.email)
    assert "already have an account" in mail["body"] and "/register/confirm/" not in mail["body"]


async def test_provider_registration_with_a_registered_business_number_is_refused(web) -> None:
    await make_organisation(web.sessions, "provider", registration_number=business_number(4242))
    before = await rows(web.sessions)
    response = await web.submit("/register/provider", provider_form())
    assert response.status_code == 409
    assert 'href="#field-registration_number"' in response.text
    assert await rows(web.sessions) == before


# --- agency ---------------------------------------------------------------------------------------


async def test_agency_user_with_an_approved_domain_joins_the_agency_as_a_buyer_once_the_address_is_confirmed(
    web,
) -> None:
    agency = await make_organisation(web.sessions, "agency", name="Seoul City")
    await approve_domain(web.sessions, agency, "seoul.go.kr")
    response = await web.submit(
        "/register/agency",
        {"name": "Park Buyer", "email": "park@Seoul.go.kr", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
    )
    assert response.status_code == 303 and response.headers["location"] == "/register/check-mail"
    async with web.sessions() as session:
        user = await session.scalar(sa.select(User).where(User.email == "park@seoul.go.kr"))
    assert user.organisation_id == agency.id and user.role == "buyer" and user.email_verified_at is None
    assert (await web.confirm("park@seoul.go.kr")).status_code == 303
    assert (await web.login("park@seoul.go.kr", NEW_PASSWORD)).status_code == 303
    home = await web.client.get("/")
    assert "Agency home" in home.text and "Park Buyer" in home.text
    assert (await audit_actions(web.sessions))[-4:] == [
        "user.create",
        "user.confirmation_sent",
        "user.confirm_email",
        "user.login",
    ]


async def test_agency_registration_with_an_unapproved_domain_asks_for_an_invitation_and_writes_nothing(web) -> None:
    agency = await make_organisation(web.sessions, "agency")
    await approve_domain(web.sessions, agency, "seoul.go.kr")
    before = await rows(web.sessions)
    response = await web.submit(
        "/register/agency",
        {"name": "Eve", "email": "eve@evil.example.kr", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
    )
    assert response.status_code == 422
    assert 'href="#field-email"' in response.text and "invitation" in response.text
    assert await rows(web.sessions) == before


async def test_agency_registration_does_not_accept_a_subdomain_of_an_approved_domain(web) -> None:
    agency = await make_organisation(web.sessions, "agency")
    await approve_domain(web.sessions, agency, "seoul.go.kr")
    response = await web.submit(
        "/register/agency",
        {"name": "Eve", "email": "eve@x.seoul.go.kr", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
    )
    assert response.status_code == 422
    assert await count(web.sessions, User) == 0


async def test_agency_registration_with_mismatched_passwords_is_refused(web) -> None:
    agency = await make_organisation(web.sessions, "agency")
    await approve_domain(web.sessions, agency, "seoul.go.kr")
    response = await web.submit(
        "/register/agency",
        {"name": "Park", "email": "park@seoul.go.kr", "password": NEW_PASSWORD, "password_confirm": "something-else-1"},
    )
    assert response.status_code == 422 and 'href="#field-password_confirm"' in response.text
    assert await count(web.sessions, User) == 0


# --- invitations ----------------------------------------------------------------------------------


async def invite(web, email: str = "new.colleague@hanul.example.kr", role: str = "signer") -> tuple[Organisation, str]:
    provider = await make_organisation(web.sessions, "provider", name="Hanul Cloud")
    admin = await make_user(web.sessions, provider)
    async with web.sessions() as session, session.begin():
        actor = SystemActor(email=admin.email, user_id=admin.id, organisation_id=provider.id)
        await accounts.create_invitation(
            session, web.client.app.state["settings"], actor, organisation=provider, email=email, role=role
        )
    [link] = await links_sent_to(web.sessions, email)
    return provider, link


async def test_invitation_page_shows_the_organisation_and_the_invited_address(web) -> None:
    _, link = await invite(web)
    page = await web.client.get(link)
    assert page.status_code == 200
    assert "Hanul Cloud" in page.text and "new.colleague@hanul.example.kr" in page.text


async def test_accepting_an_invitation_creates_the_member_and_signs_in(web) -> None:
    provider, link = await invite(web, role="admin")
    response = await web.submit(
        link, {"name": "New Colleague", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}
    )
    assert response.status_code == 303
    async with web.sessions() as session:
        user = await session.scalar(sa.select(User).where(User.email == "new.colleague@hanul.example.kr"))
        invitation = await session.scalar(sa.select(Invitation))
    assert user.organisation_id == provider.id and user.role == "admin" and user.name == "New Colleague"
    assert invitation.accepted_at is not None
    assert "New Colleague" in (await web.client.get("/")).text
    assert (await audit_actions(web.sessions))[-3:] == ["user.create", "invitation.accept", "user.login"]


async def test_an_invitation_link_works_only_once(web) -> None:
    _, link = await invite(web)
    await web.submit(link, {"name": "New Colleague", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    await web.logout()
    assert (await web.client.get(link)).status_code == 404
    response = await web.client.post(
        link,
        data={
            "_csrf_token": await web.csrf("/login"),
            "name": "Again",
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
        },
    )
    assert response.status_code == 404
    assert await count(web.sessions, User) == 2


async def test_an_expired_invitation_answers_404(web) -> None:
    _, link = await invite(web)
    async with web.sessions() as session, session.begin():
        await session.execute(sa.update(Invitation).values(expires_at=utcnow() - timedelta(minutes=1)))
    assert (await web.client.get(link)).status_code == 404


async def test_accepting_an_invitation_with_a_weak_password_writes_nothing_and_keeps_the_link(web) -> None:
    _, link = await invite(web)
    before = await rows(web.sessions)
    response = await web.submit(link, {"name": "New Colleague", "password": "short", "password_confirm": "short"})
    assert response.status_code == 422 and 'href="#field-password"' in response.text
    assert await rows(web.sessions) == before
    assert (await web.client.get(link)).status_code == 200


async def test_an_unknown_invitation_token_answers_404(web) -> None:
    assert (await web.client.get("/invitations/not-a-real-token")).status_code == 404


# --- password reset -------------------------------------------------------------------------------


async def test_forgotten_password_gives_the_same_answer_whether_or_not_the_account_exists(web) -> None:
    user = await make_user(web.sessions, await make_organisation(web.sessions, "provider"))
    known = await web.submit("/password/forgot", {"email": user.email})
    unknown = await web.submit("/password/forgot", {"email": "nobody@example.kr"})
    assert known.status_code == unknown.status_code == 303
    assert known.headers["location"] == unknown.headers["location"]
    shown_known = (await web.client.get(known.headers["location"])).text
    assert "If an account exists for that address" in shown_known
    assert len(await links_sent_to(web.sessions, user.email)) == 1
    assert await links_sent_to(web.sessions, "nobody@example.kr") == []


async def test_forgotten_password_without_an_address_names_the_field(web) -> None:
    response = await web.submit("/password/forgot", {"email": ""})
    assert response.status_code == 422 and 'href="#field-email"' in response.text
    assert await count(web.sessions, OutboxMessage) == 0


async def test_reset_link_sets_the_new_password_and_ends_every_session(web) -> None:
    user = await make_user(web.sessions, await make_organisation(web.sessions, "agency"))
    async with web.sessions() as session, session.begin():
        await start_session(session, await session.get(User, user.id), "10.0.0.9", "other browser")
    await web.submit("/password/forgot", {"email": user.email})
    [link] = await links_sent_to(web.sessions, user.email)
    assert (await web.client.get(link)).status_code == 200
    response = await web.submit(link, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert await count(web.sessions, LoginSession) == 0
    assert (await web.login(user.email, PASSWORD)).status_code == 401
    assert (await web.login(user.email, NEW_PASSWORD)).status_code == 303
    assert "password.change" in await audit_actions(web.sessions)


async def test_a_reset_link_works_only_once(web) -> None:
    user = await make_user(web.sessions, await make_organisation(web.sessions, "agency"))
    await web.submit("/password/forgot", {"email": user.email})
    [link] = await links_sent_to(web.sessions, user.email)
    await web.submit(link, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert (await web.client.get(link)).status_code == 404
    again = await web.client.post(
        link,
        data={
            "_csrf_token": await web.csrf("/login"),
            "password": "third-password-x",
            "password_confirm": "third-password-x",
        },
    )
    assert again.status_code == 404
    async with web.sessions() as session:
        assert verify_password((await session.get(User, user.id)).password_hash, NEW_PASSWORD)


async def test_an_expired_reset_link_answers_404_and_changes_nothing(web) -> None:
    user = await make_user(web.sessions, await make_organisation(web.sessions, "agency"))
    await web.submit("/password/forgot", {"email": user.email})
    [link] = await links_sent_to(web.sessions, user.email)
    async with web.sessions() as session, session.begin():
        await session.execute(sa.update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert (await web.client.get(link)).status_code == 404
    response = await web.client.post(
        link, data={"_csrf_token": await web.csrf("/login"), "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}
    )
    assert response.status_code == 404
    async with web.sessions() as session:
        assert verify_password((await session.get(User, user.id)).password_hash, PASSWORD)


async def test_reset_with_mismatched_passwords_is_refused_and_the_link_stays_usable(web) -> None:
    user = await make_user(web.sessions, await make_organisation(web.sessions, "agency"))
    await web.submit("/password/forgot", {"email": user.email})
    [link] = await links_sent_to(web.sessions, user.email)
    response = await web.submit(link, {"password": NEW_PASSWORD, "password_confirm": "not-the-same-one"})
    assert response.status_code == 422 and 'href="#field-password_confirm"' in response.text
    async with web.sessions() as session:
        assert verify_password((await session.get(User, user.id)).password_hash, PASSWORD)
        assert (await session.scalar(sa.select(PasswordReset))).used_at is None
    assert (await web.client.get(link)).status_code == 200


async def test_registration_pages_show_their_forms(web) -> None:
    for path in ("/register/provider", "/register/agency", "/password/forgot"):
        page = await web.client.get(path)
        assert page.status_code == 200 and 'name="_csrf_token"' in page.text, path
    assert SESSION_COOKIE not in web.client.cookies
