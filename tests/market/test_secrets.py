"""Password hashes, API tokens and session ids never leave the server: not in a response, not in a log line."""

from __future__ import annotations

import logging
import re

import pytest
import sqlalchemy as sa

from market.auth import SESSION_COOKIE
from market.models import User
from tests.helpers import PASSWORD

RAW_TOKEN = re.compile(r"mkt_[A-Za-z0-9_-]{40,}")


async def test_secrets_appear_in_no_response_and_no_log_line(web, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)  # the level a server logs at; drivers' DEBUG output echoes SQL parameters
    user = await web.login_as("provider")
    session_id = web.client.cookies.get(SESSION_COOKIE)
    assert session_id

    changed = await web.submit(
        "/account/password",
        {"current_password": PASSWORD, "password": "another-long-secret", "password_confirm": "another-long-secret"},
        form_page="/account",
    )
    assert changed.status_code in (200, 303), changed.text
    created = await web.submit(
        "/account/tokens", {"token_name": "ERP link"}, form_page="/account"
    )  # after the change: it revokes tokens
    token = RAW_TOKEN.search(created.text).group(0)  # shown once, on this page only

    responses = [
        await web.client.get("/account"),
        await web.client.get("/organisation"),
        await web.client.get("/api/me", headers={"Authorization": f"Bearer {token}"}),
        await web.client.get("/api/tokens", headers={"Authorization": f"Bearer {token}"}),
        await web.client.get("/api/me", headers={"Authorization": "Bearer mkt_wrong"}),
    ]
    assert [response.status_code for response in responses[:4]] == [200, 200, 200, 200]
    async with web.sessions() as session:
        password_hash = await session.scalar(sa.select(User.password_hash).where(User.id == user.id))
    assert password_hash and password_hash.startswith("$argon2")

    for response in responses:
        body = response.text
        assert token not in body and password_hash not in body and "$argon2" not in body
        assert session_id not in body
    log = "\n".join(record.getMessage() for record in caplog.records)
    assert log, "the requests above were logged"
    for secret in (token, password_hash, session_id, PASSWORD, "another-long-secret"):
        assert secret not in log
