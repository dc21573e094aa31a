from __future__ import annotations

import hashlib
import re

import sqlalchemy as sa

from market import accounts
from market.auth import TOKEN_PREFIX, Principal
from market.models import ApiToken, AuditEvent, Organisation, User
from tests.helpers import audit_actions, count, make_organisation, make_user

RAW_TOKEN = re.compile(r"mkt_[A-Za-z0-9_-]{40,}")


def principal_of(user: User, organisation: Organisation) -> Principal:
    return Principal(
        user_id=user.id,
        email=user.email,
        name=user.name,
        organisation_id=organisation.id,  # type: ignore[arg-type]
        organisation_kind=organisation.kind,
        organisation_name=organisation.name,
        role=user.role,
        language=user.language,
        ip="",
    )


async def make_token(
    sessions, user: User, organisation: Organisation, name: str = "procurement system"
) -> tuple[ApiToken, str]:
    async with sessions() as session, session.begin():
        return await accounts.create_token(session, principal_of(user, organisation), name)


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


async def signed_in_with_token(web, kind: str = "provider") -> tuple[User, Organisation, str]:
    organisation = await make_organisation(web.sessions, kind)
    user = await make_user(web.sessions, organisation)
    _, raw = await make_token(web.sessions, user, organisation)
    return user, organisation, raw


# --- pages ----------------------------------------------------------------------------------------


async def test_a_new_token_is_shown_once_and_stored_only_as_its_hash(web) -> None:
    user = await web.login_as("provider")
    response = await web.submit("/account/tokens", {"token_name": "ERP link"}, form_page="/account")
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    raw = RAW_TOKEN.search(response.text).group(0)
    assert raw.startswith(TOKEN_PREFIX)
    async with web.sessions() as session:
        token = await session.scalar(sa.select(ApiToken))
    assert token.user_id == user.id and token.name == "ERP link"
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(token.prefix) and len(token.prefix) < len(raw)
    account = await web.client.get("/account")
    assert "ERP link" in account.text and token.prefix in account.text
    assert raw not in account.text  # never again
    async with web.sessions() as session:
        summaries = (await session.scalars(sa.select(AuditEvent.summary))).all()
    assert not any(raw in summary or token.token_hash in summary for summary in summaries)
    assert (await audit_actions(web.sessions))[-1] == "token.create"


async def test_a_token_created_on_the_page_works_on_the_api(web) -> None:
    user = await web.login_as("agency")
    response = await web.submit("/account/tokens", {"token_name": "ERP link"}, form_page="/account")
    raw = RAW_TOKEN.search(response.text).group(0)
    me = await web.client.get("/api/me", headers=bearer(raw))
    assert me.status_code == 200
    assert me.json()["email"] == user.email and me.json()["via_token"] is True


async def test_creating_a_token_without_a_name_names_the_field_and_writes_nothing(web) -> None:
    await web.login_as("provider")
    before = await count(web.sessions, AuditEvent)
    response = await web.submit("/account/tokens", {"token_name": "  "}, form_page="/account")
    assert response.status_code == 422 and 'href="#field-token_name"' in response.text
    long = await web.submit("/account/tokens", {"token_name": "x" * 81}, form_page="/account")
    assert long.status_code == 422 and 'href="#field-token_name"' in long.text
    assert await count(web.sessions, ApiToken) == 0
    assert await count(web.sessions, AuditEvent) == before


async def test_revoking_asks_for_confirmation_then_the_token_stops_working(web) -> None:
    user = await web.login_as("provider")
    async with web.sessions() as session:
        organisation = await session.get(Organisation, user.organisation_id)
    token, raw = await make_token(web.sessions, user, organisation)
    assert (await web.client.get("/api/me", headers=bearer(raw))).status_code == 200
    confirm = await web.client.get(f"/account/tokens/{token.id}/revoke")
    assert confirm.status_code == 200 and "procurement system" in confirm.text and 'method="post"' in confirm.text
    async with web.sessions() as session:
        assert (await session.get(ApiToken, token.id)).revoked_at is None  # asking changed nothing
    response = await web.submit(f"/account/tokens/{token.id}/revoke", form_page=f"/account/tokens/{token.id}/revoke")
    assert response.status_code == 303
    async with web.sessions() as session:
        assert (await session.get(ApiToken, token.id)).revoked_at is not None
    assert (await web.client.get("/api/me", headers=bearer(raw))).status_code == 401
    assert (await audit_actions(web.sessions))[-1] == "token.revoke"


async def test_revoking_a_revoked_token_again_changes_nothing(web) -> None:
    user = await web.login_as("provider")
    async with web.sessions() as session:
        organisation = await session.get(Organisation, user.organisation_id)
    token, _ = await make_token(web.sessions, user, organisation)
    await web.submit(f"/account/tokens/{token.id}/revoke", form_page=f"/account/tokens/{token.id}/revoke")
    before = await count(web.sessions, AuditEvent)
    again = await web.submit(f"/account/tokens/{token.id}/revoke", form_page="/account")
    assert again.status_code == 303
    assert "revoked already" in (await web.client.get("/account")).text
    assert await count(web.sessions, AuditEvent) == before


async def test_another_users_token_answers_404_on_the_page_and_stays_active(web) -> None:
    colleague_org = await make_organisation(web.sessions, "provider")
    colleague = await make_user(web.sessions, colleague_org)
    token, raw = await make_token(web.sessions, colleague, colleague_org)
    await web.login_as("provider")
    assert (await web.client.get(f"/account/tokens/{token.id}/revoke")).status_code == 404
    response = await web.submit(f"/account/tokens/{token.id}/revoke", form_page="/account")
    assert response.status_code == 404
    async with web.sessions() as session:
        assert (await session.get(ApiToken, token.id)).revoked_at is None
    assert (await web.client.get("/api/me", headers=bearer(raw))).status_code == 200


async def test_a_colleagues_token_in_the_same_organisation_is_not_yours_to_revoke(web) -> None:
    organisation = await make_organisation(web.sessions, "agency")
    colleague = await make_user(web.sessions, organisation)
    token, _ = await make_token(web.sessions, colleague, organisation)
    await web.login_as("agency", organisation=organisation)
    response = await web.submit(f"/account/tokens/{token.id}/revoke", form_page="/account")
    assert response.status_code == 404
    async with web.sessions() as session:
        assert (await session.get(ApiToken, token.id)).revoked_at is None


# --- /api -----------------------------------------------------------------------------------------


async def test_api_me_needs_a_bearer_token(web) -> None:
    assert (await web.client.get("/api/me")).status_code == 401
    assert (await web.client.get("/api/me", headers=bearer("mkt_not-a-token"))).status_code == 401
    await web.login_as("provider")  # a session cookie is not enough for /api
    response = await web.client.get("/api/me")
    assert response.status_code == 401 and response.headers["content-type"].startswith("application/problem+json")


async def test_api_me_describes_the_user_and_the_organisation(web) -> None:
    user, organisation, raw = await signed_in_with_token(web)
    body = (await web.client.get("/api/me", headers=bearer(raw))).json()
    assert body["id"] == user.id and body["role"] == "admin"
    assert body["organisation"] == {"id": organisation.id, "kind": "provider", "name": organisation.name}
    assert "password_hash" not in body


async def test_api_creates_a_token_whose_secret_is_in_that_answer_only(web) -> None:
    user, _, raw = await signed_in_with_token(web)
    response = await web.client.post("/api/tokens", json={"name": "nightly export"}, headers=bearer(raw))
    assert response.status_code == 201 and response.headers["cache-control"] == "no-store"
    created = response.json()
    assert created["token"].startswith(TOKEN_PREFIX) and created["name"] == "nightly export"
    assert "token_hash" not in created
    listed = (await web.client.get("/api/tokens", headers=bearer(raw))).json()
    assert {token["name"] for token in listed} == {"procurement system", "nightly export"}
    assert all("token" not in token and "token_hash" not in token for token in listed)
    assert created["token"] not in str(listed)
    async with web.sessions() as session:
        stored = await session.get(ApiToken, created["id"])
    assert stored.token_hash == hashlib.sha256(created["token"].encode()).hexdigest() and stored.user_id == user.id
    assert (await web.client.get("/api/me", headers=bearer(created["token"]))).status_code == 200


async def test_api_token_creation_with_bad_input_answers_422_naming_the_field(web) -> None:
    _, _, raw = await signed_in_with_token(web)
    before = await count(web.sessions, ApiToken), await count(web.sessions, AuditEvent)
    for body in ({}, {"name": ""}, {"name": "x" * 81}):
        response = await web.client.post("/api/tokens", json=body, headers=bearer(raw))
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "name" in response.json()["errors"]
    assert (await count(web.sessions, ApiToken), await count(web.sessions, AuditEvent)) == before


async def test_api_lists_only_your_own_tokens(web) -> None:
    organisation = await make_organisation(web.sessions, "provider")
    colleague = await make_user(web.sessions, organisation)
    await make_token(web.sessions, colleague, organisation, name="colleague's")
    user = await make_user(web.sessions, organisation)
    _, raw = await make_token(web.sessions, user, organisation, name="mine")
    listed = (await web.client.get("/api/tokens", headers=bearer(raw))).json()
    assert [token["name"] for token in listed] == ["mine"]


async def test_api_delete_revokes_the_token(web) -> None:
    user, organisation, raw = await signed_in_with_token(web)
    other, other_raw = await make_token(web.sessions, user, organisation, name="old script")
    response = await web.client.delete(f"/api/tokens/{other.id}", headers=bearer(raw))
    assert response.status_code == 204
    assert (await web.client.get("/api/me", headers=bearer(other_raw))).status_code == 401
    listed = (await web.client.get("/api/tokens", headers=bearer(raw))).json()
    assert next(token for token in listed if token["id"] == other.id)["revoked_at"] is not None
    assert (await audit_actions(web.sessions))[-1] == "token.revoke"
    again = await web.client.delete(f"/api/tokens/{other.id}", headers=bearer(raw))
    assert again.status_code == 409


async def test_a_revoked_token_gets_401_on_api_me(web) -> None:
    _, _, raw = await signed_in_with_token(web)
    token_id = (await web.client.get("/api/tokens", headers=bearer(raw))).json()[0]["id"]
    assert (await web.client.delete(f"/api/tokens/{token_id}", headers=bearer(raw))).status_code == 204
    assert (await web.client.get("/api/me", headers=bearer(raw))).status_code == 401


async def test_api_delete_of_another_organisations_token_answers_404_and_changes_nothing(web) -> None:
    _, _, raw = await signed_in_with_token(web)
    stranger_org = await make_organisation(web.sessions, "agency")
    stranger = await make_user(web.sessions, stranger_org)
    token, stranger_raw = await make_token(web.sessions, stranger, stranger_org)
    before = await count(web.sessions, AuditEvent)
    response = await web.client.delete(f"/api/tokens/{token.id}", headers=bearer(raw))
    assert response.status_code == 404
    assert (await web.client.delete("/api/tokens/999999", headers=bearer(raw))).status_code == 404
    assert (await web.client.get("/api/me", headers=bearer(stranger_raw))).status_code == 200
    # nothing changed; the refusal on another organisation's token is written down as a security event
    assert await count(web.sessions, AuditEvent, ~AuditEvent.action.startswith("security.")) == before
    assert await count(web.sessions, AuditEvent, AuditEvent.action == "security.refused") == 1


async def test_using_a_token_records_when_it_was_last_used(web) -> None:
    _, _, raw = await signed_in_with_token(web)
    async with web.sessions() as session:
        assert (await session.scalar(sa.select(ApiToken))).last_used_at is None
    await web.client.get("/api/me", headers=bearer(raw))
    async with web.sessions() as session:
        assert (await session.scalar(sa.select(ApiToken))).last_used_at is not None
