"""Sessions of the committee (meetings): attendance and quorum, the decisions put before them, confirmation or
override with a written reason, and the minutes (also as CSV).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

import catalog
from committee import locks
from committee.cases import add_event, case_row, case_summary, move
from committee.certificates import apply_standing, change_certificate, issue_certificate
from committee.members import names_of, require_chair, require_staff
from committee.models import (
    Case,
    CaseKind,
    CaseState,
    Certificate,
    CertificateStatus,
    Confirmation,
    Decision,
    Meeting,
    MeetingStatus,
)
from committee.workflow import CASE, SESSION_OUTCOMES
from market import audit
from market.auth import Principal
from market.csv_export import CsvWriter
from market.database import lock, utcnow
from market.errors import Conflict, Invalid, NotFound
from market.i18n import _
from market.models import Organisation, User


async def meetings(session: AsyncSession, principal: Principal) -> list[Meeting]:
    await require_staff(session, principal)
    return list(
        (await session.scalars(sa.select(Meeting).order_by(col(Meeting.held_on).desc(), col(Meeting.id).desc()))).all()
    )


async def create_meeting(
    session: AsyncSession, principal: Principal, *, held_on: date, title: str, quorum: int
) -> Meeting:
    await require_chair(session, principal)
    errors = {}
    if not title.strip():
        errors["title"] = _("This field is required.")
    if quorum < 1:
        errors["quorum"] = _("The quorum is at least 1.")
    if errors:
        raise Invalid(_("The session could not be created."), errors=errors)
    meeting = Meeting(held_on=held_on, title=title.strip()[:200], quorum=quorum, created_by_id=principal.user_id)
    session.add(meeting)
    await session.flush()
    await audit.record(
        session, principal, "committee.session_created", "session", meeting.id, {"held_on": held_on.isoformat()}
    )
    return meeting


async def meeting_row(session: AsyncSession, meeting_id: int) -> Meeting:
    meeting = await session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound(_("No such session."))
    return meeting


async def _open_meeting(session: AsyncSession, principal: Principal, meeting_id: int) -> Meeting:
    await require_chair(session, principal)
    await lock(session, locks.meeting(meeting_id))
    meeting = await meeting_row(session, meeting_id)
    await session.refresh(meeting)
    if meeting.status != MeetingStatus.open:
        raise Conflict(_("The session is closed; its record cannot change."))
    return meeting


async def record_attendance(
    session: AsyncSession, principal: Principal, meeting_id: int, member_ids: list[int]
) -> Meeting:
    meeting = await _open_meeting(session, principal, meeting_id)
    known = set(
        (
            await session.scalars(
                sa.select(col(User.id))
                .join(Organisation, col(Organisation.id) == col(User.organisation_id))
                .where(col(User.id).in_(member_ids or [0]), col(Organisation.kind) == "committee")
            )
        ).all()
    )
    if set(member_ids) - known:
        raise Invalid(
            _("Attendance lists committee members only."), errors={"member_ids": _("Choose committee members.")}
        )
    meeting.attendees = sorted(set(member_ids))
    await audit.record(
        session, principal, "committee.attendance_recorded", "session", meeting.id, {"attendees": meeting.attendees}
    )
    return meeting


async def add_to_meeting(session: AsyncSession, principal: Principal, meeting_id: int, case_id: int) -> Decision:
    meeting = await _open_meeting(session, principal, meeting_id)
    decision = await session.scalar(sa.select(Decision).where(col(Decision.case_id) == case_id))
    if decision is None or decision.confirmation == Confirmation.not_needed:
        raise Conflict(_("Only a case the rule decided can be put before a session."))
    if decision.session_id is not None:
        raise Conflict(_("This decision is already before a session."))
    decision.session_id = meeting.id
    await audit.record(session, principal, "committee.session_case_added", "session", meeting.id, {"case_id": case_id})
    return decision


async def confirm_decision(
    session: AsyncSession,
    principal: Principal,
    meeting_id: int,
    case_id: int,
    *,
    override: str | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> Decision:
    """Confirm the computed decision, or override it with a written reason (the new outcome is carried out)."""
    now = now or utcnow()
    meeting = await _open_meeting(session, principal, meeting_id)
    if len(meeting.attendees) < meeting.quorum:
        raise Conflict(
            _(
                "The session has no quorum (%(present)s present, %(quorum)s needed).",
                present=len(meeting.attendees),
                quorum=meeting.quorum,
            )
        )
    case = await case_row(session, case_id, for_update=True)
    decision = await session.scalar(
        sa.select(Decision).where(col(Decision.case_id) == case_id, col(Decision.session_id) == meeting.id)
    )
    if decision is None:
        raise NotFound(_("This case is not before this session."))
    if decision.confirmation != Confirmation.pending:
        raise Conflict(_("This decision is already %(state)s.", state=decision.confirmation))
    if override is None or override == decision.outcome:
        decision.confirmation, decision.confirmed_at = Confirmation.confirmed, now
        await audit.record(
            session, principal, "committee.decision_confirmed", "case", case.id, {"session_id": meeting.id}
        )
        if decision.outcome == CaseState.rejected and case.kind == CaseKind.listing:
            await catalog.refuse_revision(session, principal, case.service_id, decision.reason)
        return decision
    if override not in SESSION_OUTCOMES:
        raise Invalid(
            _("Choose one of the offered outcomes."), errors={"override": _("Choose one of the offered values.")}
        )
    if not reason.strip():
        raise Invalid(
            _("An override needs a written reason."), errors={"reason": _("An override needs a written reason.")}
        )
    if decision.outcome == CaseState.certified:
        certificate = await session.scalar(sa.select(Certificate).where(col(Certificate.case_id) == case.id))
        if certificate is not None:
            change_certificate(
                certificate, CertificateStatus.revoked, reason.strip()[:2000], now, certificate.suspended_until
            )
            await apply_standing(session, certificate, now, principal)
    CASE.check(case.state, override)
    decision.confirmation, decision.confirmed_at, decision.override_reason = (
        Confirmation.overridden,
        now,
        reason.strip()[:4000],
    )
    decision.outcome, decision.reason = override, reason.strip()[:4000] if override == CaseState.rejected else ""
    previous = move(case, override, now)
    await add_event(session, case, principal, "overridden", previous, reason.strip())
    await audit.record(
        session,
        principal,
        "committee.decision_overridden",
        "case",
        case.id,
        {"session_id": meeting.id, "outcome": override, "reason": reason[:200]},
    )
    if override == CaseState.certified:
        await issue_certificate(session, case, principal, now)
    return decision


async def close_meeting(
    session: AsyncSession, principal: Principal, meeting_id: int, now: datetime | None = None
) -> Meeting:
    now = now or utcnow()
    meeting = await _open_meeting(session, principal, meeting_id)
    pending = await session.scalar(
        sa.select(sa.func.count()).where(
            col(Decision.session_id) == meeting.id, col(Decision.confirmation) == Confirmation.pending
        )
    )
    if pending:
        raise Conflict(_("Confirm or override every decision before closing the session (%(n)s left).", n=pending))
    meeting.status, meeting.closed_at = MeetingStatus.closed, now
    await audit.record(session, principal, "committee.session_closed", "session", meeting.id)
    return meeting


async def minutes(session: AsyncSession, principal: Principal, meeting_id: int) -> dict[str, Any]:
    await require_staff(session, principal)
    meeting = await meeting_row(session, meeting_id)
    names = await names_of(session, set(meeting.attendees))
    decisions = (
        await session.scalars(
            sa.select(Decision).where(col(Decision.session_id) == meeting.id).order_by(col(Decision.case_id))
        )
    ).all()
    items = []
    for decision in decisions:
        case = await case_row(session, decision.case_id)
        summary = await case_summary(session, case)
        certificate = await session.scalar(
            sa.select(col(Certificate.number)).where(
                col(Certificate.case_id) == case.id, col(Certificate.status) != CertificateStatus.revoked
            )
        )
        items.append(
            {
                "case_id": case.id,
                "kind": case.kind,
                "service_name": summary["service_name"],
                "provider_name": summary["provider_name"],
                "version_number": summary["version_number"],
                "computed_outcome": decision.computed_outcome,
                "outcome": decision.outcome,
                "confirmation": decision.confirmation,
                "reason": decision.override_reason or decision.reason,
                "certificate": certificate or "",
            }
        )
    ready = (
        []
        if meeting.status != MeetingStatus.open
        else [
            await case_summary(session, case)
            for case in (
                await session.scalars(
                    sa.select(Case)
                    .join(Decision, col(Decision.case_id) == col(Case.id))
                    .where(col(Decision.session_id).is_(None), col(Decision.confirmation) == Confirmation.pending)
                    .order_by(col(Case.id))
                )
            ).all()
        ]
    )
    members = (
        await session.execute(
            sa.select(col(User.id), col(User.name))
            .join(Organisation, col(Organisation.id) == col(User.organisation_id))
            .where(col(Organisation.kind) == "committee")
            .order_by(col(User.name))
        )
    ).all()
    return {
        "id": meeting.id,
        "held_on": meeting.held_on.isoformat(),
        "title": meeting.title,
        "quorum": meeting.quorum,
        "status": meeting.status,
        "attendees": [{"id": i, "name": names.get(i, "")} for i in meeting.attendees],
        "quorate": len(meeting.attendees) >= meeting.quorum,
        "items": items,
        "ready_cases": ready,
        "members": [{"id": m.id, "name": m.name} for m in members],
        "closed_at": meeting.closed_at,
    }


def minutes_csv(record: dict[str, Any]) -> str:
    writer = CsvWriter()
    writer.writerow(["session", record["title"], record["held_on"], record["status"]])
    writer.writerow(["attendees", "; ".join(a["name"] for a in record["attendees"]), "quorum", record["quorum"]])
    writer.writerow(
        [
            "case",
            "kind",
            "provider",
            "service",
            "version",
            "computed outcome",
            "outcome",
            "confirmation",
            "reason",
            "certificate",
        ]
    )
    for item in record["items"]:
        writer.writerow(
            [
                item["case_id"],
                item["kind"],
                item["provider_name"],
                item["service_name"],
                item["version_number"],
                item["computed_outcome"],
                item["outcome"],
                item["confirmation"],
                item["reason"],
                item["certificate"],
            ]
        )
    return writer.text(byte_order_mark=False)
