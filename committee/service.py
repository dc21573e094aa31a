"""The committee's rules that change state: intake, ties, assignment, reviews, decisions, certificates,
sessions, expiry, suspension, revocation and bars. Every change writes an audit event in its transaction.

Functions that depend on the date take `now` (UTC); callers pass the real clock, tests pass their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import ServiceStatus, VersionState
from committee import catalog_port as port
from committee import rules
from committee.models import (
    OPEN_STATES, Assignment, Bar, Case, CaseEvent, CaseKind, CaseState, Certificate, CertificateStatus,
    CriteriaSet, Decision, Meeting, Reminder, Review, ReviewStatus, Tie, TieKind,
)
from market import clock
from market import audit, hooks, outbox
from market.audit import Actor
from market.auth import Principal, SystemActor
from market.csv_export import CsvWriter
from market.database import lock, utcnow
from market.errors import Conflict, Forbidden, Invalid, NotFound, Refused
from market.i18n import _
from market.models import Appointment, Organisation, User

CASE_LOCK_BASE = 7_400_000_000  # + case id: one writer per case at a time (PostgreSQL advisory lock)
CERTIFICATE_NUMBER_LOCK = 7_300_000_001
TIE_COOLING_OFF = timedelta(days=3 * 365)  # a tie that ended less than three years ago still conflicts
SYSTEM = SystemActor(email="committee")


# --- who may do what -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Role:
    """What the principal is to the committee right now."""

    principal: Principal
    member: bool  # a committee user with a current appointment
    chair: bool
    operator: bool

    @property
    def staff(self) -> bool:
        return self.chair or self.operator


async def role_of(session: AsyncSession, principal: Principal, now: datetime | None = None) -> Role:
    if principal.is_kind("operator"):
        return Role(principal, False, False, True)
    if not principal.is_kind("committee"):
        return Role(principal, False, False, False)
    on = clock.today(at=now)
    appointment = await session.scalar(
        sa.select(Appointment)
        .where(Appointment.user_id == principal.user_id, Appointment.starts_on <= on, Appointment.ends_on >= on)
        .order_by(Appointment.is_chair.desc())
        .limit(1)
    )
    if appointment is None:
        return Role(principal, False, False, False)
    return Role(principal, True, appointment.is_chair, False)


async def require_member(session: AsyncSession, principal: Principal, now: datetime | None = None) -> Role:
    role = await role_of(session, principal, now)
    if principal.is_kind("committee") and not role.member:
        raise Forbidden(_("Your term on the committee is not current, so you have no access to cases."))
    if not role.member:
        raise Forbidden(_("Only committee members can do this."))
    return role


async def require_chair(session: AsyncSession, principal: Principal, now: datetime | None = None) -> Role:
    role = await require_member(session, principal, now)
    if not role.chair:
        raise Forbidden(_("Only the chair of the committee can do this."))
    return role


async def require_staff(session: AsyncSession, principal: Principal, now: datetime | None = None) -> Role:
    role = await role_of(session, principal, now)
    if principal.is_kind("committee") and not role.member:
        raise Forbidden(_("Your term on the committee is not current, so you have no access to cases."))
    if not role.staff:
        raise Forbidden(_("Only the chair and the secretariat can do this."))
    return role


async def require_operator(session: AsyncSession, principal: Principal) -> Role:
    role = await role_of(session, principal)
    if not role.operator:
        raise Forbidden(_("Only the secretariat checks submissions for completeness."))
    return role


# --- criteria sets ---------------------------------------------------------------------------------

async def current_criteria_set(session: AsyncSession) -> CriteriaSet:
    """The newest version; the default set is created the first time one is needed."""
    found = await session.scalar(sa.select(CriteriaSet).order_by(CriteriaSet.version.desc()).limit(1))
    if found is None:
        found = CriteriaSet(version=1, criteria=[dict(c) for c in rules.DEFAULT_CRITERIA], note="Default criteria")
        session.add(found)
        await session.flush()
    return found


async def criteria_sets(session: AsyncSession) -> list[CriteriaSet]:
    await current_criteria_set(session)
    return list((await session.scalars(sa.select(CriteriaSet).order_by(CriteriaSet.version.desc()))).all())


async def criteria_set(session: AsyncSession, set_id: int) -> CriteriaSet:
    found = await session.get(CriteriaSet, set_id)
    if found is None:
        raise NotFound(_("No such criteria set."))
    return found


async def publish_criteria_set(
    session: AsyncSession, principal: Principal, *, criteria: list[dict[str, Any]], threshold: int,
    reviewers_per_case: int, review_period_days: int, certificate_years: int, note: str = "",
) -> CriteriaSet:
    """A new version; cases already open keep the version they opened with."""
    await require_chair(session, principal)
    errors = {}
    if not 0 <= threshold <= 100:
        errors["threshold"] = _("The threshold must be between 0 and 100.")
    if not 1 <= reviewers_per_case <= 15:
        errors["reviewers_per_case"] = _("Between 1 and 15 members review a case.")
    if not 1 <= review_period_days <= 365:
        errors["review_period_days"] = _("The review period is between 1 and 365 days.")
    if not 1 <= certificate_years <= 10:
        errors["certificate_years"] = _("A certificate is valid for 1 to 10 years.")
    if errors:
        raise Invalid(_("The criteria set is not valid."), errors=errors)
    cleaned = rules.check_criteria(criteria)
    latest = await current_criteria_set(session)
    created = CriteriaSet(
        version=latest.version + 1, criteria=cleaned, threshold=threshold, reviewers_per_case=reviewers_per_case,
        review_period_days=review_period_days, certificate_years=certificate_years, note=note[:2000],
        created_by_id=principal.user_id,
    )
    session.add(created)
    await session.flush()
    await audit.record(session, principal, "committee.criteria_published", "criteria_set", created.id, {"version": created.version})
    return created


# --- ties and conflicts ----------------------------------------------------------------------------

def tie_conflicts(tie: Tie, on: date) -> bool:
    return tie.starts_on <= on and (tie.ends_on is None or tie.ends_on >= on - TIE_COOLING_OFF)


async def conflicted(session: AsyncSession, member_id: int, provider_id: int, on: date) -> bool:
    ties = (await session.scalars(sa.select(Tie).where(Tie.member_id == member_id, Tie.provider_id == provider_id))).all()
    return any(tie_conflicts(tie, on) for tie in ties)


async def may_read_submissions(session: AsyncSession, principal: Principal, provider_id: int) -> bool:
    """The catalogue's submitted versions: the secretariat, and members in office without a tie to the provider."""
    role = await role_of(session, principal)
    if role.operator:
        return True
    return role.member and not await conflicted(session, principal.user_id, provider_id, clock.today())


async def ties_of(session: AsyncSession, member_id: int) -> list[Tie]:
    return list((await session.scalars(sa.select(Tie).where(Tie.member_id == member_id).order_by(Tie.starts_on.desc(), Tie.id))).all())


async def declare_tie(
    session: AsyncSession, principal: Principal, *, provider_id: int, kind: str, starts_on: date,
    ends_on: date | None = None, note: str = "",
) -> Tie:
    if not principal.is_kind("committee"):
        raise Forbidden(_("Only committee members declare ties."))
    errors = {}
    provider = await session.get(Organisation, provider_id)
    if provider is None or provider.kind != "provider":
        errors["provider_id"] = _("Choose a provider organisation.")
    if kind not in TieKind.__members__:
        errors["kind"] = _("Choose one of the offered values.")
    if ends_on is not None and ends_on < starts_on:
        errors["ends_on"] = _("The end date is before the start date.")
    if errors:
        raise Invalid(_("The tie could not be declared."), errors=errors)
    tie = Tie(member_id=principal.user_id, provider_id=provider_id, kind=kind, starts_on=starts_on, ends_on=ends_on, note=note[:1000])
    session.add(tie)
    await session.flush()
    await audit.record(session, principal, "committee.tie_declared", "tie", tie.id, {"provider_id": provider_id, "kind": kind})
    return tie


async def end_tie(session: AsyncSession, principal: Principal, tie_id: int, ends_on: date) -> Tie:
    tie = await session.get(Tie, tie_id)
    if tie is None:
        raise NotFound(_("No such tie."))
    if tie.member_id != principal.user_id:
        raise Refused(_("No such tie."))
    if ends_on < tie.starts_on:
        raise Invalid(_("The tie could not be ended."), errors={"ends_on": _("The end date is before the start date.")})
    tie.ends_on = ends_on
    await audit.record(session, principal, "committee.tie_ended", "tie", tie.id, {"ends_on": ends_on.isoformat()})
    return tie


# --- opening cases: the catalogue's submissions -----------------------------------------------------

async def _event(session: AsyncSession, case: Case, actor: Actor | None, action: str, from_state: str, message: str = "", visible: bool = True) -> None:
    session.add(CaseEvent(
        case_id=case.id, actor_id=getattr(actor, "user_id", None), action=action, from_state=from_state,  # type: ignore[arg-type]
        to_state=case.state, message=message, visible_to_provider=visible,
    ))
    await session.flush()


def _move(case: Case, state: str, now: datetime) -> str:
    previous = case.state
    case.state = state
    case.state_changed_at = now
    if state not in OPEN_STATES:
        case.closed_at = now
    return previous


async def active_bar(session: AsyncSession, provider_id: int, on: date) -> Bar | None:
    return await session.scalar(
        sa.select(Bar).where(Bar.provider_id == provider_id, Bar.starts_on <= on, Bar.ends_on >= on).order_by(Bar.ends_on.desc()).limit(1)
    )


async def open_case_of(session: AsyncSession, service_id: int) -> Case | None:
    return await session.scalar(sa.select(Case).where(Case.service_id == service_id, Case.state.in_(OPEN_STATES)).limit(1))


async def receive_submission(
    session: AsyncSession, *, service_id: int, version_id: int, actor: Actor | None, kind: str = CaseKind.listing, now: datetime | None = None,
) -> Case:
    """A provider submitted a service (or a revision): open a case, or return a resubmission to the queue."""
    now = now or utcnow()
    owner = await port.service(session, service_id)
    bar = await active_bar(session, owner.provider_id, clock.today(at=now))
    if bar is not None:
        raise Conflict(_("Your organisation is barred from submitting until %(date)s: %(reason)s", date=bar.ends_on.isoformat(), reason=bar.reason))
    await lock(session, CASE_LOCK_BASE)
    existing = await open_case_of(session, service_id)
    if existing is not None and existing.state == CaseState.incomplete:
        previous = _move(existing, CaseState.intake, now)
        existing.version_id = version_id
        existing.resubmissions += 1
        await _event(session, existing, actor, "resubmitted", previous)
        await audit.record(session, actor, "committee.case_resubmitted", "case", existing.id, {"version_id": version_id})
        return existing
    if existing is not None:
        raise Conflict(_("This service already has a case under review."))
    criteria = await current_criteria_set(session)
    case = Case(
        kind=kind, state=CaseState.assignment if kind == CaseKind.revision else CaseState.intake,
        service_id=service_id, version_id=version_id, provider_id=owner.provider_id,
        criteria_set_id=criteria.id, opened_at=now, state_changed_at=now,  # type: ignore[arg-type]
    )
    session.add(case)
    await session.flush()
    await _event(session, case, actor, "opened", "")
    await audit.record(session, actor, "committee.case_opened", "case", case.id, {"kind": kind, "service_id": service_id, "version_id": version_id})
    return case


async def on_service_submitted(session: AsyncSession, *, service_id: int, version_id: int, actor: Actor | None = None, **_data: object) -> None:
    await receive_submission(session, service_id=service_id, version_id=version_id, actor=actor)


async def on_revision_submitted(session: AsyncSession, *, service_id: int, version_id: int, actor: Actor | None = None, **_data: object) -> None:
    await receive_submission(session, service_id=service_id, version_id=version_id, actor=actor, kind=CaseKind.revision)


# --- reading cases ---------------------------------------------------------------------------------

async def case_row(session: AsyncSession, case_id: int, *, for_update: bool = False) -> Case:
    if for_update:
        await lock(session, CASE_LOCK_BASE + case_id)
    case = await session.get(Case, case_id, populate_existing=for_update)
    if case is None:
        raise NotFound(_("No such case."))
    return case


async def active_assignments(session: AsyncSession, case_id: int) -> list[Assignment]:
    return list((await session.scalars(
        sa.select(Assignment).where(Assignment.case_id == case_id, Assignment.released_at.is_(None)).order_by(Assignment.id)
    )).all())


async def submitted_reviews(session: AsyncSession, case_id: int) -> list[Review]:
    return list((await session.scalars(
        sa.select(Review).where(Review.case_id == case_id, Review.status == ReviewStatus.submitted).order_by(Review.id)
    )).all())


async def open_case_for(session: AsyncSession, principal: Principal, case_id: int, now: datetime | None = None) -> tuple[Case, Role]:
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
        assigned = await session.scalar(sa.select(Assignment.id).where(
            Assignment.case_id == case.id, Assignment.member_id == principal.user_id, Assignment.released_at.is_(None)))
        if assigned is None:
            raise Forbidden(_("You are not assigned to this case."))
        return case, role
    raise NotFound(_("No such case."))


async def may_see_reviews(session: AsyncSession, role: Role, case: Case) -> bool:
    """Members see others' reviews only once their own is submitted; everyone else only after the decision."""
    if role.principal.is_kind("provider"):
        return False
    decided = case.state not in OPEN_STATES
    own = await session.scalar(sa.select(Review.id).where(
        Review.case_id == case.id, Review.member_id == role.principal.user_id, Review.status == ReviewStatus.submitted))
    if own is not None:
        return True
    return decided and (role.staff or role.member)


def age_days(case: Case, now: datetime | None = None) -> int:
    return ((now or utcnow()) - case.opened_at).days


async def case_summary(session: AsyncSession, case: Case, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    version = await port.version(session, case.version_id)
    rules_set = await criteria_set(session, case.criteria_set_id)
    age = age_days(case, now)
    return {
        "id": case.id, "kind": case.kind, "state": case.state, "service_id": case.service_id, "version_id": case.version_id,
        "version_number": version.number, "service_name": version.name, "provider_id": case.provider_id,
        "provider_name": await port.provider_name(session, case.provider_id), "opened_at": case.opened_at,
        "state_changed_at": case.state_changed_at, "age_days": age,
        "overdue": case.state in OPEN_STATES and age > rules_set.review_period_days, "message": case.message,
        "resubmissions": case.resubmissions, "criteria_set_version": rules_set.version,
    }


async def queue(session: AsyncSession, principal: Principal, *, state: str | None = None, overdue_only: bool = False, now: datetime | None = None) -> list[dict[str, Any]]:
    """Open cases (or those of one state), oldest first, with their age and whether they are overdue."""
    await require_staff(session, principal, now)
    query = sa.select(Case).order_by(Case.opened_at, Case.id)
    if state:
        if state not in CaseState.__members__:
            raise Invalid(_("No such state."), errors={"state": _("Choose one of the offered values.")})
        query = query.where(Case.state == state)
    else:
        query = query.where(Case.state.in_(OPEN_STATES))
    rows = [await case_summary(session, case, now) for case in (await session.scalars(query)).all()]
    return [row for row in rows if row["overdue"]] if overdue_only else rows


async def my_cases(session: AsyncSession, principal: Principal, now: datetime | None = None) -> list[dict[str, Any]]:
    await require_member(session, principal, now)
    cases = (await session.scalars(
        sa.select(Case).join(Assignment, Assignment.case_id == Case.id)
        .where(Assignment.member_id == principal.user_id, Assignment.released_at.is_(None))
        .order_by(Case.opened_at, Case.id)
    )).all()
    rows = []
    for case in cases:
        row = await case_summary(session, case, now)
        row["conflicted"] = await conflicted(session, principal.user_id, case.provider_id, clock.today(at=now))
        row["my_review"] = await session.scalar(sa.select(Review.status).where(
            Review.case_id == case.id, Review.member_id == principal.user_id).order_by(Review.id.desc()).limit(1))
        rows.append(row)
    return rows


async def my_reviews(session: AsyncSession, principal: Principal, now: datetime | None = None) -> list[dict[str, Any]]:
    await require_member(session, principal, now)
    reviews = (await session.scalars(sa.select(Review).where(Review.member_id == principal.user_id).order_by(Review.submitted_at.desc()))).all()
    rows = []
    for review in reviews:
        case = await case_row(session, review.case_id)
        rows.append({**review_json(review, with_member=False), "case": await case_summary(session, case, now)})
    return rows


async def provider_cases(session: AsyncSession, principal: Principal, now: datetime | None = None) -> list[dict[str, Any]]:
    if not principal.is_kind("provider"):
        raise Forbidden(_("This page is for providers."))
    cases = (await session.scalars(sa.select(Case).where(Case.provider_id == principal.organisation_id).order_by(Case.opened_at.desc(), Case.id.desc()))).all()
    rows = []
    for case in cases:
        row = await case_summary(session, case, now)
        decision = await session.scalar(sa.select(Decision).where(Decision.case_id == case.id))
        row["reason"] = decision.reason if decision else ""
        rows.append(row)
    return rows


async def _names(session: AsyncSession, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return dict((await session.execute(sa.select(User.id, User.name).where(User.id.in_(user_ids)))).all())  # type: ignore[arg-type]


def review_json(review: Review, *, with_member: bool = True) -> dict[str, Any]:
    data = {
        "id": review.id, "case_id": review.case_id, "status": review.status, "answers": review.answers, "approve": review.approve,
        "comment": review.comment, "weighted_score": review.weighted_score, "passes_mandatory": review.passes_mandatory,
        "submitted_at": review.submitted_at, "withdrawn_at": review.withdrawn_at, "withdrawal_reason": review.withdrawal_reason,
    }
    if with_member:
        data["member_id"] = review.member_id
    return data


async def case_detail(session: AsyncSession, principal: Principal, case_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Everything the principal may see of one case."""
    case, role = await open_case_for(session, principal, case_id, now)
    summary = await case_summary(session, case, now)
    details = await port.version_details(session, case.version_id)
    previous_id = await port.previous_listed_version_id(session, case.service_id, details["number"])
    previous = await port.version_details(session, previous_id) if previous_id and previous_id != case.version_id else None
    rules_set = await criteria_set(session, case.criteria_set_id)
    history_query = sa.select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.at, CaseEvent.id)
    if principal.is_kind("provider"):
        history_query = history_query.where(CaseEvent.visible_to_provider.is_(True))
    history = [
        {"at": e.at, "action": e.action, "from_state": e.from_state, "to_state": e.to_state, "message": e.message}
        for e in (await session.scalars(history_query)).all()
    ]
    decision = await session.scalar(sa.select(Decision).where(Decision.case_id == case.id))
    data: dict[str, Any] = {
        **summary, "listing": details, "differences": port.differences(previous, details),
        "previous_version_number": previous["number"] if previous else None,
        "criteria": rules_set.criteria, "threshold": rules_set.threshold, "history": history,
        "decision": None, "assignments": [], "reviews": [], "reviews_visible": False, "my_review": None,
        "can_review": False, "can_withdraw": False, "role": {"member": role.member, "chair": role.chair, "operator": role.operator},
        "certificate": None,
    }
    certificate = await session.scalar(sa.select(Certificate).where(Certificate.case_id == case.id))
    if certificate is not None:
        data["certificate"] = certificate_json(certificate)
    if decision is not None:
        data["decision"] = {"outcome": decision.outcome, "reason": decision.reason, "decided_at": decision.decided_at}
        if not principal.is_kind("provider"):
            data["decision"].update(
                computed_outcome=decision.computed_outcome, rule=decision.rule, result=decision.result,
                confirmation=decision.confirmation, override_reason=decision.override_reason, session_id=decision.session_id,
            )
    if principal.is_kind("provider"):
        return data
    assignments = await active_assignments(session, case.id)
    reviews = await submitted_reviews(session, case.id)
    submitted_by = {review.member_id for review in reviews}
    names = await _names(session, {a.member_id for a in assignments} | submitted_by)
    on = clock.today(at=now)
    data["assignments"] = [
        {"member_id": a.member_id, "member_name": names.get(a.member_id, ""), "automatic": a.automatic, "assigned_at": a.assigned_at,
         "submitted": a.member_id in submitted_by, "conflicted": await conflicted(session, a.member_id, case.provider_id, on)}
        for a in assignments
    ]
    if role.member:
        mine = await session.scalar(sa.select(Review).where(
            Review.case_id == case.id, Review.member_id == principal.user_id, Review.status == ReviewStatus.submitted))
        data["my_review"] = review_json(mine) if mine else None
        assigned = any(a.member_id == principal.user_id for a in assignments)
        data["can_review"] = assigned and mine is None and case.state == CaseState.review
        data["can_withdraw"] = mine is not None and case.state == CaseState.review
    if await may_see_reviews(session, role, case):
        data["reviews_visible"] = True
        data["reviews"] = [{**review_json(r), "member_name": names.get(r.member_id, "")} for r in reviews]
    return data


# --- intake ----------------------------------------------------------------------------------------

async def mark_complete(session: AsyncSession, principal: Principal, case_id: int, now: datetime | None = None) -> Case:
    now = now or utcnow()
    await require_operator(session, principal)
    case = await case_row(session, case_id, for_update=True)
    if case.state != CaseState.intake:
        raise Conflict(_("Only a case waiting for the completeness check can be marked complete (this one is %(state)s).", state=case.state))
    previous = _move(case, CaseState.assignment, now)
    case.message = ""
    await _event(session, case, principal, "complete", previous)
    await audit.record(session, principal, "committee.case_complete", "case", case.id)
    return case


async def mark_incomplete(session: AsyncSession, principal: Principal, case_id: int, message: str, now: datetime | None = None) -> Case:
    now = now or utcnow()
    await require_operator(session, principal)
    message = message.strip()
    if not message:
        raise Invalid(_("Say what the provider must supply."), errors={"message": _("Say what the provider must supply.")})
    case = await case_row(session, case_id, for_update=True)
    if case.state != CaseState.intake:
        raise Conflict(_("Only a case waiting for the completeness check can be returned as incomplete (this one is %(state)s).", state=case.state))
    previous = _move(case, CaseState.incomplete, now)
    case.message = message[:4000]
    if case.kind != CaseKind.renewal:
        await port.return_to_provider(session, principal, case.service_id, message)
    await _event(session, case, principal, "incomplete", previous, message)
    await audit.record(session, principal, "committee.case_incomplete", "case", case.id, {"message": message[:200]})
    await _notify_provider(session, case, _("Supplements requested for your submission"), _("The secretariat asks you to supply: %(request)s", request=message), f"incomplete-{case.id}-{case.resubmissions}")
    return case


async def _notify_provider(session: AsyncSession, case: Case, subject: str, body: str, key: str) -> None:
    for email in await port.provider_emails(session, case.provider_id):
        await outbox.send_email(session, email, subject, body, f"committee-{key}-{email}")


# --- assignment ------------------------------------------------------------------------------------

async def eligible_members(session: AsyncSession, case: Case, now: datetime | None = None) -> list[dict[str, Any]]:
    """Members with a current term, no tie to the provider and not yet assigned; fewest open cases first."""
    on = clock.today(at=now)
    members = (await session.execute(
        sa.select(User).join(Appointment, Appointment.user_id == User.id).join(Organisation, Organisation.id == User.organisation_id)
        .where(Organisation.kind == "committee", User.active.is_(True), Appointment.starts_on <= on, Appointment.ends_on >= on)
        .order_by(User.id)
    )).scalars().unique().all()
    assigned = {a.member_id for a in await active_assignments(session, case.id)}
    open_counts = dict((await session.execute(
        sa.select(Assignment.member_id, sa.func.count()).join(Case, Case.id == Assignment.case_id)
        .where(Assignment.released_at.is_(None), Case.state.in_(OPEN_STATES)).group_by(Assignment.member_id)
    )).all())
    rows = []
    for member in members:
        if member.id in assigned or await conflicted(session, member.id, case.provider_id, on):  # type: ignore[arg-type]
            continue
        rows.append({"id": member.id, "name": member.name, "open_cases": open_counts.get(member.id, 0)})
    rows.sort(key=lambda row: (row["open_cases"], row["id"]))
    return rows


async def assign(session: AsyncSession, principal: Principal, case_id: int, member_ids: list[int], *, automatic: bool = False, now: datetime | None = None) -> list[Assignment]:
    """The chair assigns members; a member with a tie to the provider, or without a current term, is refused."""
    now = now or utcnow()
    await require_chair(session, principal, now)
    case = await case_row(session, case_id, for_update=True)
    if case.state not in (CaseState.assignment, CaseState.review):
        raise Conflict(_("Members can be assigned only to a complete case before its decision (this one is %(state)s).", state=case.state))
    if not member_ids:
        raise Invalid(_("Choose at least one member."), errors={"member_ids": _("Choose at least one member.")})
    on = clock.today(at=now)
    eligible = {row["id"] for row in await eligible_members(session, case, now)}
    current = await active_assignments(session, case.id)
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
        raise Conflict(_("This case is reviewed by %(n)s members; %(assigned)s are already assigned.", n=needed, assigned=len(current)))
    created = []
    for member_id in member_ids:
        existing = await session.scalar(sa.select(Assignment).where(Assignment.case_id == case.id, Assignment.member_id == member_id))
        if existing is not None:  # released earlier, assigned again
            existing.released_at, existing.assigned_at, existing.automatic, existing.assigned_by_id = None, now, automatic, principal.user_id
            created.append(existing)
        else:
            assignment = Assignment(case_id=case.id, member_id=member_id, automatic=automatic, assigned_by_id=principal.user_id, assigned_at=now)  # type: ignore[arg-type]
            session.add(assignment)
            created.append(assignment)
    previous = _move(case, CaseState.review, now) if case.state == CaseState.assignment else case.state
    await session.flush()
    await _event(session, case, principal, "assigned", previous, ", ".join(str(m) for m in member_ids), visible=False)
    await audit.record(session, principal, "committee.members_assigned", "case", case.id, {"member_ids": member_ids, "automatic": automatic})
    return created


async def auto_assign(session: AsyncSession, principal: Principal, case_id: int, now: datetime | None = None) -> list[Assignment]:
    """The eligible members with the fewest open cases, up to the number the case needs."""
    await require_chair(session, principal, now)
    case = await case_row(session, case_id, for_update=True)
    rules_set = await criteria_set(session, case.criteria_set_id)
    needed = (1 if case.kind == CaseKind.revision else rules_set.reviewers_per_case) - len(await active_assignments(session, case.id))
    if needed <= 0:
        raise Conflict(_("The case already has all its members."))
    candidates = await eligible_members(session, case, now)
    if len(candidates) < needed:
        raise Conflict(_("Only %(n)s eligible members are available; %(needed)s are needed.", n=len(candidates), needed=needed))
    return await assign(session, principal, case_id, [row["id"] for row in candidates[:needed]], automatic=True, now=now)


async def release(session: AsyncSession, principal: Principal, case_id: int, member_id: int, now: datetime | None = None) -> None:
    """The chair releases a member who has not submitted (a tie declared late, say)."""
    now = now or utcnow()
    await require_chair(session, principal, now)
    case = await case_row(session, case_id, for_update=True)
    if case.state != CaseState.review:
        raise Conflict(_("Members can be released only while the case is under review."))
    assignment = await session.scalar(sa.select(Assignment).where(
        Assignment.case_id == case.id, Assignment.member_id == member_id, Assignment.released_at.is_(None)))
    if assignment is None:
        raise NotFound(_("This member is not assigned to the case."))
    if await session.scalar(sa.select(Review.id).where(Review.case_id == case.id, Review.member_id == member_id, Review.status == ReviewStatus.submitted)):
        raise Conflict(_("This member has submitted a review and cannot be released."))
    assignment.released_at = now
    await session.flush()
    await _event(session, case, principal, "released", case.state, str(member_id), visible=False)
    await audit.record(session, principal, "committee.member_released", "case", case.id, {"member_id": member_id})


# --- reviews ---------------------------------------------------------------------------------------

async def submit_review(
    session: AsyncSession, principal: Principal, case_id: int, *, answers: dict[str, Any] | None = None,
    approve: bool | None = None, comment: str = "", now: datetime | None = None,
) -> Review:
    """A final, independent review; the last one awaited runs the decision rule (exactly once per case)."""
    now = now or utcnow()
    await require_member(session, principal, now)
    case = await case_row(session, case_id, for_update=True)
    if await conflicted(session, principal.user_id, case.provider_id, clock.today(at=now)):
        raise Forbidden(_("You declared a tie to this provider, so you cannot see or review this case."))
    assigned = await session.scalar(sa.select(Assignment.id).where(
        Assignment.case_id == case.id, Assignment.member_id == principal.user_id, Assignment.released_at.is_(None)))
    if assigned is None:
        raise Forbidden(_("You are not assigned to this case."))
    if case.state != CaseState.review:
        raise Conflict(_("This case is not under review any more (it is %(state)s).", state=case.state))
    if await session.scalar(sa.select(Review.id).where(Review.case_id == case.id, Review.member_id == principal.user_id, Review.status == ReviewStatus.submitted)):
        raise Conflict(_("You have already submitted your review of this case; a submitted review is final."))
    comment = (comment or "").strip()
    if case.kind == CaseKind.revision:
        if approve is None:
            raise Invalid(_("The review is not complete."), errors={"approve": _("Choose approve or refuse.")})
        if not approve and not comment:
            raise Invalid(_("The review is not complete."), errors={"comment": _("Say why the revision is refused.")})
        review = Review(case_id=case.id, member_id=principal.user_id, approve=approve, comment=comment[:4000], passes_mandatory=approve, submitted_at=now)  # type: ignore[arg-type]
    else:
        rules_set = await criteria_set(session, case.criteria_set_id)
        checked = rules.check_review(rules_set.criteria, answers or {})
        review = Review(
            case_id=case.id, member_id=principal.user_id, answers=checked.answers, comment=comment[:4000],  # type: ignore[arg-type]
            weighted_score=checked.weighted_score, passes_mandatory=checked.passes_mandatory, submitted_at=now,
        )
    session.add(review)
    await session.flush()
    await _event(session, case, principal, "review_submitted", case.state, visible=False)
    await audit.record(session, principal, "committee.review_submitted", "review", review.id, {"case_id": case.id})
    await _decide_when_complete(session, case, now)
    return review


async def withdraw_review(session: AsyncSession, principal: Principal, case_id: int, reason: str, now: datetime | None = None) -> Review:
    now = now or utcnow()
    await require_member(session, principal, now)
    case = await case_row(session, case_id, for_update=True)
    review = await session.scalar(sa.select(Review).where(
        Review.case_id == case.id, Review.member_id == principal.user_id, Review.status == ReviewStatus.submitted))
    if review is None:
        raise NotFound(_("You have no submitted review of this case."))
    if case.state != CaseState.review:
        raise Conflict(_("The case is decided; its reviews can no longer be withdrawn."))
    reason = reason.strip()
    if not reason:
        raise Invalid(_("Say why you withdraw your review."), errors={"reason": _("Say why you withdraw your review.")})
    review.status, review.withdrawn_at, review.withdrawal_reason = ReviewStatus.withdrawn, now, reason[:2000]
    await _event(session, case, principal, "review_withdrawn", case.state, reason, visible=False)
    await audit.record(session, principal, "committee.review_withdrawn", "review", review.id, {"case_id": case.id, "reason": reason[:200]})
    return review


# --- decisions -------------------------------------------------------------------------------------

async def _decide_when_complete(session: AsyncSession, case: Case, now: datetime) -> Decision | None:
    """Runs the rule when every assigned member has submitted. The caller holds the case lock."""
    assignments = await active_assignments(session, case.id)
    reviews = await submitted_reviews(session, case.id)
    by_member = {review.member_id: review for review in reviews}
    if not assignments or any(a.member_id not in by_member for a in assignments):
        return None
    reviews = [by_member[a.member_id] for a in assignments]
    if case.kind == CaseKind.revision:
        review = reviews[0]
        outcome = CaseState.approved if review.approve else CaseState.refused
        decision = Decision(
            case_id=case.id, outcome=outcome, computed_outcome=outcome, decided_at=now,  # type: ignore[arg-type]
            rule={"name": "light-review-by-one-member"}, inputs={"reviews": [{"review_id": review.id, "approve": review.approve}]},
            result={"outcome": outcome}, reason=review.comment if not review.approve else "", confirmation="not_needed",
        )
    else:
        rules_set = await criteria_set(session, case.criteria_set_id)
        computed = rules.decide(rules_set.criteria, rules_set.threshold, [
            {"review_id": r.id, "answers": r.answers, "weighted_score": r.weighted_score, "passes_mandatory": r.passes_mandatory} for r in reviews
        ])
        decision = Decision(
            case_id=case.id, outcome=computed.outcome, computed_outcome=computed.outcome, rule=computed.rule,  # type: ignore[arg-type]
            inputs=computed.inputs, result=computed.result, reason=computed.reason, decided_at=now,
        )
    session.add(decision)
    await session.flush()  # the unique case_id makes a second decision fail even if the lock were missing
    await _apply(session, case, decision, None, now)
    return decision


async def _apply(session: AsyncSession, case: Case, decision: Decision, actor: Actor | None, now: datetime) -> None:
    """Carry a decision out: the case's final state, the certificate, the listing.

    A certification or an approved revision takes effect at once. A rejected first listing stays submitted in
    the catalogue until a session confirms the rejection, so that the session can still override it.
    """
    previous = _move(case, decision.outcome, now)
    await _event(session, case, actor, "decided", previous, decision.reason)
    await audit.record(session, actor, "committee.case_decided", "case", case.id, {"outcome": decision.outcome, "rule": decision.rule.get("name", "")})
    if decision.outcome == CaseState.certified:
        await issue_certificate(session, case, actor, now)
        await _notify_provider(session, case, _("Your service is certified"), _("The committee certified your service; it is now listed."), f"decided-{case.id}")
    elif decision.outcome == CaseState.approved:
        await port.list_version(session, actor, case.service_id)
        await _restore_standing_of_service(session, case.service_id, now)
        await _notify_provider(session, case, _("Your revision is approved"), _("The committee approved your revision; it is now listed."), f"decided-{case.id}")
    elif decision.outcome == CaseState.refused:
        await port.refuse(session, actor, case.service_id, decision.reason)
        await _notify_provider(session, case, _("The committee's decision on your revision"), decision.reason, f"decided-{case.id}")
    elif decision.outcome == CaseState.rejected:
        await _notify_provider(session, case, _("The committee's decision on your submission"), decision.reason, f"decided-{case.id}")
    elif decision.outcome == CaseState.returned:
        if case.kind != CaseKind.renewal:
            await port.return_to_provider(session, actor, case.service_id, decision.reason)
        await _notify_provider(session, case, _("Your submission is returned for revision"), decision.reason, f"decided-{case.id}")


async def return_for_revision(session: AsyncSession, principal: Principal, case_id: int, message: str, now: datetime | None = None) -> Decision:
    """The chair returns a case under review to the provider instead of letting the rule decide."""
    now = now or utcnow()
    await require_chair(session, principal, now)
    message = message.strip()
    if not message:
        raise Invalid(_("Say what the provider must revise."), errors={"message": _("Say what the provider must revise.")})
    case = await case_row(session, case_id, for_update=True)
    if case.state not in (CaseState.assignment, CaseState.review):
        raise Conflict(_("Only a case before its decision can be returned for revision (this one is %(state)s).", state=case.state))
    decision = Decision(
        case_id=case.id, outcome=CaseState.returned, computed_outcome="", rule={"name": "returned-by-chair"},  # type: ignore[arg-type]
        inputs={}, result={"outcome": CaseState.returned}, reason=message[:4000], decided_by_id=principal.user_id, decided_at=now,
        confirmation="not_needed",
    )
    session.add(decision)
    await session.flush()
    case.message = message[:4000]
    await _apply(session, case, decision, principal, now)
    return decision


# --- certificates ----------------------------------------------------------------------------------

def certificate_json(certificate: Certificate) -> dict[str, Any]:
    return {
        "number": certificate.number, "service_id": certificate.service_id, "version_id": certificate.version_id,
        "version_number": certificate.version_number, "criteria_set_version": certificate.criteria_set_version,
        "service_name": certificate.service_name, "provider_name": certificate.provider_name,
        "valid_from": certificate.valid_from.isoformat(), "valid_to": certificate.valid_to.isoformat(),
        "status": certificate.status, "status_reason": certificate.status_reason,
        "suspended_until": certificate.suspended_until.isoformat() if certificate.suspended_until else None,
        "criteria_set_id": certificate.criteria_set_id, "case_id": certificate.case_id, "issued_at": certificate.issued_at,
    }


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


async def issue_certificate(session: AsyncSession, case: Case, actor: Actor | None, now: datetime) -> Certificate:
    rules_set = await criteria_set(session, case.criteria_set_id)
    await lock(session, CERTIFICATE_NUMBER_LOCK)
    year = clock.today(at=now).year
    last = await session.scalar(sa.select(sa.func.max(Certificate.sequence)).where(Certificate.year == year)) or 0
    version = await port.version(session, case.version_id)
    start = clock.today(at=now)
    certificate = Certificate(
        number=rules.certificate_number(year, last + 1), year=year, sequence=last + 1, service_id=case.service_id,
        version_id=case.version_id, version_number=version.number, provider_id=case.provider_id, case_id=case.id,  # type: ignore[arg-type]
        criteria_set_id=case.criteria_set_id, criteria_set_version=rules_set.version,
        service_name=version.name, provider_name=await port.provider_name(session, case.provider_id),
        valid_from=start, valid_to=_add_years(start, rules_set.certificate_years) - timedelta(days=1), issued_at=now, status_changed_at=now,
    )
    session.add(certificate)
    if case.kind == CaseKind.renewal and case.renews_certificate_id:
        old = await session.get(Certificate, case.renews_certificate_id)
        if old is not None and old.status in (CertificateStatus.valid, CertificateStatus.suspended, CertificateStatus.expired):
            old.status, old.status_reason, old.status_changed_at = CertificateStatus.renewed, certificate.number, now
    await session.flush()
    await audit.record(session, actor, "committee.certificate_issued", "certificate", certificate.id, {"number": certificate.number, "case_id": case.id})
    if version.state != VersionState.listed:
        await port.list_version(session, actor, case.service_id)
    await apply_standing(session, certificate, now)
    return certificate


async def certificate_by_number(session: AsyncSession, number: str) -> Certificate:
    found = await session.scalar(sa.select(Certificate).where(Certificate.number == number.strip().upper()))
    if found is None:
        raise NotFound(_("No certificate has the number %(number)s.", number=number))
    return found


async def certificate_of_service(session: AsyncSession, service_id: int) -> Certificate | None:
    """The service's current certificate (the latest issued), for the catalogue's service page."""
    return await session.scalar(sa.select(Certificate).where(Certificate.service_id == service_id).order_by(Certificate.issued_at.desc(), Certificate.id.desc()).limit(1))


async def valid_certificates_of(session: AsyncSession, service_ids: list[int], now: datetime | None = None) -> list[Certificate]:
    """The certificates of these services that are valid today (at most one a service: a renewal supersedes)."""
    return list((await session.scalars(
        sa.select(Certificate).where(Certificate.service_id.in_(service_ids), Certificate.status == CertificateStatus.valid,
                                     Certificate.valid_from <= clock.today(at=now), Certificate.valid_to >= clock.today(at=now))
        .order_by(Certificate.service_id, Certificate.issued_at)
    )).all())


async def register(session: AsyncSession, *, offset: int = 0, limit: int = 20, status: str | None = None) -> tuple[list[Certificate], int]:
    query = sa.select(Certificate)
    if status:
        query = query.where(Certificate.status == status)
    total = await session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    rows = (await session.scalars(query.order_by(Certificate.year.desc(), Certificate.sequence.desc()).offset(offset).limit(limit))).all()
    return list(rows), int(total)


async def certificates_by_expiry(session: AsyncSession, principal: Principal, now: datetime | None = None) -> list[Certificate]:
    await require_staff(session, principal, now)
    return list((await session.scalars(
        sa.select(Certificate).where(Certificate.status.in_([CertificateStatus.valid, CertificateStatus.suspended])).order_by(Certificate.valid_to, Certificate.id)
    )).all())


async def provider_certificates(session: AsyncSession, principal: Principal) -> list[Certificate]:
    if not principal.is_kind("provider"):
        raise Forbidden(_("This page is for providers."))
    return list((await session.scalars(
        sa.select(Certificate).where(Certificate.provider_id == principal.organisation_id).order_by(Certificate.valid_to.desc(), Certificate.id.desc())
    )).all())


async def standing(session: AsyncSession, certificate: Certificate, now: datetime) -> tuple[str, str]:
    """What the certificate's listing should be now, and why: the first thing that stands in the way wins."""
    on = clock.today(at=now)
    if certificate.status == CertificateStatus.revoked:
        return ServiceStatus.revoked, certificate.status_reason
    if certificate.status == CertificateStatus.expired:
        return ServiceStatus.expired, _("The certificate %(number)s expired on %(date)s.", number=certificate.number, date=certificate.valid_to.isoformat())
    if certificate.status == CertificateStatus.suspended:
        return ServiceStatus.suspended, certificate.status_reason
    bar = await active_bar(session, certificate.provider_id, on)
    if bar is not None:
        return ServiceStatus.suspended, _("The provider is barred until %(date)s: %(reason)s", date=bar.ends_on.isoformat(), reason=bar.reason)
    owner = await port.service(session, certificate.service_id)
    if owner.listed_version_id:
        csap_end = port.csap_valid_to(await port.version_details(session, owner.listed_version_id))
        if csap_end is not None and csap_end < on:
            return ServiceStatus.suspended, _("The recorded CSAP certification expired on %(date)s; upload a valid one.", date=csap_end.isoformat())
    return ServiceStatus.listed, ""


async def apply_standing(session: AsyncSession, certificate: Certificate, now: datetime, actor: Actor | None = None) -> None:
    """Bring the certified listing in line with what should stand now (only listings on offer change)."""
    if certificate.status == CertificateStatus.renewed:
        return
    owner = await port.service(session, certificate.service_id)
    if owner.status not in (ServiceStatus.listed, ServiceStatus.suspended):
        return
    status, reason = await standing(session, certificate, now)
    if owner.status == status:
        return
    until = None
    if certificate.status == CertificateStatus.suspended and certificate.suspended_until:
        until = datetime.combine(certificate.suspended_until, datetime.min.time(), tzinfo=now.tzinfo)
    await port.set_listing_status(session, actor or SYSTEM, certificate.service_id, status, reason, until)
    if status != ServiceStatus.listed:
        await hooks.emit("service.delisted", session, service_id=certificate.service_id, status=status, reason=reason)


async def _restore_standing_of_service(session: AsyncSession, service_id: int, now: datetime) -> None:
    certificate = await certificate_of_service(session, service_id)
    if certificate is not None:
        await apply_standing(session, certificate, now)


async def _certificate_for_update(session: AsyncSession, number: str) -> Certificate:
    certificate = await certificate_by_number(session, number)
    await lock(session, CASE_LOCK_BASE - certificate.id)  # type: ignore[operator]
    await session.refresh(certificate)
    return certificate


async def suspend(session: AsyncSession, principal: Principal, number: str, *, reason: str, until: date, now: datetime | None = None) -> Certificate:
    now = now or utcnow()
    await require_chair(session, principal, now)
    reason = reason.strip()
    errors = {}
    if not reason:
        errors["reason"] = _("Give the reason for the suspension.")
    if until <= clock.today(at=now):
        errors["until"] = _("The suspension must end after today.")
    if errors:
        raise Invalid(_("The certificate could not be suspended."), errors=errors)
    certificate = await _certificate_for_update(session, number)
    if certificate.status == CertificateStatus.suspended:
        raise Conflict(_("The certificate is already suspended until %(date)s.", date=certificate.suspended_until.isoformat() if certificate.suspended_until else ""))
    if certificate.status != CertificateStatus.valid:
        raise Conflict(_("Only a valid certificate can be suspended (this one is %(status)s).", status=certificate.status))
    certificate.status, certificate.status_reason, certificate.suspended_until, certificate.status_changed_at = CertificateStatus.suspended, reason[:2000], until, now
    await audit.record(session, principal, "committee.certificate_suspended", "certificate", certificate.id, {"number": certificate.number, "until": until.isoformat(), "reason": reason[:200]})
    await apply_standing(session, certificate, now, principal)
    return certificate


async def revoke(session: AsyncSession, principal: Principal, number: str, *, reason: str, now: datetime | None = None) -> Certificate:
    now = now or utcnow()
    await require_chair(session, principal, now)
    reason = reason.strip()
    if not reason:
        raise Invalid(_("The certificate could not be revoked."), errors={"reason": _("Give the reason for the revocation.")})
    certificate = await _certificate_for_update(session, number)
    if certificate.status not in (CertificateStatus.valid, CertificateStatus.suspended):
        raise Conflict(_("Only a valid or suspended certificate can be revoked (this one is %(status)s).", status=certificate.status))
    certificate.status, certificate.status_reason, certificate.suspended_until, certificate.status_changed_at = CertificateStatus.revoked, reason[:2000], None, now
    await audit.record(session, principal, "committee.certificate_revoked", "certificate", certificate.id, {"number": certificate.number, "reason": reason[:200]})
    await apply_standing(session, certificate, now, principal)
    return certificate


async def bar_provider(session: AsyncSession, principal: Principal, *, provider_id: int, starts_on: date, ends_on: date, reason: str, now: datetime | None = None) -> Bar:
    now = now or utcnow()
    await require_chair(session, principal, now)
    errors = {}
    provider = await session.get(Organisation, provider_id)
    if provider is None or provider.kind != "provider":
        errors["provider_id"] = _("Choose a provider organisation.")
    if ends_on < starts_on:
        errors["ends_on"] = _("The end date is before the start date.")
    if not reason.strip():
        errors["reason"] = _("Give the reason for the bar.")
    if errors:
        raise Invalid(_("The provider could not be barred."), errors=errors)
    bar = Bar(provider_id=provider_id, starts_on=starts_on, ends_on=ends_on, reason=reason.strip()[:2000], created_by_id=principal.user_id, created_at=now)
    session.add(bar)
    await session.flush()
    await audit.record(session, principal, "committee.provider_barred", "bar", bar.id, {"provider_id": provider_id, "ends_on": ends_on.isoformat()})
    for certificate in await _live_certificates(session, provider_id):
        await apply_standing(session, certificate, now, principal)
    return bar


async def bars(session: AsyncSession, principal: Principal) -> list[Bar]:
    await require_staff(session, principal)
    return list((await session.scalars(sa.select(Bar).order_by(Bar.ends_on.desc(), Bar.id.desc()))).all())


async def _live_certificates(session: AsyncSession, provider_id: int | None = None) -> list[Certificate]:
    query = sa.select(Certificate).where(Certificate.status.in_([CertificateStatus.valid, CertificateStatus.suspended])).order_by(Certificate.id)
    if provider_id is not None:
        query = query.where(Certificate.provider_id == provider_id)
    return list((await session.scalars(query)).all())


# --- renewal ---------------------------------------------------------------------------------------

async def apply_for_renewal(session: AsyncSession, principal: Principal, number: str, now: datetime | None = None) -> Case:
    """The provider applies before expiry; the certificate stays valid until the renewal is decided."""
    now = now or utcnow()
    if not principal.is_kind("provider"):
        raise Forbidden(_("Only the provider applies to renew its certificate."))
    certificate = await certificate_by_number(session, number)
    if certificate.provider_id != principal.organisation_id:
        raise Refused(_("No certificate has the number %(number)s.", number=number))
    if certificate.status != CertificateStatus.valid or certificate.valid_to < clock.today(at=now):
        raise Conflict(_("Only a valid certificate can be renewed, before it expires."))
    owner = await port.service(session, certificate.service_id)
    if owner.listed_version_id is None:
        raise Conflict(_("The service has no listed version to renew."))
    case = await receive_submission(session, service_id=owner.id, version_id=owner.listed_version_id, actor=principal, kind=CaseKind.renewal, now=now)  # type: ignore[arg-type]
    case.renews_certificate_id = certificate.id
    await session.flush()
    return case


async def _renewal_pending(session: AsyncSession, certificate: Certificate) -> bool:
    return bool(await session.scalar(sa.select(Case.id).where(
        Case.renews_certificate_id == certificate.id, Case.state.in_(OPEN_STATES))))


# --- the sweep -------------------------------------------------------------------------------------

@dataclass
class SweepReport:
    expired: int = 0
    reminded: int = 0
    resumed: int = 0
    listings_changed: int = 0


async def sweep(session: AsyncSession, settings: Any = None, now: datetime | None = None) -> SweepReport:
    """Expire certificates past their end (unless a renewal is pending), remind providers 90, 30 and 7 days
    before, end suspensions that ran out, and bring each listing in line with its certificate, bar and CSAP."""
    now = now or utcnow()
    on = clock.today(at=now)
    report = SweepReport()
    base_url = getattr(settings, "base_url", "")
    for certificate in await _live_certificates(session):
        if certificate.status == CertificateStatus.suspended and certificate.suspended_until and certificate.suspended_until < on:
            certificate.status, certificate.status_reason, certificate.suspended_until, certificate.status_changed_at = CertificateStatus.valid, "", None, now
            await audit.record(session, SYSTEM, "committee.suspension_ended", "certificate", certificate.id, {"number": certificate.number})
            report.resumed += 1
        if certificate.valid_to < on and not await _renewal_pending(session, certificate):
            certificate.status, certificate.status_changed_at = CertificateStatus.expired, now
            certificate.status_reason = _("Expired on %(date)s.", date=certificate.valid_to.isoformat())
            await audit.record(session, SYSTEM, "committee.certificate_expired", "certificate", certificate.id, {"number": certificate.number})
            report.expired += 1
        elif certificate.valid_to >= on:
            report.reminded += await _remind(session, certificate, on, base_url)
        before = (await port.service(session, certificate.service_id)).status
        await apply_standing(session, certificate, now)
        if (await port.service(session, certificate.service_id)).status != before:
            report.listings_changed += 1
    return report


async def _remind(session: AsyncSession, certificate: Certificate, on: date, base_url: str) -> int:
    """At most one reminder per lead time, ever: the nearest lead time reached and not yet sent."""
    days_left = (certificate.valid_to - on).days
    due = [days for days in rules.REMINDER_DAYS if days_left <= days]
    if not due:
        return 0
    days = min(due)
    if await session.scalar(sa.select(Reminder.id).where(Reminder.certificate_id == certificate.id, Reminder.days_before == days)):
        return 0
    session.add(Reminder(certificate_id=certificate.id, days_before=days))  # type: ignore[arg-type]
    await session.flush()
    subject = _("Certificate %(number)s expires on %(date)s", number=certificate.number, date=certificate.valid_to.isoformat())
    body = _(
        "The certificate %(number)s of %(service)s expires on %(date)s (in %(days)s days). Apply to renew it before then: %(url)s",
        number=certificate.number, service=certificate.service_name, date=certificate.valid_to.isoformat(), days=days_left,
        url=f"{base_url}/provider/certificates",
    )
    for email in await port.provider_emails(session, certificate.provider_id):
        await outbox.send_email(session, email, subject, body, f"committee-certificate-{certificate.id}-expiry-{days}-{email}")
    await audit.record(session, SYSTEM, "committee.expiry_reminded", "certificate", certificate.id, {"number": certificate.number, "days_before": days})
    return 1


async def periodic_sweep(sessions: Any, settings: Any) -> None:
    async with sessions() as session, session.begin():
        await sweep(session, settings)


async def reminders_for_provider(session: AsyncSession, principal: Principal, now: datetime | None = None) -> list[dict[str, Any]]:
    """The provider's certificates expiring within 90 days, for its dashboard."""
    on = clock.today(at=now)
    rows = []
    for certificate in await provider_certificates(session, principal):
        if certificate.status == CertificateStatus.valid and 0 <= (certificate.valid_to - on).days <= max(rules.REMINDER_DAYS):
            rows.append({"number": certificate.number, "service_name": certificate.service_name, "valid_to": certificate.valid_to.isoformat(),
                         "days_left": (certificate.valid_to - on).days, "renewal_pending": await _renewal_pending(session, certificate)})
    return rows


# --- sessions (meetings) and minutes ---------------------------------------------------------------

async def meetings(session: AsyncSession, principal: Principal) -> list[Meeting]:
    await require_staff(session, principal)
    return list((await session.scalars(sa.select(Meeting).order_by(Meeting.held_on.desc(), Meeting.id.desc()))).all())


async def create_meeting(session: AsyncSession, principal: Principal, *, held_on: date, title: str, quorum: int) -> Meeting:
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
    await audit.record(session, principal, "committee.session_created", "session", meeting.id, {"held_on": held_on.isoformat()})
    return meeting


async def meeting_row(session: AsyncSession, meeting_id: int) -> Meeting:
    meeting = await session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound(_("No such session."))
    return meeting


async def _open_meeting(session: AsyncSession, principal: Principal, meeting_id: int) -> Meeting:
    await require_chair(session, principal)
    await lock(session, CASE_LOCK_BASE - 1_000_000 - meeting_id)
    meeting = await meeting_row(session, meeting_id)
    await session.refresh(meeting)
    if meeting.status != "open":
        raise Conflict(_("The session is closed; its record cannot change."))
    return meeting


async def record_attendance(session: AsyncSession, principal: Principal, meeting_id: int, member_ids: list[int]) -> Meeting:
    meeting = await _open_meeting(session, principal, meeting_id)
    known = set((await session.scalars(sa.select(User.id).join(Organisation, Organisation.id == User.organisation_id).where(
        User.id.in_(member_ids or [0]), Organisation.kind == "committee"))).all())
    if set(member_ids) - known:
        raise Invalid(_("Attendance lists committee members only."), errors={"member_ids": _("Choose committee members.")})
    meeting.attendees = sorted(set(member_ids))
    await audit.record(session, principal, "committee.attendance_recorded", "session", meeting.id, {"attendees": meeting.attendees})
    return meeting


async def add_to_meeting(session: AsyncSession, principal: Principal, meeting_id: int, case_id: int) -> Decision:
    meeting = await _open_meeting(session, principal, meeting_id)
    decision = await session.scalar(sa.select(Decision).where(Decision.case_id == case_id))
    if decision is None or decision.confirmation == "not_needed":
        raise Conflict(_("Only a case the rule decided can be put before a session."))
    if decision.session_id is not None:
        raise Conflict(_("This decision is already before a session."))
    decision.session_id = meeting.id
    await audit.record(session, principal, "committee.session_case_added", "session", meeting.id, {"case_id": case_id})
    return decision


async def confirm_decision(session: AsyncSession, principal: Principal, meeting_id: int, case_id: int, *, override: str | None = None, reason: str = "", now: datetime | None = None) -> Decision:
    """Confirm the computed decision, or override it with a written reason (the new outcome is carried out)."""
    now = now or utcnow()
    meeting = await _open_meeting(session, principal, meeting_id)
    if len(meeting.attendees) < meeting.quorum:
        raise Conflict(_("The session has no quorum (%(present)s present, %(quorum)s needed).", present=len(meeting.attendees), quorum=meeting.quorum))
    case = await case_row(session, case_id, for_update=True)
    decision = await session.scalar(sa.select(Decision).where(Decision.case_id == case_id, Decision.session_id == meeting.id))
    if decision is None:
        raise NotFound(_("This case is not before this session."))
    if decision.confirmation != "pending":
        raise Conflict(_("This decision is already %(state)s.", state=decision.confirmation))
    if override is None or override == decision.outcome:
        decision.confirmation, decision.confirmed_at = "confirmed", now
        await audit.record(session, principal, "committee.decision_confirmed", "case", case.id, {"session_id": meeting.id})
        if decision.outcome == CaseState.rejected and case.kind == CaseKind.listing:
            await port.refuse(session, principal, case.service_id, decision.reason)
        return decision
    if override not in (CaseState.certified, CaseState.rejected):
        raise Invalid(_("Choose one of the offered outcomes."), errors={"override": _("Choose one of the offered values.")})
    if not reason.strip():
        raise Invalid(_("An override needs a written reason."), errors={"reason": _("An override needs a written reason.")})
    if decision.outcome == CaseState.certified:
        certificate = await session.scalar(sa.select(Certificate).where(Certificate.case_id == case.id))
        if certificate is not None:
            certificate.status, certificate.status_reason, certificate.status_changed_at = CertificateStatus.revoked, reason.strip()[:2000], now
            await apply_standing(session, certificate, now, principal)
    decision.confirmation, decision.confirmed_at, decision.override_reason = "overridden", now, reason.strip()[:4000]
    decision.outcome, decision.reason = override, reason.strip()[:4000] if override == CaseState.rejected else ""
    previous = _move(case, override, now)
    await _event(session, case, principal, "overridden", previous, reason.strip())
    await audit.record(session, principal, "committee.decision_overridden", "case", case.id, {"session_id": meeting.id, "outcome": override, "reason": reason[:200]})
    if override == CaseState.certified:
        await issue_certificate(session, case, principal, now)
    return decision


async def close_meeting(session: AsyncSession, principal: Principal, meeting_id: int, now: datetime | None = None) -> Meeting:
    now = now or utcnow()
    meeting = await _open_meeting(session, principal, meeting_id)
    pending = await session.scalar(sa.select(sa.func.count()).where(Decision.session_id == meeting.id, Decision.confirmation == "pending"))
    if pending:
        raise Conflict(_("Confirm or override every decision before closing the session (%(n)s left).", n=pending))
    meeting.status, meeting.closed_at = "closed", now
    await audit.record(session, principal, "committee.session_closed", "session", meeting.id)
    return meeting


async def minutes(session: AsyncSession, principal: Principal, meeting_id: int) -> dict[str, Any]:
    await require_staff(session, principal)
    meeting = await meeting_row(session, meeting_id)
    names = await _names(session, set(meeting.attendees))
    decisions = (await session.scalars(sa.select(Decision).where(Decision.session_id == meeting.id).order_by(Decision.case_id))).all()
    items = []
    for decision in decisions:
        case = await case_row(session, decision.case_id)
        summary = await case_summary(session, case)
        certificate = await session.scalar(sa.select(Certificate.number).where(Certificate.case_id == case.id, Certificate.status != CertificateStatus.revoked))
        items.append({
            "case_id": case.id, "kind": case.kind, "service_name": summary["service_name"], "provider_name": summary["provider_name"],
            "version_number": summary["version_number"], "computed_outcome": decision.computed_outcome, "outcome": decision.outcome,
            "confirmation": decision.confirmation, "reason": decision.override_reason or decision.reason, "certificate": certificate or "",
        })
    ready = [] if meeting.status != "open" else [
        await case_summary(session, case) for case in (await session.scalars(
            sa.select(Case).join(Decision, Decision.case_id == Case.id)
            .where(Decision.session_id.is_(None), Decision.confirmation == "pending").order_by(Case.id))).all()
    ]
    members = (await session.execute(
        sa.select(User.id, User.name).join(Organisation, Organisation.id == User.organisation_id).where(Organisation.kind == "committee").order_by(User.name)
    )).all()
    return {
        "id": meeting.id, "held_on": meeting.held_on.isoformat(), "title": meeting.title, "quorum": meeting.quorum,
        "status": meeting.status, "attendees": [{"id": i, "name": names.get(i, "")} for i in meeting.attendees],
        "quorate": len(meeting.attendees) >= meeting.quorum, "items": items, "ready_cases": ready,
        "members": [{"id": m.id, "name": m.name} for m in members], "closed_at": meeting.closed_at,
    }


def minutes_csv(record: dict[str, Any]) -> str:
    writer = CsvWriter()
    writer.writerow(["session", record["title"], record["held_on"], record["status"]])
    writer.writerow(["attendees", "; ".join(a["name"] for a in record["attendees"]), "quorum", record["quorum"]])
    writer.writerow(["case", "kind", "provider", "service", "version", "computed outcome", "outcome", "confirmation", "reason", "certificate"])
    for item in record["items"]:
        writer.writerow([item["case_id"], item["kind"], item["provider_name"], item["service_name"], item["version_number"],
                         item["computed_outcome"], item["outcome"], item["confirmation"], item["reason"], item["certificate"]])
    return writer.text(byte_order_mark=False)


async def provider_options(session: AsyncSession) -> list[tuple[int, str]]:
    return [(row.id, row.name) for row in (await session.execute(
        sa.select(Organisation.id, Organisation.name).where(Organisation.kind == "provider").order_by(Organisation.name))).all()]

