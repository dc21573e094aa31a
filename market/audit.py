"""The audit trail: one hash-chained event per state change, written in the change's own transaction."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from market.database import lock, utcnow, writing
from market.models import AuditEvent, Organisation

GENESIS = "0" * 64
SECURITY = "security."  # the prefix of security events: failed sign-ins, lock-outs, refusals
AUDIT_LOCK = 7_201_001  # advisory lock key that keeps the chain single on PostgreSQL


class Actor(Protocol):
    """Whoever made a change: a signed-in user (`Principal`) or the system (`SystemActor`); read-only."""

    @property
    def user_id(self) -> int | None: ...
    @property
    def email(self) -> str: ...
    @property
    def organisation_id(self) -> int | None: ...
    @property
    def ip(self) -> str: ...


def canonical(event: AuditEvent) -> str:
    fields = {
        "seq": event.seq,
        "at": event.at.isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_email": event.actor_email,
        "organisation_id": event.organisation_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "summary": event.summary,
        "ip": event.ip,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256((prev_hash + canonical(event)).encode()).hexdigest()


def _summary_json(summary: dict[str, Any]) -> str:
    return json.dumps(summary, sort_keys=True, ensure_ascii=False, default=str)


async def record(
    session: AsyncSession,
    actor: Actor | None,
    action: str,
    object_type: str,
    object_id: object = "",
    summary: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event. Never put secrets (passwords, tokens, hashes) into `summary`."""
    await lock(session, AUDIT_LOCK)
    last = (
        await session.execute(
            sa.select(col(AuditEvent.seq), col(AuditEvent.hash)).order_by(col(AuditEvent.seq).desc()).limit(1)
        )
    ).first()
    event = AuditEvent(
        seq=(last.seq + 1) if last else 1,
        at=utcnow(),
        actor_id=actor.user_id if actor else None,
        actor_email=actor.email if actor else "",
        organisation_id=actor.organisation_id if actor else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        summary=_summary_json(summary or {}),
        ip=actor.ip if actor else "",
        prev_hash=last.hash if last else GENESIS,
        hash="",
    )
    event.hash = chain_hash(event.prev_hash, event)
    session.add(event)
    await session.flush()
    return event


async def record_security_event(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor | None,
    action: str,
    object_type: str,
    object_id: object = "",
    summary: dict[str, Any] | None = None,
) -> None:
    """Append a security event (`security.*`) in its own short transaction: the request that caused it is answered
    with an error, which rolls its own transaction back. Called once that transaction has ended (see
    `note_security_event`), so on SQLite it does not wait for a lock its own request holds."""
    assert action.startswith(SECURITY), action
    with writing():
        async with sessions() as session, session.begin():
            await record(session, actor, action, object_type, object_id, summary)


@dataclass(frozen=True)
class SecurityEvent:
    actor: Actor | None
    action: str
    object_type: str
    object_id: str
    summary: dict[str, Any]


PENDING_SECURITY_EVENTS = "market_security_events"  # scope key: events to write once the request's transaction ended


def note_security_event(
    scope: Any,
    actor: Actor | None,
    action: str,
    object_type: str,
    object_id: object = "",
    summary: dict[str, Any] | None = None,
) -> None:
    """Keep a security event for the request's error answer; `write_noted_security_events` writes it after rollback."""
    scope.setdefault(PENDING_SECURITY_EVENTS, []).append(
        SecurityEvent(actor, action, object_type, str(object_id), summary or {})
    )


async def write_noted_security_events(scope: Any, sessions: async_sessionmaker[AsyncSession]) -> None:
    for event in scope.pop(PENDING_SECURITY_EVENTS, []):
        await record_security_event(
            sessions, event.actor, event.action, event.object_type, event.object_id, event.summary
        )


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str = ""


async def verify(session: AsyncSession, batch: int = 1000) -> Verification:
    """Walk the chain in order; name the first event whose link or content does not hold."""
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    async for event in _events_in_order(session, batch):
        if event.seq != expected_seq:
            return Verification(False, checked, expected_seq, f"event {expected_seq} is missing (next is {event.seq})")
        if event.prev_hash != prev_hash:
            return Verification(False, checked, event.seq, f"event {event.seq} does not link to event {event.seq - 1}")
        if chain_hash(prev_hash, event) != event.hash:
            return Verification(False, checked, event.seq, f"event {event.seq} was changed after it was written")
        prev_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    return Verification(True, checked)


async def _events_in_order(session: AsyncSession, batch: int) -> AsyncIterator[AuditEvent]:
    after = 0
    while True:
        rows = (
            await session.scalars(
                sa.select(AuditEvent).where(col(AuditEvent.seq) > after).order_by(col(AuditEvent.seq)).limit(batch)
            )
        ).all()
        if not rows:
            return
        for row in rows:
            yield row
        after = rows[-1].seq


@dataclass(frozen=True)
class AuditFilter:
    since: datetime | None = None
    until: datetime | None = None
    organisation_id: int | None = None
    actor: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    security_only: bool = False

    def where(self) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = []
        if self.since:
            clauses.append(col(AuditEvent.at) >= self.since)
        if self.until:
            clauses.append(col(AuditEvent.at) < self.until)
        if self.organisation_id:
            clauses.append(col(AuditEvent.organisation_id) == self.organisation_id)
        if self.actor:
            clauses.append(col(AuditEvent.actor_email) == self.actor.strip().lower())
        if self.action:
            clauses.append(col(AuditEvent.action).startswith(self.action.strip()))
        if self.object_type:
            clauses.append(col(AuditEvent.object_type) == self.object_type.strip())
        if self.object_id:
            clauses.append(col(AuditEvent.object_id) == self.object_id.strip())
        if self.security_only:
            clauses.append(col(AuditEvent.action).startswith(SECURITY))
        return clauses


async def search(
    session: AsyncSession, filters: AuditFilter, *, offset: int = 0, limit: int = 50
) -> tuple[list[AuditEvent], int]:
    where = filters.where()
    total = await session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(*where))
    rows = (
        await session.scalars(
            sa.select(AuditEvent).where(*where).order_by(col(AuditEvent.seq).desc()).offset(offset).limit(limit)
        )
    ).all()
    return list(rows), int(total or 0)


async def stream(
    sessions: async_sessionmaker[AsyncSession], filters: AuditFilter, *, batch: int = 500
) -> AsyncIterator[tuple[AuditEvent, str]]:
    """Every matching event, newest first, with its organisation's name ('' when none), for exports.

    Each batch is read in its own short transaction, so a slow download keeps nothing open between
    batches; events written meanwhile have a higher seq than the first one read and stay out.
    """
    before: int | None = None
    while True:
        query = (
            sa.select(AuditEvent, col(Organisation.name))
            .outerjoin(Organisation, col(Organisation.id) == col(AuditEvent.organisation_id))
            .where(*filters.where())
            .order_by(col(AuditEvent.seq).desc())
            .limit(batch)
        )
        if before is not None:
            query = query.where(col(AuditEvent.seq) < before)
        async with sessions() as session, session.begin():
            rows = (await session.execute(query)).all()
        if not rows:
            return
        for event, organisation_name in rows:
            yield event, organisation_name or ""
        before = rows[-1][0].seq
