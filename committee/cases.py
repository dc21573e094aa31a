"""Review cases: opening them from the catalogue's submissions (and renewal applications), reading them as
each principal may, the secretariat's completeness check, and the chair's assignment of members.
Every change writes an audit event and an entry in the case's history in its transaction.

Functions that depend on the date take `now` (UTC); callers pass the real clock, tests pass their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

import catalog
from committee import locks
from committee.certificates import active_bar, certificate_by_number, certificate_json
from committee.members import (
    Role,
    conflicted,
    criteria_set,
    current_criteria_set,
    names_of,
    require_chair,
    require_member,
    require_operator,
    require_staff,
    role_of,
)
from committee.models import (
    Assignment,
    Case,
    CaseEvent,
    CaseKind,
    CaseState,
    Certificate,
    CertificateStatus,
    Decision,
    Review,
    ReviewStatus,
)
from committee.providers import provider_emails, provider_name
from committee.workflow import BEFORE_DECISION, CASE, DECIDED, OPEN
from market import audit, clock, outbox
from market.audit import Actor
from market.auth import Principal
from market.database import lock, row_id, utcnow
from market.errors import Conflict, Forbidden, Invalid, NotFound, Refused
from market.i18n import _
from market.models import Appointment, Organisation, User

# --- a case's history and state -------------------------------------------------------------------


async def add_event(
    session: AsyncSession,
    case: Case,
    actor: Actor | None,
    action: str,
    from_state: str,
    message: str = "",
    visible: bool = True,
) -> None:
    session.add(
        CaseEvent(
            case_id=row_id(case),
            actor_id=getattr(actor, "user_id", None),
            action=action,
            from_state=from_state,
            to_state=case.state,
            message=message,
            visible_to_provider=visible,
        )
    )
    await session.flush()


def move(case: Case, state: str, now: datetime) -> str:
    """Change the case's state along the table (409 otherwise); the previous state, for its history."""
    CASE.check(case.state, state)
    previous = case.state
    case.state = state
    case.state_changed_at = now
    if state in DECIDED:
        case.closed_at = now
    return previous


# --- opening cases: the catalogue's submissions and renewal applications --------------------------


async def open_case_of(session: AsyncSession, service_id: int) -> Case | None:
    return await session.scalar(
        sa.select(Case).where(col(Case.service_id) == service_id, col(Case.state).in_(OPEN)).limit(1)
    )


async def receive_submission(
    session: AsyncSession,
    *,
    service_id: int,
    version_id: int,
    actor: Actor | None,
    kind: str = CaseKind.listing,
    now: datetime | None = None,
) -> Case:
    """A provider submitted a service (or a revision): open a case, or return a resubmission to the queue."""
    now = now or utcnow()
    owner = await catalog.submitted_service(session, service_id)
    bar = await active_bar(session, owner.provider_id, clock.today(at=now))
    if bar is not None:
        raise Conflict(
            _(
                "Your organisation is barred from submitting until %(date)s: %(reason)s",
                date=bar.ends_on.isoformat(),
                reason=bar.reason,
            )
        )
    await lock(session, locks.CASE_OPENING)
    existing = await open_case_of(session, service_id)
    if existing is not None and existing.state == CaseState.incomplete:
        previous = move(existing, CaseState.intake, now)
        existing.version_id = version_id
        existing.resubmissions += 1
        await add_event(session, existing, actor, "resubmitted", previous)
        await audit.record(
            session, actor, "committee.case_resubmitted", "case", existing.id, {"version_id": version_id}
        )
        return existing
    if existing is not None:
        raise Conflict(_("This service already has a case under review."))
    criteria = await current_criteria_set(session)
    case = Case(
        kind=kind,
        state=CaseState.assignment if kind == CaseKind.revision else CaseState.intake,
        service_id=service_id,
        version_id=version_id,
        provider_id=owner.provider_id,
        criteria_set_id=row_id(criteria),
        opened_at=now,
        state_changed_at=now,
    )
    session.add(case)
    await session.flush()
    await add_event(session, case, actor, "opened", "")
    await audit.record(
        session,
        actor,
        "committee.case_opened",
        "case",
        case.id,
        {"kind": kind, "service_id": service_id, "version_id": version_id},
    )
    return case


async def on_service_submitted(
    session: AsyncSession, *, service_id: int, version_id: int, actor: Actor | None = None, **_data: object
) -> None:
    await receive_submission(session, service_id=service_id, version_id=version_id, actor=actor)


async def on_revision_submitted(
    session: AsyncSession, *, service_id: int, version_id: int, actor: Actor | None = None, **_data: object
) -> None:
    await receive_submission(session, service_id=service_id, version_id=version_id, actor=actor, kind=CaseKind.revision)


async def apply_for_renewal(
    session: AsyncSession, principal: Principal, number: str, now: datetime | None = None
) -> Case:
    """The provider applies before expiry; the certificate stays valid until the renewal is decided."""
    now = now or utcnow()
    if not principal.is_kind("provider"):
        raise Forbidden(_("Only the provider applies to renew its certificate."))
    certificate = await certificate_by_number(session, number)
    if certificate.provider_id != principal.organisation_id:
        raise Refused(_("No certificate has the number %(number)s.", number=number))
    if certificate.status != CertificateStatus.valid or certificate.valid_to < clock.today(at=now):
        raise Conflict(_("Only a valid certificate can be renewed, before it expires."))
    owner = await catalog.submitted_service(session, certificate.service_id)
    if owner.listed_version_id is None:
        raise Conflict(_("The service has no listed version to renew."))
    case = await receive_submission(
        session,
        service_id=owner.id,
        version_id=owner.listed_version_id,
        actor=principal,
        kind=CaseKind.renewal,
        now=now,
    )
    case.renews_certificate_id = certificate.id
    await session.flush()
    return case


# --- reading cases --------------------------------------------------------------------------------


async def case_row(session: AsyncSession, case_id: int, *, for_update: bool = False) -> Case:
    if for_update:
        await lock(session, locks.case(case_id))
    case = await session.get(Case, case_id, populate_existing=for_update)
    if case is None:
        raise NotFound(_("No such case."))
    return case


async def active_assignments(session: AsyncSession, case_id: int) -> list[Assignment]:
    return list(
        (
            await session.scalars(
                sa.select(Assignment)
                .where(col(Assignment.case_id) == case_id, col(Assignment.released_at).is_(None))
                .order_by(col(Assignment.id))
            )
        ).all()
    )


async def submitted_reviews(session: AsyncSession, case_id: int) -> list[Review]:
    return list(
        (
            await session.scalars(
                sa.select(Review)
                .where(col(Review.case_id) == case_id, col(Review.status) == ReviewStatus.submitted)
                .order_by(col(Review.id))
            )
        ).all()
    )


async def open_case_for(
    session: AsyncSession, principal: Principal, case_id: int, now: datetime | None = None
) -> tuple[Case, Role]:
    """The case if the principal may see it: its provider, the secretariat, the chair, or an assigned member
    without a conflict. A conflicted or unassigned member is refused; another provider gets 404."""
    case = await case_row(session, case_id)
    role = await role_of(session, principal, now)
    if principal.is_kind("provider"):
        if case.provider_id != principal.organisation_id:
            raise Refused(_("No such case."))
        return case, role
    if principal.is_kind("committee") and not role.member:
        raise Forbidden(_("Your term on the committee is not current, so you have no access to cases."))
    if role.member and await conflicted(session, principal.user_id, case.provider_id, clock.today(at=now)):
        raise Forbidden(_("You declared a tie to this provider, so you cannot see or review this case."))
    if role.staff:
        return case, role
    if role.member:
        assigned = await session.scalar(
            sa.select(col(Assignment.id)).where(
                col(Assignment.case_id) == case.id,
                col(Assignment.member_id) == principal.user_id,
                col(Assignment.released_at).is_(None),
            )
        )
        if assigned is None:
            raise Forbidden(_("You are not assigned to this case."))
        return case, role
    raise NotFound(_("No such case."))


async def may_see_reviews(session: AsyncSession, role: Role, case: Case) -> bool:
    """Members see others' reviews only once their own is submitted; everyone else only after the decision."""
    if role.principal.is_kind("provider"):
        return False
    decided = case.state not in OPEN
    own = await session.scalar(
        sa.select(col(Review.id)).where(
            col(Review.case_id) == case.id,
            col(Review.member_id) == role.principal.user_id,
            col(Review.status) == ReviewStatus.submitted,
        )
    )
    if own is not None:
        return True
    return decided and (role.staff or role.member)


def age_days(case: Case, now: datetime | None = None) -> int:
    return ((now or utcnow()) - case.opened_at).days


async def case_summary(session: AsyncSession, case: Case, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    version = await catalog.submitted_version(session, case.version_id)
    rules_set = await criteria_set(session, case.criteria_set_id)
    age = age_days(case, now)
    return {
        "id": case.id,
        "kind": case.kind,
        "state": case.state,
        "service_id": case.service_id,
        "version_id": case.version_id,
        "version_number": version.number,
        "service_name": version.name,
        "provider_id": case.provider_id,
        "provider_name": await provider_name(session, case.provider_id),
        "opened_at": case.opened_at,
        "state_changed_at": case.state_changed_at,
        "age_days": age,
        "overdue": case.state in OPEN and age > rules_set.review_period_days,
        "message": case.message,
        "resubmissions": case.resubmissions,
        "criteria_set_version": rules_set.version,
    }


async def queue(
    session: AsyncSession,
    principal: Principal,
    *,
    state: str | None = None,
    overdue_only: bool = False,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Open cases (or those of one state), oldest first, with their age and whether they are overdue."""
    await require_staff(session, principal, now)
    query = sa.select(Case).order_by(col(Case.opened_at), col(Case.id))
    if state:
        if state not in CASE.states:
            raise Invalid(_("No such state."), errors={"state": _("Choose one of the offered values.")})
        query = query.where(col(Case.state) == state)
    else:
        query = query.where(col(Case.state).in_(OPEN))
    rows = [await case_summary(session, case, now) for case in (await session.scalars(query)).all()]
    return [row for row in rows if row["overdue"]] if overdue_only else rows


async def my_cases(session: AsyncSession, principal: Principal, now: datetime | None = None) -> list[dict[str, Any]]:
    await require_member(session, principal, now)
    cases = (
        await session.scalars(
            sa.select(Case)
            .join(Assignment, col(Assignment.case_id) == col(Case.id))
            .where(col(Assignment.member_id) == principal.user_id, col(Assignment.released_at).is_(None))
            .order_by(col(Case.opened_at), col(Case.id))
        )
    ).all()
    rows = []
    for case in cases:
        row = await case_summary(session, case, now)
        row["conflicted"] = await conflicted(session, principal.user_id, case.provider_id, clock.today(at=now))
        row["my_review"] = await session.scalar(
            sa.select(col(Review.status))
            .where(col(Review.case_id) == case.id, col(Review.member_id) == principal.user_id)
            .order_by(col(Review.id).desc())
            .limit(1)
        )
        rows.append(row)
    return rows


async def provider_cases(
    session: AsyncSession, principal: Principal, now: datetime | None = None
) -> list[dict[str, Any]]:
    if not principal.is_kind("provider"):
        raise Forbidden(_("This page is for providers."))
    cases = (
        await session.scalars(
            sa.select(Case)
            .where(col(Case.provider_id) == principal.organisation_id)
            .order_by(col(Case.opened_at).desc(), col(Case.id).desc())
        )
    ).all()
    rows = []
    for case in cases:
        row = await case_summary(session, case, now)
        decision = await session.scalar(sa.select(Decision).where(col(Decision.case_id) == case.id))
        row["reason"] = decision.reason if decision else ""
        rows.append(row)
    return rows


def review_json(review: Review, *, with_member: bool = True) -> dict[str, Any]:
    data = {
        "id": review.id,
        "case_id": review.case_id,
        "status": review.status,
        "answers": review.answers,
        "approve": review.approve,
        "comment": review.comment,
        "weighted_score": review.weighted_score,
        "passes_mandatory": review.passes_mandatory,
        "submitted_at": review.submitted_at,
        "withdrawn_at": review.withdrawn_at,
        "withdrawal_reason": review.withdrawal_reason,
    }
    if with_member:
        data["member_id"] = review.member_id
    return data


def differences(old: dict[str, Any] | None, new: dict[str, Any]) -> list[dict[str, Any]]:
    """What changed since the previously listed version, for the reviewer."""
    if old is None:
        return []
    return [{"field": c.field, "label": c.label, "old": c.old, "new": c.new} for c in catalog.version_changes(old, new)]


async def case_detail(
    session: AsyncSession, principal: Principal, case_id: int, now: datetime | None = None
) -> dict[str, Any]:
    """Everything the principal may see of one case."""
    case, role = await open_case_for(session, principal, case_id, now)
    summary = await case_summary(session, case, now)
    details = await catalog.submission_details(session, case.version_id)
    previous_id = await catalog.previous_listed_version_id(session, case.service_id, details["number"])
    previous = (
        await catalog.submission_details(session, previous_id)
        if previous_id and previous_id != case.version_id
        else None
    )
    rules_set = await criteria_set(session, case.criteria_set_id)
    history_query = (
        sa.select(CaseEvent).where(col(CaseEvent.case_id) == case.id).order_by(col(CaseEvent.at), col(CaseEvent.id))
    )
    if principal.is_kind("provider"):
        history_query = history_query.where(col(CaseEvent.visible_to_provider).is_(True))
    history = [
        {"at": e.at, "action": e.action, "from_state": e.from_state, "to_state": e.to_state, "message": e.message}
        for e in (await session.scalars(history_query)).all()
    ]
    decision = await session.scalar(sa.select(Decision).where(col(Decision.case_id) == case.id))
    data: dict[str, Any] = {
        **summary,
        "listing": details,
        "differences": differences(previous, details),
        "previous_version_number": previous["number"] if previous else None,
        "criteria": rules_set.criteria,
        "threshold": rules_set.threshold,
        "history": history,
        "decision": None,
        "assignments": [],
        "reviews": [],
        "reviews_visible": False,
        "my_review": None,
        "can_review": False,
        "can_withdraw": False,
        "role": {"member": role.member, "chair": role.chair, "operator": role.operator},
        "certificate": None,
    }
    certificate = await session.scalar(sa.select(Certificate).where(col(Certificate.case_id) == case.id))
    if certificate is not None:
        data["certificate"] = certificate_json(certificate)
    if decision is not None:
        data["decision"] = {"outcome": decision.outcome, "reason": decision.reason, "decided_at": decision.decided_at}
        if not principal.is_kind("provider"):
            data["decision"].update(
                computed_outcome=decision.computed_outcome,
                rule=decision.rule,
                result=decision.result,
                confirmation=decision.confirmation,
                override_reason=decision.override_reason,
                session_id=decision.session_id,
            )
    if principal.is_kind("provider"):
        return data
    assignments = await active_assignments(session, row_id(case))
    reviews = await submitted_reviews(session, row_id(case))
    submitted_by = {review.member_id for review in reviews}
    names = await names_of(session, {a.member_id for a in assignments} | submitted_by)
    on = clock.today(at=now)
    data["assignments"] = [
        {
            "member_id": a.member_id,
            "member_name": names.get(a.member_id, ""),
            "automatic": a.automatic,
            "assigned_at": a.assigned_at,
            "submitted": a.member_id in submitted_by,
            "conflicted": await conflicted(session, a.member_id, case.provider_id, on),
        }
        for a in assignments
    ]
    if role.member:
        mine = await session.scalar(
            sa.select(Review).where(
                col(Review.case_id) == case.id,
                col(Review.member_id) == principal.user_id,
                col(Review.status) == ReviewStatus.submitted,
            )
        )
        data["my_review"] = review_json(mine) if mine else None
        assigned = any(a.member_id == principal.user_id for a in assignments)
        data["can_review"] = assigned and mine is None and case.state == CaseState.review
        data["can_withdraw"] = mine is not None and case.state == CaseState.review
    if await may_see_reviews(session, role, case):
        data["reviews_visible"] = True
        data["reviews"] = [{**review_json(r), "member_name": names.get(r.member_id, "")} for r in reviews]
    return data


# --- intake ---------------------------------------------------------------------------------------


async def mark_complete(session: AsyncSession, principal: Principal, case_id: int, now: datetime | None = None) -> Case:
    now = now or utcnow()
    await require_operator(session, principal)
    case = await case_row(session, case_id, for_update=True)
    previous = move(case, CaseState.assignment, now)
    case.message = ""
    await add_event(session, case, principal, "complete", previous)
    await audit.record(session, principal, "committee.case_complete", "case", case.id)
    return case


async def mark_incomplete(
    session: AsyncSession, principal: Principal, case_id: int, message: str, now: datetime | None = None
) -> Case:
    now = now or utcnow()
    await require_operator(session, principal)
    message = message.strip()
    if not message:
        raise Invalid(
            _("Say what the provider must supply."), errors={"message": _("Say what the provider must supply.")}
        )
    case = await case_row(session, case_id, for_update=True)
    previous = move(case, CaseState.incomplete, now)
    case.message = message[:4000]
    if case.kind != CaseKind.renewal:
        await catalog.return_to_provider(session, principal, case.service_id, message)
    await add_event(session, case, principal, "incomplete", previous, message)
    await audit.record(session, principal, "committee.case_incomplete", "case", case.id, {"message": message[:200]})
    await notify_provider(
        session,
        case,
        _("Supplements requested for your submission"),
        _("The secretariat asks you to supply: %(request)s", request=message),
        f"incomplete-{case.id}-{case.resubmissions}",
    )
    return case


async def notify_provider(session: AsyncSession, case: Case, subject: str, body: str, key: str) -> None:
    for email in await provider_emails(session, case.provider_id):
        await outbox.send_email(session, email, subject, body, f"committee-{key}-{email}")


# --- assignment -----------------------------------------------------------------------------------


async def eligible_members(session: AsyncSession, case: Case, now: datetime | None = None) -> list[dict[str, Any]]:
    """Members with a current term, no tie to the provider and not yet assigned; fewest open cases first."""
    on = clock.today(at=now)
    members = (
        (
            await session.execute(
                sa.select(User)
                .join(Appointment, col(Appointment.user_id) == col(User.id))
                .join(Organisation, col(Organisation.id) == col(User.organisation_id))
                .where(
                    col(Organisation.kind) == "committee",
                    col(User.active).is_(True),
                    col(Appointment.starts_on) <= on,
                    col(Appointment.ends_on) >= on,
                )
                .order_by(col(User.id))
            )
        )
        .scalars()
        .unique()
        .all()
    )
    assigned = {a.member_id for a in await active_assignments(session, row_id(case))}
    open_counts = dict(
        (
            await session.execute(
                sa.select(col(Assignment.member_id), sa.func.count())
                .join(Case, col(Case.id) == col(Assignment.case_id))
                .where(col(Assignment.released_at).is_(None), col(Case.state).in_(OPEN))
                .group_by(col(Assignment.member_id))
            )
        )
        .tuples()
        .all()
    )
    rows = []
    for member in members:
        member_id = row_id(member)
        if member_id in assigned or await conflicted(session, member_id, case.provider_id, on):
            continue
        rows.append({"id": member_id, "name": member.name, "open_cases": open_counts.get(member_id, 0)})
    rows.sort(key=lambda row: (row["open_cases"], row["id"]))
    return rows


async def assign(
    session: AsyncSession,
    principal: Principal,
    case_id: int,
    member_ids: list[int],
    *,
    automatic: bool = False,
    now: datetime | None = None,
) -> list[Assignment]:
    """The chair assigns members; a member with a tie to the provider, or without a current term, is refused."""
    now = now or utcnow()
    await require_chair(session, principal, now)
    case = await case_row(session, case_id, for_update=True)
    if case.state not in BEFORE_DECISION:
        raise Conflict(
            _(
                "Members can be assigned only to a complete case before its decision (this one is %(state)s).",
                state=CASE.label(case.state).lower(),
            )
        )
    if not member_ids:
        raise Invalid(_("Choose at least one member."), errors={"member_ids": _("Choose at least one member.")})
    on = clock.today(at=now)
    eligible = {row["id"] for row in await eligible_members(session, case, now)}
    current = await active_assignments(session, row_id(case))
    rules_set = await criteria_set(session, case.criteria_set_id)
    needed = 1 if case.kind == CaseKind.revision else rules_set.reviewers_per_case
    for member_id in member_ids:
        if any(a.member_id == member_id for a in current):
            raise Conflict(_("This member is already assigned to the case."))
        if await conflicted(session, member_id, case.provider_id, on):
            raise Conflict(_("This member declared a tie to the provider and cannot be assigned to the case."))
        if member_id not in eligible:
            raise Conflict(_("Only committee members with a current term can be assigned."))
    if len(current) + len(member_ids) > needed:
        raise Conflict(
            _(
                "This case is reviewed by %(n)s members; %(assigned)s are already assigned.",
                n=needed,
                assigned=len(current),
            )
        )
    created = []
    for member_id in member_ids:
        existing = await session.scalar(
            sa.select(Assignment).where(col(Assignment.case_id) == case.id, col(Assignment.member_id) == member_id)
        )
        if existing is not None:  # released earlier, assigned again
            existing.released_at, existing.assigned_at, existing.automatic, existing.assigned_by_id = (
                None,
                now,
                automatic,
                principal.user_id,
            )
            created.append(existing)
        else:
            assignment = Assignment(
                case_id=row_id(case),
                member_id=member_id,
                automatic=automatic,
                assigned_by_id=principal.user_id,
                assigned_at=now,
            )
            session.add(assignment)
            created.append(assignment)
    previous = move(case, CaseState.review, now) if case.state == CaseState.assignment else case.state
    await session.flush()
    await add_event(
        session, case, principal, "assigned", previous, ", ".join(str(m) for m in member_ids), visible=False
    )
    await audit.record(
        session,
        principal,
        "committee.members_assigned",
        "case",
        case.id,
        {"member_ids": member_ids, "automatic": automatic},
    )
    return created


async def auto_assign(
    session: AsyncSession, principal: Principal, case_id: int, now: datetime | None = None
) -> list[Assignment]:
    """The eligible members with the fewest open cases, up to the number the case needs."""
    await require_chair(session, principal, now)
    case = await case_row(session, case_id, for_update=True)
    rules_set = await criteria_set(session, case.criteria_set_id)
    needed = (1 if case.kind == CaseKind.revision else rules_set.reviewers_per_case) - len(
        await active_assignments(session, row_id(case))
    )
    if needed <= 0:
        raise Conflict(_("The case already has all its members."))
    candidates = await eligible_members(session, case, now)
    if len(candidates) < needed:
        raise Conflict(
            _("Only %(n)s eligible members are available; %(needed)s are needed.", n=len(candidates), needed=needed)
        )
    return await assign(
        session, principal, case_id, [row["id"] for row in candidates[:needed]], automatic=True, now=now
    )


async def release(
    session: AsyncSession, principal: Principal, case_id: int, member_id: int, now: datetime | None = None
) -> None:
    """The chair releases a member who has not submitted (a tie declared late, say)."""
    now = now or utcnow()
    await require_chair(session, principal, now)
    case = await case_row(session, case_id, for_update=True)
    if case.state != CaseState.review:
        raise Conflict(_("Members can be released only while the case is under review."))
    assignment = await session.scalar(
        sa.select(Assignment).where(
            col(Assignment.case_id) == case.id,
            col(Assignment.member_id) == member_id,
            col(Assignment.released_at).is_(None),
        )
    )
    if assignment is None:
        raise NotFound(_("This member is not assigned to the case."))
    if await session.scalar(
        sa.select(col(Review.id)).where(
            col(Review.case_id) == case.id,
            col(Review.member_id) == member_id,
            col(Review.status) == ReviewStatus.submitted,
        )
    ):
        raise Conflict(_("This member has submitted a review and cannot be released."))
    assignment.released_at = now
    await session.flush()
    await add_event(session, case, principal, "released", case.state, str(member_id), visible=False)
    await audit.record(session, principal, "committee.member_released", "case", case.id, {"member_id": member_id})
