"""Security events in the audit trail: failed sign-ins, lock-outs, refused forms (CSRF) and refusals on another
organisation's object are written with the account (when known) and address, each in its own transaction (the
refused request itself is rolled back); the chain stays valid; the operator's audit page, CSV and API filter them."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import sqlalchemy as sa

from market import audit
from market.auth import TOKEN_PREFIX
from market.models import ApiToken, AuditEvent, User
from market.security import new_token, token_hash
from tests.helpers import PASSWORD, make_organisation, make_user


async def security_events(sessions: Any) -> list[AuditEvent]:
    async with sessions() as session:
        return list(
            (
                await session.scalars(
                    sa.select(AuditEvent).where(AuditEvent.action.startswith("security.")).order_by(AuditEvent.seq)
                )
            ).all()
        )


async def chain_holds(sessions: Any) -> bool:
    async with sessions() as session:
        return (await audit.verify(session)).ok


async def token_of(sessions: Any, user: User) -> ApiToken:
    raw = new_token(TOKEN_PREFIX)
    async with sessions() as session, session.begin():
        token = ApiToken(user_id=user.id, name="someone else's", token_hash=token_hash(raw), prefix=raw[:12])
        session.add(token)
    return token


async def test_a_failed_sign_in_is_recorded_with_the_account_and_address(web) -> None:
    user = await make_user(web.sessions, await make_organisation(web.sessions, "provider"))
    assert (await web.login(user.email, "not-the-password")).status_code == 401
    [event] = await security_events(web.sessions)
    assert (event.action, event.actor_email, event.actor_id, event.ip) == (
        "security.login_failed",
        user.email,
        user.id,
        "testclient",
    )
    assert (event.object_type, event.object_id) == ("user", str(user.id))
    assert await chain_holds(web.sessions)


async def test_a_failed_sign_in_to_an_unknown_account_does_not_write_the_address_typed(web) -> None:
    assert (await web.login("typo-or-a-password@example.kr", "whatever")).status_code == 401
    [event] = await security_events(web.sessions)
    assert event.action == "security.login_failed" and event.actor_email == "" and event.actor_id is None
    assert json.loads(event.summary) == {"account_known": False}
    assert "typo-or-a-password" not in event.summary


async def test_the_throttle_refusing_a_sign_in_is_a_lock_out_event(web, settings) -> None:
    user = await make_user(web.sessions, await make_organisation(web.sessions, "agency"))
    for _ in range(settings.login_failures_per_account):
        await web.login(user.email, "wrong-password")
    assert (await web.login(user.email, PASSWORD)).status_code == 429
    actions = [event.action for event in await security_events(web.sessions)]
    assert actions == ["security.login_failed"] * settings.login_failures_per_account + ["security.locked_out"]
    locked = (await security_events(web.sessions))[-1]
    assert locked.actor_email == user.email and locked.ip == "testclient"


async def test_a_refused_csrf_token_is_recorded_with_the_signed_in_user(web) -> None:
    user = await web.login_as("agency")
    response = await web.client.post("/account/profile", data={"name": "Changed", "language": "en"})
    assert response.status_code == 403
    [event] = await security_events(web.sessions)
    assert (event.action, event.actor_email, event.ip) == ("security.csrf_refused", user.email, "testclient")
    assert (event.object_type, event.object_id) == ("route", "POST /account/profile")
    async with web.sessions() as session:
        assert (await session.get(User, user.id)).name != "Changed"  # the refused form changed nothing


async def test_a_refused_csrf_token_without_a_session_is_recorded_with_the_address(web) -> None:
    await web.client.get("/login")
    assert (await web.client.post("/login", data={"email": "a@b.kr", "password": "x"})).status_code == 403
    [event] = await security_events(web.sessions)
    assert (event.action, event.actor_email, event.actor_id, event.ip) == (
        "security.csrf_refused",
        "",
        None,
        "testclient",
    )


async def test_reading_another_users_object_answers_404_and_is_recorded(web) -> None:
    owner = await make_user(web.sessions, await make_organisation(web.sessions, "agency"))
    token = await token_of(web.sessions, owner)
    intruder = await web.login_as("agency")
    response = await web.client.get(f"/account/tokens/{token.id}/revoke")
    assert response.status_code == 404 and "No such token." in response.text
    [event] = await security_events(web.sessions)
    assert (event.action, event.actor_email, event.organisation_id, event.ip) == (
        "security.refused",
        intruder.email,
        intruder.organisation_id,
        "testclient",
    )
    assert event.object_id == "GET /account/tokens/{token_id}/revoke"
    assert json.loads(event.summary) == {"status": 404, "ids": {"token_id": token.id}}
    assert await chain_holds(web.sessions)


async def test_changing_another_users_object_is_refused_recorded_and_changes_nothing(web) -> None:
    owner = await make_user(web.sessions, await make_organisation(web.sessions, "provider"))
    token = await token_of(web.sessions, owner)
    await web.login_as("provider")
    response = await web.submit(f"/account/tokens/{token.id}/revoke", form_page="/account")
    assert response.status_code == 404
    assert [event.action for event in await security_events(web.sessions)] == ["security.refused"]
    async with web.sessions() as session:
        assert (await session.get(ApiToken, token.id)).revoked_at is None


async def test_a_missing_object_is_not_a_security_event(web) -> None:
    await web.login_as("agency")
    assert (await web.client.get("/account/tokens/999999/revoke")).status_code == 404
    assert await security_events(web.sessions) == []


async def test_the_operators_audit_page_csv_and_api_show_security_events_only_when_asked(web) -> None:
    victim = await make_user(web.sessions, await make_organisation(web.sessions, "agency"))
    await web.login(victim.email, "wrong-password")
    operator = await web.login_as("operator")
    everything = await web.client.get("/operator/audit")
    assert "user.login" in everything.text and "security.login_failed" in everything.text
    only = await web.client.get("/operator/audit", params={"security": "true"})
    assert only.status_code == 200
    assert (
        "security.login_failed" in only.text
        and "user.login" not in only.text
        and "organisation.create" not in only.text
    )
    assert 'name="security" value="true" checked' in only.text
    assert "security=true" in only.text  # the CSV link keeps the filter
    rows = list(
        csv.reader(
            io.StringIO(
                (await web.client.get("/operator/audit.csv", params={"security": "true"})).text.lstrip("\ufeff")
            )
        )
    )
    assert [row[6] for row in rows[1:]] == ["security.login_failed"]
    assert rows[1][2] == victim.email
    raw = new_token(TOKEN_PREFIX)
    async with web.sessions() as session, session.begin():
        session.add(ApiToken(user_id=operator.id, name="api", token_hash=token_hash(raw), prefix=raw[:12]))
    api = await web.client.get(
        "/api/operator/audit-events", params={"security": "true"}, headers={"Authorization": f"Bearer {raw}"}
    )
    assert api.status_code == 200
    assert [item["action"] for item in api.json()["items"]] == ["security.login_failed"]
