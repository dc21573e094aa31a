"""Members' reviews and the case's decision: a final, independent review each; the decision rule run once when
the last awaited review arrives; the chair's return for revision; carrying a decision out (certificate, listing,
notice to the provider).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

import catalog
from committee import rules
from committee.cases import (
    active_assignments,
    add_event,
    case_row,
    case_summary,
    move,
    notify_provider,
    review_json,
    submitted_reviews,
)
from committee.certificates import issue_certificate, restore_standing_of_service
from committee.members import conflicted, criteria_set, require_chair, require_member
from committee.models import Assignment, Case, CaseKind, CaseState, Confirmation, Decision, Review, ReviewStatus
from committee.workflow import CASE
from market import audit, clock
from market.audit import Actor
from market.auth import Principal
from market.database import row_id, utcnow
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.i18n import _

# --- reviews --------------------------------------------------------------------------------------


async def submit_review(
    session: AsyncSession,
    principal: Principal,
    case_id: int,
    *,
    answers: dict[str, Any] | None = None,
    approve: bool | None = None,
    comment: str = "",
    now: datetime | None = None,
) -> Review:
    """A final, independent review; the last one awaited runs the decision rule (exactly once per case)."""
    now = now or utcnow()
    await require_member(session, principal, now)
    case = await case_row(session, case_id, for_update=True)
    if await conflicted(session, principal.user_id, case.provider_id, clock.today(at=now)):
        raise Forbidden(_("You declared a tie to this provider, so you cannot see or review this case."))
    assigned = await session.scalar(
        sa.select(col(Assignment.id)).where(
            col(Assignment.case_id) == case.id,
            col(Assignment.member_id) == principal.user_id,
            col(Assignment.released_at).is_(None),
        )
    )
    if assigned is None:
        raise Forbidden(_("You are not assigned to this case."))
    if case.state != CaseState.review:
        raise Conflict(
            _("This case is not under review any more (it is %(state)s).", state=CASE.label(case.state).lower())
        )
    if await session.scalar(
        sa.select(col(Review.id)).where(
            col(Review.case_id) == case.id,
            col(Review.member_id) == principal.user_id,
            col(Review.status) == ReviewStatus.submitted,
        )
    ):
        raise Conflict(_("You have already submitted your review of this case; a submitted review is final."))
    comment = (comment or "").strip()
    if case.kind == CaseKind.revision:
        if approve is None:
            raise Invalid(_("The review is not complete."), errors={"approve": _("Choose approve or refuse.")})
        if not approve and not comment:
            raise Invalid(_("The review is not complete."), errors={"comment": _("Say why the revision is refused.")})
        review = Review(
            case_id=row_id(case),
            member_id=principal.user_id,
            approve=approve,
            comment=comment[:4000],
            passes_mandatory=approve,
            submitted_at=now,
        )
    else:
        rules_set = await criteria_set(session, case.criteria_set_id)
        checked = rules.check_review(rules_set.criteria, answers or {})
        review = Review(
            case_id=row_id(case),
            member_id=principal.user_id,
            answers=checked.answers,
            comment=comment[:4000],
            weighted_score=checked.weighted_score,
            passes_mandatory=checked.passes_mandatory,
            submitted_at=now,
        )
    session.add(review)
    await session.flush()
    await add_event(session, case, principal, "review_submitted", case.state, visible=False)
    await audit.record(session, principal, "committee.review_submitted", "review", review.id, {"case_id": case.id})
    await _decide_when_complete(session, case, now)
    return review


async def withdraw_review(
    session: AsyncSession, principal: Principal, case_id: int, reason: str, now: datetime | None = None
) -> Review:
    now = now or utcnow()
    await require_member(session, principal, now)
    case = await case_row(session, case_id, for_update=True)
    review = await session.scalar(
        sa.select(Review).where(
            col(Review.case_id) == case.id,
            col(Review.member_id) == principal.user_id,
            col(Review.status) == ReviewStatus.submitted,
        )
    )
    if review is None:
        raise NotFound(_("You have no submitted review of this case."))
    if case.state != CaseState.review:
        raise Conflict(_("The case is decided; its reviews can no longer be withdrawn."))
    reason = reason.strip()
    if not reason:
        raise Invalid(_("Say why you withdraw your review."), errors={"reason": _("Say why you withdraw your review.")})
    review.status, review.withdrawn_at, review.withdrawal_reason = ReviewStatus.withdrawn, now, reason[:2000]
    await add_event(session, case, principal, "review_withdrawn", case.state, reason, visible=False)
    await audit.record(
        session,
        principal,
        "committee.review_withdrawn",
        "review",
        review.id,
        {"case_id": case.id, "reason": reason[:200]},
    )
    return review


async def my_reviews(session: AsyncSession, principal: Principal, now: datetime | None = None) -> list[dict[str, Any]]:
    await require_member(session, principal, now)
    reviews = (
        await session.scalars(
            sa.select(Review)
            .where(col(Review.member_id) == principal.user_id)
            .order_by(col(Review.submitted_at).desc())
        )
    ).all()
    rows = []
    for review in reviews:
        case = await case_row(session, review.case_id)
        rows.append({**review_json(review, with_member=False), "case": await case_summary(session, case, now)})
    return rows


# --- decisions ------------------------------------------------------------------------------------


async def _decide_when_complete(session: AsyncSession, case: Case, now: datetime) -> Decision | None:
    """Runs the rule when every assigned member has submitted. The caller holds the case lock."""
    assignments = await active_assignments(session, row_id(case))
    reviews = await submitted_reviews(session, row_id(case))
    by_member = {review.member_id: review for review in reviews}
    if not assignments or any(a.member_id not in by_member for a in assignments):
        return None
    reviews = [by_member[a.member_id] for a in assignments]
    if case.kind == CaseKind.revision:
        review = reviews[0]
        outcome = CaseState.approved if review.approve else CaseState.refused
        decision = Decision(
            case_id=row_id(case),
            outcome=outcome,
            computed_outcome=outcome,
            decided_at=now,
            rule={"name": "light-review-by-one-member"},
            inputs={"reviews": [{"review_id": review.id, "approve": review.approve}]},
            result={"outcome": outcome},
            reason=review.comment if not review.approve else "",
            confirmation=Confirmation.not_needed,
        )
    else:
        rules_set = await criteria_set(session, case.criteria_set_id)
        computed = rules.decide(
            rules_set.criteria,
            rules_set.threshold,
            [
                {
                    "review_id": r.id,
                    "answers": r.answers,
                    "weighted_score": r.weighted_score,
                    "passes_mandatory": r.passes_mandatory,
                }
                for r in reviews
            ],
        )
        decision = Decision(
            case_id=row_id(case),
            outcome=computed.outcome,
            computed_outcome=computed.outcome,
            rule=computed.rule,
            inputs=computed.inputs,
            result=computed.result,
            reason=computed.reason,
            decided_at=now,
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
    previous = move(case, decision.outcome, now)
    await add_event(session, case, actor, "decided", previous, decision.reason)
    await audit.record(
        session,
        actor,
        "committee.case_decided",
        "case",
        case.id,
        {"outcome": decision.outcome, "rule": decision.rule.get("name", "")},
    )
    if decision.outcome == CaseState.certified:
        await issue_certificate(session, case, actor, now)
        await notify_provider(
            session,
            case,
            _("Your service is certified"),
            _("The committee certified your service; it is now listed."),
            f"decided-{case.id}",
        )
    elif decision.outcome == CaseState.approved:
        await catalog.list_version(session, actor, case.service_id)
        await restore_standing_of_service(session, case.service_id, now)
        await notify_provider(
            session,
            case,
            _("Your revision is approved"),
            _("The committee approved your revision; it is now listed."),
            f"decided-{case.id}",
        )
    elif decision.outcome == CaseState.refused:
        await catalog.refuse_revision(session, actor, case.service_id, decision.reason)
        await notify_provider(
            session, case, _("The committee's decision on your revision"), decision.reason, f"decided-{case.id}"
        )
    elif decision.outcome == CaseState.rejected:
        await notify_provider(
            session, case, _("The committee's decision on your submission"), decision.reason, f"decided-{case.id}"
        )
    elif decision.outcome == CaseState.returned:
        if case.kind != CaseKind.renewal:
            await catalog.return_to_provider(session, actor, case.service_id, decision.reason)
        await notify_provider(
            session, case, _("Your submission is returned for revision"), decision.reason, f"decided-{case.id}"
        )


async def return_for_revision(
    session: AsyncSession, principal: Principal, case_id: int, message: str, now: datetime | None = None
) -> Decision:
    """The chair returns a case under review to the provider instead of letting the rule decide."""
    now = now or utcnow()
    await require_chair(session, principal, now)
    message = message.strip()
    if not message:
        raise Invalid(
            _("Say what the provider must revise."), errors={"message": _("Say what the provider must revise.")}
        )
    case = await case_row(session, case_id, for_update=True)
    CASE.check(case.state, CaseState.returned)  # before the decision is written
    decision = Decision(
        case_id=row_id(case),
        outcome=CaseState.returned,
        computed_outcome="",
        rule={"name": "returned-by-chair"},
        inputs={},
        result={"outcome": CaseState.returned},
        reason=message[:4000],
        decided_by_id=principal.user_id,
        decided_at=now,
        confirmation=Confirmation.not_needed,
    )
    session.add(decision)
    await session.flush()
    case.message = message[:4000]
    await _apply(session, case, decision, principal, now)
    return decision
