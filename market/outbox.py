"""The outbox: external actions written in the same transaction as their cause, carried out after commit.

A handler is registered per kind (`email` here; payments register theirs). The worker claims due
messages with a lease, runs the handler outside any transaction, then records the outcome. Handlers
receive the message's idempotency key and must pass it on, so a retry after a crash repeats nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import smtplib
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from market.database import is_postgres, row_id, utcnow
from market.models import OutboxMessage
from market.parts import parts_of
from market.settings import Settings

log = logging.getLogger("market.outbox")

LEASE = timedelta(minutes=5)
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 6 * 3600
ABANDONED = "the worker stopped during the last attempt (its lease ran out)"


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int


async def enqueue(
    session: AsyncSession, kind: str, payload: dict[str, Any], idempotency_key: str, *, max_attempts: int = 8
) -> OutboxMessage:
    message = OutboxMessage(
        kind=kind,
        payload=json.dumps(payload, ensure_ascii=False),
        idempotency_key=idempotency_key,
        max_attempts=max_attempts,
    )
    session.add(message)
    await session.flush()
    return message


async def send_email(session: AsyncSession, to: str, subject: str, body: str, idempotency_key: str) -> None:
    await enqueue(session, "email", {"to": to, "subject": subject, "body": body}, idempotency_key)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS))


async def _claim(sessions: async_sessionmaker[AsyncSession], limit: int) -> list[Job]:
    """Lease due messages to this worker. PostgreSQL skips rows another worker is claiming; SQLite's
    BEGIN IMMEDIATE lets one claim run at a time. A lease that ran out means its worker stopped mid-job:
    the message is due again, unless that was its last attempt."""
    async with sessions() as session, session.begin():
        await session.connection()  # begins the transaction: on SQLite, waits here for the write lock
        now = utcnow()  # read once the lock is held, so a lease is never shorter than LEASE
        lease_free = sa.or_(col(OutboxMessage.locked_until).is_(None), col(OutboxMessage.locked_until) < now)
        await session.execute(
            sa.update(OutboxMessage)
            .where(
                col(OutboxMessage.status) == "pending",
                col(OutboxMessage.attempts) >= col(OutboxMessage.max_attempts),
                lease_free,
            )
            .values(status="failed", locked_until=None, last_error=ABANDONED)
            .execution_options(synchronize_session=False)
        )
        query = (
            sa.select(OutboxMessage)
            .where(col(OutboxMessage.status) == "pending", col(OutboxMessage.next_attempt_at) <= now, lease_free)
            .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
            .limit(limit)
        )
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        messages = (await session.scalars(query)).all()
        jobs = []
        for message in messages:
            message.locked_until = now + LEASE
            message.attempts += 1
            jobs.append(
                Job(
                    row_id(message),
                    message.kind,
                    json.loads(message.payload),
                    message.idempotency_key,
                    message.attempts,
                )
            )
        return jobs


async def _finish(sessions: async_sessionmaker[AsyncSession], job: Job, error: str | None) -> None:
    async with sessions() as session, session.begin():
        message = await session.get(OutboxMessage, job.id)
        if message is None:
            return
        message.locked_until = None
        if error is None:
            message.status, message.done_at, message.last_error = "done", utcnow(), ""
        elif message.attempts >= message.max_attempts:
            message.status, message.last_error = "failed", error
            log.error("outbox message %s (%s) failed for good: %s", job.id, job.kind, error)
        else:
            message.last_error = error
            message.next_attempt_at = utcnow() + backoff(message.attempts)


async def run_once(sessions: async_sessionmaker[AsyncSession], settings: Settings, limit: int = 20) -> int:
    """Carry out the due messages; returns how many were attempted."""
    handlers = parts_of(sessions).outbox_handlers
    jobs = await _claim(sessions, limit)
    for job in jobs:
        function = handlers.get(job.kind)
        error: str | None = None
        if function is None:
            error = f"no handler for {job.kind!r}"
        else:
            try:
                await function(job, settings)
            except Exception as exc:  # any failure is retried with backoff; the message keeps the reason
                error = f"{type(exc).__name__}: {exc}"[:2000]
                log.warning("outbox message %s (%s) attempt %s failed: %s", job.id, job.kind, job.attempts, error)
        await _finish(sessions, job, error)
    return len(jobs)


async def run_forever(sessions: async_sessionmaker[AsyncSession], settings: Settings, interval: float = 2.0) -> None:
    from market import hooks

    while True:
        try:
            await hooks.run_periodic(sessions, settings)
            while await run_once(sessions, settings):
                pass
        except asyncio.CancelledError:
            raise
        except Exception:  # keep the loop alive; the next round retries
            log.exception("worker round failed")
        await asyncio.sleep(interval)


async def deliver_email(job: Job, settings: Settings) -> None:
    to, subject, body = job.payload["to"], job.payload["subject"], job.payload["body"]
    if not settings.smtp_url:
        # Development: the message (a reset link, say) goes to the log instead of a mail server.
        log.info("e-mail to %s: %s\n%s", to, subject, body)
        return
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.mail_from, to, subject
    message["Message-ID"] = message_id(job.idempotency_key, settings)
    message.set_content(body)
    await asyncio.to_thread(_smtp_send, settings.smtp_url, message)


def message_id(idempotency_key: str, settings: Settings) -> str:
    """The same Message-ID for every attempt at one message, so a mail system can drop a repeat.

    Keys hold characters a Message-ID may not (`invite:3`), hence the digest."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}@{urlsplit(settings.base_url).hostname or 'localhost'}>"


def _smtp_send(url: str, message: EmailMessage) -> None:
    parts = urlsplit(url)  # smtp://user:pass@host:port or smtps://...
    smtp_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    default_port = {"smtps": 465, "smtp+starttls": 587}.get(parts.scheme, 25)
    with smtp_class(parts.hostname or "localhost", parts.port or default_port, timeout=30) as smtp:
        if parts.scheme == "smtp+starttls":
            smtp.starttls()
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(message)
