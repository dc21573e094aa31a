"""The outbox carries out external actions after their transaction commits, retries with backoff, and never
runs one message twice at the same time."""

from __future__ import annotations

import asyncio
import email
import logging
import os
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from market import hooks, outbox
from market.database import create_engine, utcnow
from market.models import OutboxMessage
from market.parts import Parts
from market.settings import Settings
from tests.processes import MARKET, cli_env

POSTGRES_URL = os.environ.get("MARKET_TEST_DATABASE_URL", "")

calls: list[outbox.Job] = []


async def record(job: outbox.Job, _settings: Settings) -> None:
    calls.append(job)
    await asyncio.sleep(0.05)  # long enough for a second worker to try the same message


async def fail(job: outbox.Job, _settings: Settings) -> None:
    calls.append(job)
    raise ConnectionError(f"payment gateway unreachable (attempt {job.attempts})")


@pytest.fixture(autouse=True)
def no_calls_yet(parts: Parts) -> None:
    parts.add_outbox_handler("test.record", record)
    parts.add_outbox_handler("test.fail", fail)
    calls.clear()


async def enqueue(sessions: async_sessionmaker[AsyncSession], kind: str, key: str, **options: int) -> int:
    async with sessions() as session, session.begin():
        message = await outbox.enqueue(session, kind, {"key": key, "amount": 55000}, key, **options)
        return message.id  # type: ignore[return-value]


async def load(sessions: async_sessionmaker[AsyncSession], message_id: int) -> OutboxMessage:
    async with sessions() as session:
        message = await session.get(OutboxMessage, message_id)
        assert message is not None
        return message


async def make_due(sessions: async_sessionmaker[AsyncSession], message_id: int) -> None:
    """Time passes: the backoff is over."""
    async with sessions() as session, session.begin():
        await session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


# --- carried out after commit ---------------------------------------------------------------------------


async def test_a_committed_message_is_carried_out_once_with_its_payload_and_key(sessions, settings) -> None:
    message_id = await enqueue(sessions, "test.record", "invoice-7:charge")
    assert await outbox.run_once(sessions, settings) == 1
    assert [(job.payload, job.idempotency_key, job.attempts) for job in calls] == [
        ({"key": "invoice-7:charge", "amount": 55000}, "invoice-7:charge", 1)
    ]
    message = await load(sessions, message_id)
    assert message.status == "done" and message.done_at is not None and message.locked_until is None
    assert await outbox.run_once(sessions, settings) == 0
    assert len(calls) == 1


async def test_a_message_rolled_back_with_its_transaction_never_runs(sessions, settings) -> None:
    async with sessions() as session, session.begin():
        await outbox.enqueue(session, "test.record", {"key": "x"}, "rolled-back")
        await session.rollback()
    assert await outbox.run_once(sessions, settings) == 0
    assert calls == []
    async with sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


@pytest.mark.skipif(not POSTGRES_URL, reason="MARKET_TEST_DATABASE_URL is not set")
async def test_an_uncommitted_message_is_invisible_to_a_worker(sessions, settings) -> None:
    async with sessions() as session, session.begin():
        await outbox.enqueue(session, "test.record", {"key": "x"}, "not-yet")
        assert await outbox.run_once(sessions, settings) == 0  # another connection, while this one is open
    assert calls == []
    assert await outbox.run_once(sessions, settings) == 1


async def test_a_message_not_yet_due_waits(sessions, settings) -> None:
    message_id = await enqueue(sessions, "test.record", "later")
    async with sessions() as session, session.begin():
        await session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(next_attempt_at=utcnow() + timedelta(minutes=5))
        )
    assert await outbox.run_once(sessions, settings) == 0
    assert calls == []


# --- retries ------------------------------------------------------------------------------------------


async def test_a_failure_is_retried_later_with_a_growing_backoff(sessions, settings) -> None:
    message_id = await enqueue(sessions, "test.fail", "retry-me")
    waits = []
    for attempt in (1, 2, 3):
        before = utcnow()
        assert await outbox.run_once(sessions, settings) == 1
        message = await load(sessions, message_id)
        assert message.status == "pending" and message.attempts == attempt and message.locked_until is None
        assert f"attempt {attempt}" in message.last_error and "ConnectionError" in message.last_error
        waits.append(message.next_attempt_at - before)
        assert await outbox.run_once(sessions, settings) == 0  # not due again at once
        await make_due(sessions, message_id)
    assert waits[0] >= timedelta(seconds=outbox.BACKOFF_BASE_SECONDS)
    assert waits[0] < waits[1] < waits[2]


async def test_retries_stop_at_max_attempts_and_keep_the_last_error(sessions, settings) -> None:
    message_id = await enqueue(sessions, "test.fail", "give-up", max_attempts=3)
    for _ in range(3):
        assert await outbox.run_once(sessions, settings) == 1
        await make_due(sessions, message_id)
    message = await load(sessions, message_id)
    assert message.status == "failed" and message.attempts == 3
    assert "payment gateway unreachable (attempt 3)" in message.last_error
    assert await outbox.run_once(sessions, settings) == 0
    assert len(calls) == 3


async def test_a_kind_without_a_handler_fails_with_that_reason(sessions, settings) -> None:
    message_id = await enqueue(sessions, "test.nobody", "orphan", max_attempts=1)
    assert await outbox.run_once(sessions, settings) == 1
    message = await load(sessions, message_id)
    assert message.status == "failed" and "no handler" in message.last_error


def test_backoff_doubles_and_is_capped() -> None:
    assert outbox.backoff(1) == timedelta(seconds=outbox.BACKOFF_BASE_SECONDS)
    assert outbox.backoff(2) == 2 * outbox.backoff(1)
    assert outbox.backoff(100) == timedelta(seconds=outbox.BACKOFF_MAX_SECONDS)


# --- concurrent workers -------------------------------------------------------------------------------


@pytest.fixture
async def other_sessions(database_url: str, parts: Parts) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A second worker: its own engine and connections."""
    engine = create_engine(database_url)
    yield parts.sessions(engine)
    await engine.dispose()


async def test_two_workers_never_run_the_same_message_twice(sessions, other_sessions, settings) -> None:
    keys = [f"concurrent-{n}" for n in range(30)]
    for key in keys:
        await enqueue(sessions, "test.record", key)
    totals = [0, 0]

    async def work(index: int, worker_sessions: async_sessionmaker[AsyncSession]) -> None:
        while attempted := await outbox.run_once(worker_sessions, settings, limit=3):
            totals[index] += attempted

    await asyncio.gather(work(0, sessions), work(1, other_sessions))
    ran = sorted(job.idempotency_key for job in calls)
    assert ran == sorted(keys)  # every message once, none twice
    assert sum(totals) == len(keys)
    assert all(totals), f"one worker did everything: {totals}"
    async with sessions() as session:
        assert set((await session.scalars(sa.select(OutboxMessage.status))).all()) == {"done"}


# --- a worker killed mid-job ----------------------------------------------------------------------------


async def expire_lease(sessions: async_sessionmaker[AsyncSession], message_id: int) -> None:
    """Time passes: the killed worker's lease runs out."""
    async with sessions() as session, session.begin():
        await session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )


async def test_a_message_whose_worker_was_killed_is_claimed_again_after_its_lease(
    sessions, settings, database_url, tmp_path
) -> None:
    silent = await SmtpServer.start(hang=True)  # the worker connects and then waits for a greeting forever
    try:
        async with sessions() as session, session.begin():
            await outbox.send_email(
                session, "buyer@seoul.example.go.kr", "Contract ready to sign", "Please sign.", "contract-9:ready"
            )
        worker = await asyncio.create_subprocess_exec(
            str(MARKET),
            "worker",
            "--once",
            env=cli_env(database_url, tmp_path, smtp_url=silent.url),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await asyncio.wait_for(silent.connected.wait(), timeout=60)  # mid-job now
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
    finally:
        await silent.stop()
    async with sessions() as session:
        message = await session.scalar(
            sa.select(OutboxMessage).where(OutboxMessage.idempotency_key == "contract-9:ready")
        )
    assert message is not None and message.status == "pending" and message.attempts == 1
    assert message.locked_until is not None and message.locked_until > utcnow()

    smtp = await SmtpServer.start()
    try:
        delivering = settings.with_(smtp_url=smtp.url)
        assert await outbox.run_once(sessions, delivering) == 0  # the lease still holds
        await expire_lease(sessions, message.id)  # type: ignore[arg-type]
        assert await outbox.run_once(sessions, delivering) == 1
    finally:
        await smtp.stop()
    assert [mail["Subject"] for mail in smtp.messages] == ["Contract ready to sign"]
    message = await load(sessions, message.id)  # type: ignore[arg-type]
    assert message.status == "done" and message.attempts == 2


async def test_a_lease_that_runs_out_on_the_last_attempt_fails_the_message(sessions, settings) -> None:
    message_id = await enqueue(sessions, "test.record", "last-try", max_attempts=1)
    async with sessions() as session, session.begin():  # claimed by a worker that then died
        await session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(attempts=1, locked_until=utcnow() + outbox.LEASE)
        )
    assert await outbox.run_once(sessions, settings) == 0
    assert (await load(sessions, message_id)).status == "pending"
    await expire_lease(sessions, message_id)
    assert await outbox.run_once(sessions, settings) == 0
    message = await load(sessions, message_id)
    assert message.status == "failed" and message.last_error == outbox.ABANDONED
    assert calls == []


# --- e-mail -------------------------------------------------------------------------------------------


@dataclass
class SmtpServer:
    """Just enough SMTP on loopback to receive what the outbox sends."""

    hang: bool = False
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    server: asyncio.Server | None = None

    @classmethod
    async def start(cls, hang: bool = False) -> SmtpServer:
        smtp = cls(hang=hang)
        smtp.server = await asyncio.start_server(smtp.converse, "127.0.0.1", 0)
        return smtp

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"smtp://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connected.set()
        if self.hang:
            await reader.read()  # until the client goes away
            writer.close()
            return

        async def reply(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        await reply("220 127.0.0.1 test SMTP")
        sender, recipients = "", []
        try:
            while line := await reader.readline():
                command = line.decode().strip()
                verb = command.split(" ", 1)[0].split(":", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    await reply("250 127.0.0.1")
                elif verb == "MAIL":
                    sender, recipients = command.split(":", 1)[1].strip(" <>"), []
                    await reply("250 OK")
                elif verb == "RCPT":
                    recipients.append(command.split(":", 1)[1].strip(" <>"))
                    await reply("250 OK")
                elif verb == "DATA":
                    await reply("354 End data with <CR><LF>.<CR><LF>")
                    body = bytearray()
                    while (data := await reader.readline()) not in (b".\r\n", b""):
                        body += data[1:] if data.startswith(b"..") else data
                    self.messages.append(email.message_from_bytes(bytes(body)))
                    self.envelopes.append((sender, recipients))
                    await reply("250 OK queued")
                elif verb == "QUIT":
                    await reply("221 Bye")
                    break
                else:  # RSET, NOOP
                    await reply("250 OK")
        finally:
            writer.close()


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = await SmtpServer.start()
    yield server
    await server.stop()


async def test_email_without_smtp_goes_to_the_log(sessions, settings, caplog) -> None:
    caplog.set_level(logging.INFO, logger="market.outbox")
    async with sessions() as session, session.begin():
        await outbox.send_email(
            session, "buyer@seoul.example.go.kr", "Reset your password", "Open https://x/reset/abc", "reset:1"
        )
    assert not settings.smtp_url
    assert await outbox.run_once(sessions, settings) == 1
    assert "buyer@seoul.example.go.kr" in caplog.text
    assert "Reset your password" in caplog.text and "https://x/reset/abc" in caplog.text


async def test_email_with_smtp_arrives_with_subject_and_recipient(sessions, settings, smtp) -> None:
    async with sessions() as session, session.begin():
        await outbox.send_email(
            session, "provider@hanbit.example.kr", "Your service was certified", "Certificate C-2026-001.", "cert:1"
        )
    assert (
        await outbox.run_once(sessions, settings.with_(smtp_url=smtp.url, mail_from="noreply@market.example.kr")) == 1
    )
    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert mail["Subject"] == "Your service was certified"
    assert mail["To"] == "provider@hanbit.example.kr" and mail["From"] == "noreply@market.example.kr"
    # Well formed, and the same for every attempt at this message, so a mail system can drop a repeat.
    assert re.fullmatch(r"<[0-9a-f]{32}@[a-z0-9.-]+>", mail["Message-ID"]), mail["Message-ID"]
    assert mail["Message-ID"] == outbox.message_id("cert:1", settings)
    assert outbox.message_id("cert:2", settings) != mail["Message-ID"]
    assert "Certificate C-2026-001." in mail.get_payload()
    assert smtp.envelopes == [("noreply@market.example.kr", ["provider@hanbit.example.kr"])]


async def test_email_the_smtp_server_refuses_is_retried(sessions, settings) -> None:
    closed = await SmtpServer.start()
    url = closed.url
    await closed.stop()  # nothing listens there any more
    async with sessions() as session, session.begin():
        await outbox.send_email(
            session, "buyer@seoul.example.go.kr", "Invoice issued", "Invoice 12.", "invoice-12:mail"
        )
    assert await outbox.run_once(sessions, settings.with_(smtp_url=url)) == 1
    async with sessions() as session:
        message = await session.scalar(sa.select(OutboxMessage))
    assert message is not None and message.status == "pending" and message.attempts == 1
    assert "ConnectionRefusedError" in message.last_error


# --- the worker command ---------------------------------------------------------------------------------


async def test_worker_once_carries_out_due_messages_and_exits(sessions, database_url, tmp_path, smtp) -> None:
    async with sessions() as session, session.begin():
        for n in range(3):
            await outbox.send_email(
                session, f"member{n}@mois.example.go.kr", f"Invitation {n}", "Join us.", f"invite:{n}"
            )
    worker = await asyncio.create_subprocess_exec(
        str(MARKET),
        "worker",
        "--once",
        env=cli_env(database_url, tmp_path, smtp_url=smtp.url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(worker.communicate(), timeout=120)
    assert worker.returncode == 0, stderr.decode()
    assert "3 jobs attempted" in stdout.decode()
    assert sorted(mail["To"] for mail in smtp.messages) == [f"member{n}@mois.example.go.kr" for n in range(3)]
    async with sessions() as session:
        assert set((await session.scalars(sa.select(OutboxMessage.status))).all()) == {"done"}


# --- periodic sweeps ------------------------------------------------------------------------------------

sweeps: list[str] = []


async def test_periodic_sweeps_run_at_most_once_per_interval_and_a_failure_stays_contained(
    database_url, settings
) -> None:
    sweeps.clear()

    async def sweep(_sessions: async_sessionmaker[AsyncSession], _settings: Settings) -> None:
        sweeps.append("sweep")

    async def broken(_sessions: async_sessionmaker[AsyncSession], _settings: Settings) -> None:
        sweeps.append("broken")
        raise RuntimeError("sweep failed")

    parts = Parts()  # the test's sweeps only: the packages' own stay out of it
    parts.add_periodic("test.sweep", 3600, sweep)
    parts.add_periodic("test.broken-sweep", 3600, broken)
    engine = create_engine(database_url, pooled=False)
    sessions = parts.sessions(engine)
    try:
        await hooks.run_periodic(sessions, settings)
        await hooks.run_periodic(sessions, settings)
    finally:
        await engine.dispose()
    assert sorted(sweeps) == ["broken", "sweep"]
