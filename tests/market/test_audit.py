"""The audit trail: the hash chain holds under real requests and concurrent writers, tampering is
detected by `audit.verify` and by `market audit verify`, and the operator's audit page and CSV
show exactly the filtered events without ever carrying a secret."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from market import accounts, audit, clock
from market.auth import SESSION_COOKIE, TOKEN_PREFIX, SystemActor
from market.models import ApiToken, AuditEvent, Invitation, LoginSession, OutboxMessage, PasswordReset, User
from market.security import new_token, token_hash
from tests.helpers import PASSWORD, make_organisation, make_user
from tests.market.test_cli import Done, market
from tests.processes import ROOT, free_port


async def bearer(sessions: Any, user: User) -> dict[str, str]:
    raw = new_token(TOKEN_PREFIX)
    async with sessions() as session, session.begin():
        session.add(ApiToken(user_id=user.id, name="test", token_hash=token_hash(raw), prefix=raw[:12]))
    return {"Authorization": f"Bearer {raw}"}


async def verify(sessions: Any) -> audit.Verification:
    async with sessions() as session:
        return await audit.verify(session)


async def seqs(sessions: Any) -> list[int]:
    async with sessions() as session:
        return list((await session.scalars(sa.select(AuditEvent.seq).order_by(AuditEvent.seq))).all())


async def changes_through_requests(web: Any) -> None:
    """A few audited changes made the way an operator makes them."""
    await web.login_as("operator")
    agency = await make_organisation(web.sessions, "agency", name="Busan Metropolitan City")
    await web.submit(
        "/operator/domains", {"domain": "busan.go.kr", "organisation_id": str(agency.id)}, form_page="/operator/domains"
    )
    await web.submit(
        "/operator/organisations",
        {"kind": "committee", "name": "Certification Committee"},
        form_page="/operator/organisations/new",
    )
    await web.submit(
        f"/operator/organisations/{agency.id}/deactivate", form_page=f"/operator/organisations/{agency.id}/deactivate"
    )
    await web.submit(
        f"/operator/organisations/{agency.id}/activate", form_page=f"/operator/organisations/{agency.id}/activate"
    )


def cli_verify(database_url: str, tmp_path: Path) -> Done:
    """`market audit verify` with a secret key of its own, called in this process (tests/market/test_cli.py)."""
    return market(tmp_path / "cli", database_url, "audit", "verify", MARKET_SECRET_KEY="cli-secret-" + "y" * 40)


# --- the chain ------------------------------------------------------------------------------------


async def test_events_written_by_real_requests_form_an_intact_chain(
    web: Any, database_url: str, tmp_path: Path
) -> None:
    await changes_through_requests(web)
    numbers = await seqs(web.sessions)
    assert len(numbers) >= 8 and numbers == list(range(1, len(numbers) + 1))
    result = await verify(web.sessions)
    assert result.ok and result.checked == len(numbers)
    cli = cli_verify(database_url, tmp_path)
    assert cli.returncode == 0, cli.stderr
    assert f"{len(numbers)} events verified" in cli.stdout


async def _update_summary(session: Any, seq: int) -> None:
    await session.execute(
        sa.update(AuditEvent).where(AuditEvent.seq == seq).values(summary='{"domain": "evil.example.com"}')
    )


async def _delete(session: Any, seq: int) -> None:
    await session.execute(sa.delete(AuditEvent).where(AuditEvent.seq == seq))


async def _swap_with_next(session: Any, seq: int) -> None:
    await session.execute(sa.update(AuditEvent).where(AuditEvent.seq == seq).values(seq=-1))
    await session.execute(sa.update(AuditEvent).where(AuditEvent.seq == seq + 1).values(seq=seq))
    await session.execute(sa.update(AuditEvent).where(AuditEvent.seq == -1).values(seq=seq + 1))


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_update_summary, "was changed after it was written"),
        (_delete, "is missing"),
        (_swap_with_next, "does not link"),
    ],
    ids=["changed-row", "deleted-row", "reordered-rows"],
)
async def test_tampering_is_detected_by_verify_and_by_the_cli(
    web: Any, database_url: str, tmp_path: Path, tamper: Any, reason: str
) -> None:
    await changes_through_requests(web)
    assert (await verify(web.sessions)).ok
    target = 4
    async with web.sessions() as session, session.begin():
        await tamper(session, target)

    result = await verify(web.sessions)
    assert not result.ok
    assert result.broken_seq == target and reason in result.reason
    assert result.checked == target - 1

    cli = cli_verify(database_url, tmp_path)
    assert cli.returncode != 0
    assert f"BROKEN at event {target}" in cli.stderr, cli.stderr
    assert reason in cli.stderr


async def test_concurrent_writers_on_separate_connections_keep_one_chain(sessions: Any) -> None:
    writers = 20

    async def write(n: int) -> None:
        async with sessions() as session, session.begin():
            await audit.record(session, SystemActor(email=f"writer{n}@example.kr"), "test.write", "test", n, {"n": n})
            await asyncio.sleep(0.01)  # hold the transaction a moment so the others queue behind it

    await asyncio.gather(*(write(n) for n in range(writers)))
    assert await seqs(sessions) == list(range(1, writers + 1))
    result = await verify(sessions)
    assert result.ok and result.checked == writers


def _start_server(database_url: str, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """`market.app` under uvicorn in its own process; its output goes to `data_dir/server.log`."""
    environment = {
        **os.environ,
        "MARKET_DATABASE_URL": database_url,
        "MARKET_DATA_DIR": str(data_dir),
        "MARKET_WORKER": "off",
        "MARKET_SECRET_KEY": "server-secret-" + "z" * 40,
        "MARKET_DEFAULT_LANGUAGE": "en",
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "server.log", "wb") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "market.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=environment,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def _wait_until_up(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180  # importing the app takes seconds, more on a busy machine
    async with httpx.AsyncClient() as probe:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise AssertionError(f"server exited: {log.read_text()}")
            try:
                if (await probe.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"server at {base} did not come up: {log.read_text()}")


async def test_concurrent_requests_to_two_app_processes_keep_one_chain(
    sessions: Any, database_url: str, tmp_path: Path
) -> None:
    operator = await make_user(sessions, await make_organisation(sessions, "operator"))
    agency = await make_organisation(sessions, "agency")
    token = await bearer(sessions, operator)
    before = len(await seqs(sessions))
    ports = [free_port(), free_port()]
    folders = [tmp_path / f"server{n}" for n in range(2)]
    servers = [_start_server(database_url, folder, port) for folder, port in zip(folders, ports, strict=True)]
    try:
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        await asyncio.gather(
            *(
                _wait_until_up(base, server, folder / "server.log")
                for base, server, folder in zip(bases, servers, folders, strict=True)
            )
        )
        async with httpx.AsyncClient(headers=token, timeout=60) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        f"{bases[n % 2]}/api/operator/domains",
                        json={"domain": f"office{n}.go.kr", "organisation_id": agency.id},
                    )
                    for n in range(20)
                )
            )
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
    assert [response.status_code for response in responses] == [201] * 20
    numbers = await seqs(sessions)
    assert numbers == list(range(1, before + 21))
    result = await verify(sessions)
    assert result.ok and result.checked == before + 20


# --- the audit page and CSV -----------------------------------------------------------------------


async def _events_at(sessions: Any, spec: list[tuple[str, str, str, str, int | None, datetime]]) -> None:
    """Events with chosen times (the time is set after writing: these tests read, they do not verify)."""
    for action, email, object_type, object_id, organisation_id, at in spec:
        async with sessions() as session, session.begin():
            actor = SystemActor(email=email, organisation_id=organisation_id, ip="203.0.113.9")
            event = await audit.record(session, actor, action, object_type, object_id, {"note": action})
            event.at = at


@pytest.fixture
async def operator_web(web: Any) -> Any:
    await web.login_as("operator")
    return web


async def test_audit_page_shows_each_event_in_local_time_with_actor_organisation_object_summary_and_ip(
    operator_web: Any,
) -> None:
    web = operator_web
    agency = await make_organisation(web.sessions, "agency", name="부산광역시")
    # 15:30 UTC on 1 March is 00:30 on 2 March in Seoul
    await _events_at(
        web.sessions,
        [("contract.sign", "buyer@busan.go.kr", "contract", "77", agency.id, datetime(2024, 3, 1, 15, 30, tzinfo=UTC))],
    )
    page = await web.client.get("/operator/audit?object_type=contract")
    assert page.status_code == 200
    row = page.text[page.text.index("<tbody>") : page.text.index("</tbody>")]
    for shown in (
        "2024-03-02 00:30:00",
        "buyer@busan.go.kr",
        "부산광역시",
        "contract.sign",
        "contract #77",
        "note: contract.sign",
        "203.0.113.9",
    ):
        assert shown in row


async def test_audit_page_filters_by_day_range_in_local_time(operator_web: Any) -> None:
    web = operator_web
    await _events_at(
        web.sessions,
        [
            (
                "late.evening",
                "a@example.kr",
                "thing",
                "1",
                None,
                datetime(2024, 3, 1, 14, 59, tzinfo=UTC),
            ),  # 23:59 on 1 March in Seoul
            (
                "after.midnight",
                "a@example.kr",
                "thing",
                "2",
                None,
                datetime(2024, 3, 1, 15, 0, tzinfo=UTC),
            ),  # 00:00 on 2 March
            ("next.day", "a@example.kr", "thing", "3", None, datetime(2024, 3, 3, 0, 0, tzinfo=UTC)),
        ],
    )
    march_2 = await web.client.get("/operator/audit?since=2024-03-02&until=2024-03-02")
    assert "after.midnight" in march_2.text and "late.evening" not in march_2.text and "next.day" not in march_2.text
    up_to_1 = await web.client.get("/operator/audit?until=2024-03-01&object_type=thing")
    assert "late.evening" in up_to_1.text and "after.midnight" not in up_to_1.text


async def test_audit_page_filters_by_organisation_user_action_and_object(operator_web: Any) -> None:
    web = operator_web
    first = await make_organisation(web.sessions, "agency")
    second = await make_organisation(web.sessions, "provider")
    now = datetime.now(UTC)
    await _events_at(
        web.sessions,
        [
            ("service.submit", "kim@provider.example.kr", "service", "5", second.id, now),
            ("service.withdraw", "kim@provider.example.kr", "service", "6", second.id, now),
            ("project.end", "lee@busan.go.kr", "project", "5", first.id, now),
        ],
    )

    async def shown(query: str) -> set[str]:
        response = await web.client.get(f"/operator/audit?{query}")
        assert response.status_code == 200
        return set(re.findall(r"<td>((?:service|project)\.\w+)</td>", response.text))

    assert await shown(f"organisation_id={first.id}") == {"project.end"}
    assert await shown("actor=KIM@provider.example.kr") == {"service.submit", "service.withdraw"}
    assert await shown("action=service.") == {"service.submit", "service.withdraw"}
    assert await shown("object_type=service&object_id=6") == {"service.withdraw"}
    assert await shown("object_id=5") == {"service.submit", "project.end"}
    empty = await web.client.get("/operator/audit?actor=nobody@example.kr")
    assert "No audit events match these filters." in empty.text


async def test_audit_page_has_50_events_a_page_newest_first(operator_web: Any) -> None:
    web = operator_web
    async with web.sessions() as session, session.begin():
        for n in range(60):
            await audit.record(session, SystemActor(email="bulk@example.kr"), "bulk.write", "bulk", n)
    first = await web.client.get("/operator/audit?action=bulk.")
    numbers = [int(n) for n in re.findall(r"<td>bulk #(\d+)</td>", first.text)]
    assert numbers == list(range(59, 9, -1))
    second = await web.client.get("/operator/audit?action=bulk.&page=2")
    assert [int(n) for n in re.findall(r"<td>bulk #(\d+)</td>", second.text)] == list(range(9, -1, -1))
    assert 'href="/operator/audit?action=bulk.&amp;page=2"' in first.text
    assert (await web.client.get("/operator/audit?action=bulk.&page=3")).status_code == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=yesterday", "since"),
        ("since=2024-03-05&until=2024-03-01", "until"),
        ("organisation_id=abc", "organisation_id"),
    ],
)
async def test_audit_page_rejects_bad_filters_naming_the_field(operator_web: Any, query: str, field: str) -> None:
    response = await operator_web.client.get(f"/operator/audit?{query}")
    assert response.status_code == 422
    assert f'href="#field-{field}"' in response.text


async def test_audit_csv_has_the_filtered_events_with_bom_header_and_dated_filename(
    operator_web: Any, settings: Any
) -> None:
    web = operator_web
    agency = await make_organisation(web.sessions, "agency", name="부산광역시")
    await _events_at(
        web.sessions,
        [
            (
                "contract.sign",
                "buyer@busan.go.kr",
                "contract",
                "77",
                agency.id,
                datetime(2024, 3, 1, 15, 30, tzinfo=UTC),
            ),
            ("contract.sign", '=HYPERLINK("x")', "contract", "78", agency.id, datetime(2024, 3, 1, 16, 0, tzinfo=UTC)),
            (
                "contract.draft",
                "buyer@busan.go.kr",
                "contract",
                "77",
                agency.id,
                datetime(2024, 3, 1, 15, 0, tzinfo=UTC),
            ),
        ],
    )
    response = await web.client.get("/operator/audit.csv?action=contract.sign")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    local_today = clock.today(settings.zone).isoformat()
    assert response.headers["content-disposition"] == f'attachment; filename="audit-{local_today}.csv"'
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["seq", "time", "actor_email", "actor_id"]
    body = rows[1:]
    assert [row[8] for row in body] == ["78", "77"]  # newest first, the draft left out
    assert body[1][1] == "2024-03-02 00:30:00" and body[1][5] == "부산광역시" and body[1][6] == "contract.sign"
    assert body[0][2] == '\'=HYPERLINK("x")'  # never run as a formula by a spreadsheet


async def test_audit_csv_matches_the_page_for_the_same_filters(operator_web: Any) -> None:
    web = operator_web
    async with web.sessions() as session, session.begin():
        for n in range(120):
            await audit.record(session, SystemActor(email=f"user{n % 3}@example.kr"), "bulk.write", "bulk", n)
    api_rows = []
    page = 1
    while True:
        listing = await web.client.get(f"/operator/audit?actor=user1@example.kr&page={page}")
        found = re.findall(r"<td>bulk #(\d+)</td>", listing.text)
        if not found:
            break
        api_rows += found
        page += 1
    exported = list(
        csv.reader(
            io.StringIO(
                (await web.client.get("/operator/audit.csv?actor=user1@example.kr")).content.decode("utf-8-sig")
            )
        )
    )
    assert [row[8] for row in exported[1:]] == api_rows
    assert len(api_rows) == 40


async def test_audit_events_api_filters_and_pages(web: Any) -> None:
    operator = await web.login_as("operator")
    token = await bearer(web.sessions, operator)
    async with web.sessions() as session, session.begin():
        for n in range(55):
            await audit.record(session, SystemActor(email="api@example.kr"), "bulk.write", "bulk", n)
    first = (await web.client.get("/api/operator/audit-events?action=bulk.", headers=token)).json()
    assert (first["total"], first["page"], first["pages"], len(first["items"])) == (55, 1, 2, 50)
    assert first["items"][0]["object_id"] == "54" and first["items"][0]["summary"] == {}
    second = (await web.client.get("/api/operator/audit-events?action=bulk.&page=2", headers=token)).json()
    assert [item["object_id"] for item in second["items"]] == ["4", "3", "2", "1", "0"]
    mine = (await web.client.get(f"/api/operator/audit-events?actor={operator.email}", headers=token)).json()
    assert [item["action"] for item in mine["items"]] == ["user.login"]
    bad = await web.client.get("/api/operator/audit-events?since=1st-of-May", headers=token)
    assert bad.status_code == 422 and list(bad.json()["errors"]) == ["since"]


async def test_no_password_hash_or_token_ever_appears_in_an_audit_summary(web: Any, settings: Any) -> None:
    """Sign-in, invitations, password resets, password changes and account changes leave events, never secrets."""
    operator = await web.login_as("operator")
    committee = await make_organisation(web.sessions, "committee")
    await web.submit(
        "/operator/appointments",
        {
            "email": "invitee@univ.ac.kr",
            "organisation_id": str(committee.id),
            "starts_on": "2030-01-01",
            "ends_on": "2031-01-01",
        },
        form_page="/operator/appointments",
    )
    member = await make_user(web.sessions, committee)
    await web.submit(f"/operator/users/{member.id}/disable", form_page=f"/operator/organisations/{committee.id}")
    async with web.sessions() as session, session.begin():
        await accounts.request_password_reset(session, settings, operator.email, "127.0.0.1")
        user = await session.get(User, member.id)
        await accounts.set_password(session, user, "another-long-password", actor=SystemActor(email="test"))
    await bearer(web.sessions, operator)

    async with web.sessions() as session:
        secrets = {PASSWORD, "another-long-password", web.client.cookies.get(SESSION_COOKIE) or "missing"}
        secrets |= set((await session.scalars(sa.select(User.password_hash))).all())
        for model in (LoginSession, Invitation, PasswordReset, ApiToken):
            secrets |= set((await session.scalars(sa.select(model.token_hash))).all())
        for payload in (await session.scalars(sa.select(OutboxMessage.payload))).all():
            secrets |= set(re.findall(r"/(?:invitations|password/reset)/([A-Za-z0-9_-]{20,})", payload))
        events = (await session.scalars(sa.select(AuditEvent))).all()
    assert len(secrets) >= 10  # the hashes and tokens above really exist
    actions = {event.action for event in events}
    assert {"user.login", "invitation.create", "password.reset_requested", "password.change", "user.disable"} <= actions
    for event in events:
        text = " ".join([event.summary, event.object_id, event.actor_email])
        assert not any(secret in text for secret in secrets), event.action
        assert "password" not in event.summary.lower() and "token" not in event.summary.lower(), event.summary
