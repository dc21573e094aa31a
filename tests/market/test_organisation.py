from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa

from market import accounts
from market.auth import SystemActor, start_session
from market.database import utcnow
from market.models import AuditEvent, Invitation, LoginSession, OutboxMessage, User
from tests.helpers import audit_actions, count, make_organisation, make_user
from tests.market.test_tokens import bearer, make_token


async def member_row(web, user_id: int) -> User:
    async with web.sessions() as session:
        return await session.get(User, user_id)


async def writes(web) -> tuple[int, int, int, int]:
    """What a change would leave; a refusal's own security event is counted apart (`refusals`)."""
    return (
        await count(web.sessions, AuditEvent, ~AuditEvent.action.startswith("security.")),
        await count(web.sessions, Invitation),
        await count(web.sessions, OutboxMessage),
        await count(web.sessions, LoginSession),
    )


async def refusals(web) -> int:
    return await count(web.sessions, AuditEvent, AuditEvent.action == "security.refused")


# --- the page -------------------------------------------------------------------------------------


async def test_the_page_lists_members_and_open_invitations(web) -> None:
    organisation = await make_organisation(web.sessions, "provider", name="Hanul Cloud")
    colleague = await make_user(web.sessions, organisation, role="member", name="Choi Colleague")
    admin = await web.login_as("provider", organisation=organisation)
    async with web.sessions() as session, session.begin():
        actor = SystemActor(email=admin.email, user_id=admin.id, organisation_id=organisation.id)
        settings = web.client.app.state["settings"]
        await accounts.create_invitation(
            session, settings, actor, organisation=organisation, email="open@hanul.example.kr"
        )
        expired = await accounts.create_invitation(
            session, settings, actor, organisation=organisation, email="late@hanul.example.kr"
        )
        expired.expires_at = utcnow() - timedelta(days=1)
    page = await web.client.get("/organisation")
    assert page.status_code == 200
    assert "Hanul Cloud" in page.text and "Choi Colleague" in page.text and colleague.email in page.text
    assert "open@hanul.example.kr" in page.text and "late@hanul.example.kr" not in page.text
    assert 'action="/organisation/invitations"' in page.text
    assert f'action="/organisation/members/{colleague.id}/disable"' in page.text
    assert f'action="/organisation/members/{admin.id}/disable"' not in page.text  # not on oneself


async def test_members_see_the_page_read_only_and_cannot_invite(web) -> None:
    organisation = await make_organisation(web.sessions, "agency")
    admin = await make_user(web.sessions, organisation, name="Agency Admin")
    await web.login_as("agency", role="member", organisation=organisation)
    page = await web.client.get("/organisation")
    assert page.status_code == 200 and "Agency Admin" in page.text
    assert 'action="/organisation/invitations"' not in page.text and "/disable" not in page.text
    before = await writes(web)
    response = await web.submit(
        "/organisation/invitations", {"email": "x@agency.example.kr", "role": "member"}, form_page="/organisation"
    )
    assert response.status_code == 403
    disable = await web.submit(f"/organisation/members/{admin.id}/disable", form_page="/organisation")
    assert disable.status_code == 403
    assert (await member_row(web, admin.id)).active
    assert await writes(web) == before


async def test_committee_and_operator_organisation_pages_are_read_only_even_for_admins(web) -> None:
    for kind in ("committee", "operator"):
        organisation = await make_organisation(web.sessions, kind)
        colleague = await make_user(web.sessions, organisation, role="member")
        await web.login_as(kind, organisation=organisation)
        page = await web.client.get("/organisation")
        assert page.status_code == 200 and "appointed by the marketplace operators" in page.text
        assert 'action="/organisation/invitations"' not in page.text
        before = await writes(web)
        response = await web.submit(
            "/organisation/invitations",
            {"email": f"new@{kind}.example.kr", "role": "member"},
            form_page="/organisation",
        )
        assert response.status_code == 403
        assert (
            await web.submit(f"/organisation/members/{colleague.id}/disable", form_page="/organisation")
        ).status_code == 403
        assert (await member_row(web, colleague.id)).active
        assert await writes(web) == before


async def test_an_admin_invites_a_colleague_by_email(web) -> None:
    admin = await web.login_as("provider")
    response = await web.submit(
        "/organisation/invitations", {"email": "New@Provider.example.kr", "role": "admin"}, form_page="/organisation"
    )
    assert response.status_code == 303
    async with web.sessions() as session:
        invitation = await session.scalar(sa.select(Invitation))
        message = await session.scalar(sa.select(OutboxMessage))
    assert invitation.email == "new@provider.example.kr" and invitation.role == "admin"
    assert invitation.organisation_id == admin.organisation_id and invitation.invited_by_id == admin.id
    assert json.loads(message.payload)["to"] == "new@provider.example.kr"
    assert "/invitations/" in json.loads(message.payload)["body"]
    assert (await audit_actions(web.sessions))[-1] == "invitation.create"
    assert "new@provider.example.kr" in (await web.client.get("/organisation")).text


async def test_an_invitation_with_a_bad_address_or_role_is_refused_and_writes_nothing(web) -> None:
    await web.login_as("provider")
    before = await writes(web)
    for form, field in (
        ({"email": "not-an-address", "role": "member"}, "email"),
        ({"email": "", "role": "member"}, "email"),
        ({"email": "a" * 250 + "@example.kr", "role": "member"}, "email"),
        ({"email": "ok@provider.example.kr", "role": "owner"}, "role"),
    ):
        response = await web.submit("/organisation/invitations", form, form_page="/organisation")
        assert response.status_code == 422, form
        assert response.headers["content-type"].startswith("text/html")
        assert f'href="#field-{field}"' in response.text, form
    assert await writes(web) == before


async def test_inviting_an_address_that_has_an_account_is_refused(web) -> None:
    existing = await make_user(web.sessions, await make_organisation(web.sessions, "agency"))
    await web.login_as("provider")
    before = await writes(web)
    response = await web.submit(
        "/organisation/invitations", {"email": existing.email, "role": "signer"}, form_page="/organisation"
    )
    assert response.status_code == 409 and 'href="#field-email"' in response.text
    assert await writes(web) == before


async def test_disabling_a_member_ends_their_sessions_and_stops_their_tokens(web) -> None:
    organisation = await make_organisation(web.sessions, "agency")
    member = await make_user(web.sessions, organisation, role="member")
    _, raw = await make_token(web.sessions, member, organisation)
    async with web.sessions() as session, session.begin():
        await start_session(session, await session.get(User, member.id), "10.0.0.8", "their browser")
    assert (await web.client.get("/api/me", headers=bearer(raw))).status_code == 200
    await web.login_as("agency", organisation=organisation)
    response = await web.submit(f"/organisation/members/{member.id}/disable", form_page="/organisation")
    assert response.status_code == 303
    assert not (await member_row(web, member.id)).active
    assert await count(web.sessions, LoginSession, LoginSession.user_id == member.id) == 0
    assert (await web.client.get("/api/me", headers=bearer(raw))).status_code == 401
    assert (await audit_actions(web.sessions))[-1] == "user.disable"


async def test_a_disabled_members_session_cookie_stops_working(web) -> None:
    organisation = await make_organisation(web.sessions, "provider")
    member = await make_user(web.sessions, organisation, role="member")
    admin = await make_user(web.sessions, organisation, role="admin")
    assert (await web.login(member.email)).status_code == 303
    member_cookie = web.client.cookies.get("market_session")
    async with web.sessions() as session, session.begin():
        principal = accounts.Principal(
            admin.id,
            admin.email,
            admin.name,
            organisation.id,
            organisation.kind,
            organisation.name,
            "admin",
            None,
            "",  # type: ignore[arg-type]
        )
        await accounts.set_member_active(session, principal, member.id, active=False)  # type: ignore[arg-type]
    web.client.cookies.set("market_session", member_cookie)
    response = await web.client.get("/account", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def test_a_disabled_member_can_be_enabled_again(web) -> None:
    organisation = await make_organisation(web.sessions, "provider")
    member = await make_user(web.sessions, organisation, role="member")
    await web.login_as("provider", organisation=organisation)
    await web.submit(f"/organisation/members/{member.id}/disable", form_page="/organisation")
    page = await web.client.get("/organisation")
    assert f'action="/organisation/members/{member.id}/enable"' in page.text
    response = await web.submit(f"/organisation/members/{member.id}/enable", form_page="/organisation")
    assert response.status_code == 303
    assert (await member_row(web, member.id)).active
    assert (await audit_actions(web.sessions))[-2:] == ["user.disable", "user.enable"]


async def test_an_admin_cannot_disable_themselves(web) -> None:
    admin = await web.login_as("provider")
    before = await writes(web)
    response = await web.submit(f"/organisation/members/{admin.id}/disable", form_page="/organisation")
    assert response.status_code == 303
    assert "cannot disable or enable your own account" in (await web.client.get("/organisation")).text
    assert (await member_row(web, admin.id)).active
    assert await writes(web) == before


async def test_an_admin_changes_a_members_role(web) -> None:
    organisation = await make_organisation(web.sessions, "agency")
    member = await make_user(web.sessions, organisation, role="member")
    await web.login_as("agency", organisation=organisation)
    response = await web.submit(f"/organisation/members/{member.id}/role", {"role": "admin"}, form_page="/organisation")
    assert response.status_code == 303
    assert (await member_row(web, member.id)).role == "admin"
    assert (await audit_actions(web.sessions))[-1] == "user.role_change"


async def test_an_admin_cannot_change_their_own_role_or_set_an_unknown_one(web) -> None:
    organisation = await make_organisation(web.sessions, "agency")
    member = await make_user(web.sessions, organisation, role="member")
    admin = await web.login_as("agency", organisation=organisation)
    before = await writes(web)
    own = await web.submit(f"/organisation/members/{admin.id}/role", {"role": "buyer"}, form_page="/organisation")
    unknown = await web.submit(f"/organisation/members/{member.id}/role", {"role": "owner"}, form_page="/organisation")
    assert own.status_code == 409 and unknown.status_code == 422, (own.status_code, unknown.status_code)
    assert "role" in unknown.text
    assert (await member_row(web, admin.id)).role == "admin"
    assert (await member_row(web, member.id)).role == "buyer"
    assert await writes(web) == before


async def test_another_organisations_member_answers_404_and_nothing_changes(web) -> None:
    stranger_org = await make_organisation(web.sessions, "provider")
    stranger = await make_user(web.sessions, stranger_org, role="member")
    await web.login_as("provider")
    before = await writes(web)
    for action, data in (("disable", None), ("enable", None), ("role", {"role": "admin"})):
        response = await web.submit(f"/organisation/members/{stranger.id}/{action}", data, form_page="/organisation")
        assert response.status_code == 404, action
    saved = await member_row(web, stranger.id)
    assert saved.active and saved.role == "signer"
    assert stranger.email not in (await web.client.get("/organisation")).text
    assert await writes(web) == before
    assert await refusals(web) == 3  # each refusal on another organisation's member is written down


async def test_members_are_paged_twenty_at_a_time(web) -> None:
    organisation = await make_organisation(web.sessions, "agency")
    async with web.sessions() as session, session.begin():  # rows only: they never sign in, so no password hashing
        for n in range(20):
            session.add(
                User(
                    email=f"m{n}@agency.example.kr",
                    name=f"Member {n:02d}",
                    password_hash="-",
                    organisation_id=organisation.id,
                )
            )  # type: ignore[arg-type]
    await web.login_as("agency", organisation=organisation)
    first = await web.client.get("/organisation")
    assert "Page 1 of 2" in first.text and 'href="/organisation?page=2"' in first.text
    assert (await web.client.get("/organisation?page=2")).status_code == 200
    assert (await web.client.get("/organisation?page=3")).status_code == 404


# --- /api -----------------------------------------------------------------------------------------


async def admin_token(web, kind: str = "provider", role: str = "admin"):
    organisation = await make_organisation(web.sessions, kind)
    user = await make_user(web.sessions, organisation, role=role)
    _, raw = await make_token(web.sessions, user, organisation)
    return organisation, user, raw


async def test_api_organisation_lists_members_without_secrets(web) -> None:
    organisation, user, raw = await admin_token(web)
    colleague = await make_user(web.sessions, organisation, role="member")
    await make_user(web.sessions, await make_organisation(web.sessions, "provider"))  # someone elsewhere
    response = await web.client.get("/api/organisation", headers=bearer(raw))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == organisation.id and body["kind"] == "provider" and body["can_manage_members"] is True
    assert {member["email"] for member in body["members"]} == {user.email, colleague.email}
    assert "password_hash" not in response.text and "token_hash" not in response.text


async def test_api_invitation_sends_the_link_by_email_only(web) -> None:
    _, _, raw = await admin_token(web)
    response = await web.client.post(
        "/api/organisation/invitations", json={"email": "new@provider.example.kr"}, headers=bearer(raw)
    )
    assert response.status_code == 201
    assert (
        response.json()["email"] == "new@provider.example.kr" and response.json()["role"] == "signer"
    )  # a provider's first role
    assert "token" not in response.text
    assert await count(web.sessions, OutboxMessage) == 1
    listed = (await web.client.get("/api/organisation", headers=bearer(raw))).json()
    assert [invitation["email"] for invitation in listed["invitations"]] == ["new@provider.example.kr"]


async def test_api_invitation_with_bad_input_answers_422_and_writes_nothing(web) -> None:
    _, _, raw = await admin_token(web)
    before = await writes(web)
    for body, field in (({}, "email"), ({"email": "nope"}, "email"), ({"email": "a@b.kr", "role": "owner"}, "role")):
        response = await web.client.post("/api/organisation/invitations", json=body, headers=bearer(raw))
        assert response.status_code == 422, body
        assert field in response.json()["errors"], body
    assert await writes(web) == before


async def test_api_member_cannot_invite_or_disable(web) -> None:
    organisation, _, raw = await admin_token(web, role="member")
    admin = await make_user(web.sessions, organisation, role="admin")
    before = await writes(web)
    assert (
        await web.client.post(
            "/api/organisation/invitations", json={"email": "x@provider.example.kr"}, headers=bearer(raw)
        )
    ).status_code == 403
    assert (
        await web.client.post(f"/api/organisation/members/{admin.id}/disable", headers=bearer(raw))
    ).status_code == 403
    assert (await member_row(web, admin.id)).active
    assert await writes(web) == before


async def test_api_disable_and_enable_a_member(web) -> None:
    organisation, _, raw = await admin_token(web)
    member = await make_user(web.sessions, organisation, role="member")
    _, member_raw = await make_token(web.sessions, member, organisation)
    disabled = await web.client.post(f"/api/organisation/members/{member.id}/disable", headers=bearer(raw))
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    assert (await web.client.get("/api/me", headers=bearer(member_raw))).status_code == 401
    assert (
        await web.client.post(f"/api/organisation/members/{member.id}/disable", headers=bearer(raw))
    ).status_code == 409
    enabled = await web.client.post(f"/api/organisation/members/{member.id}/enable", headers=bearer(raw))
    assert enabled.status_code == 200 and enabled.json()["active"] is True
    assert (await web.client.get("/api/me", headers=bearer(member_raw))).status_code == 200
    assert (await audit_actions(web.sessions))[-2:] == ["user.disable", "user.enable"]


async def test_api_admin_cannot_disable_themselves(web) -> None:
    _, admin, raw = await admin_token(web)
    response = await web.client.post(f"/api/organisation/members/{admin.id}/disable", headers=bearer(raw))
    assert response.status_code == 409
    assert (await member_row(web, admin.id)).active


async def test_api_another_organisations_member_answers_404(web) -> None:
    _, _, raw = await admin_token(web)
    stranger = await make_user(web.sessions, await make_organisation(web.sessions, "agency"), role="member")
    before = await writes(web)
    for action in ("disable", "enable"):
        response = await web.client.post(f"/api/organisation/members/{stranger.id}/{action}", headers=bearer(raw))
        assert response.status_code == 404, action
    assert (await member_row(web, stranger.id)).active
    assert await writes(web) == before
    assert await refusals(web) == 2
