"""Who the committee's people are and what each may do: roles from appointments, the criteria sets cases are
reviewed by, and members' declared ties to providers (a tie is a conflict of interest for three years after it ends).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from committee import rules
from committee.models import CriteriaSet, Tie, TieKind
from market import audit, clock
from market.auth import Principal
from market.database import id_column
from market.errors import Forbidden, Invalid, NotFound, Refused
from market.i18n import _
from market.models import Appointment, Organisation, User

TIE_COOLING_OFF = timedelta(days=3 * 365)  # a tie that ended less than three years ago still conflicts


# --- who may do what ------------------------------------------------------------------------------


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
        .where(
            col(Appointment.user_id) == principal.user_id,
            col(Appointment.starts_on) <= on,
            col(Appointment.ends_on) >= on,
        )
        .order_by(col(Appointment.is_chair).desc())
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


# --- criteria sets --------------------------------------------------------------------------------


async def current_criteria_set(session: AsyncSession) -> CriteriaSet:
    """The newest version; the default set is created the first time one is needed."""
    found = await session.scalar(sa.select(CriteriaSet).order_by(col(CriteriaSet.version).desc()).limit(1))
    if found is None:
        found = CriteriaSet(version=1, criteria=[dict(c) for c in rules.DEFAULT_CRITERIA], note="Default criteria")
        session.add(found)
        await session.flush()
    return found


async def criteria_sets(session: AsyncSession) -> list[CriteriaSet]:
    await current_criteria_set(session)
    return list((await session.scalars(sa.select(CriteriaSet).order_by(col(CriteriaSet.version).desc()))).all())


async def criteria_set(session: AsyncSession, set_id: int) -> CriteriaSet:
    found = await session.get(CriteriaSet, set_id)
    if found is None:
        raise NotFound(_("No such criteria set."))
    return found


async def publish_criteria_set(
    session: AsyncSession,
    principal: Principal,
    *,
    criteria: list[dict[str, Any]],
    threshold: int,
    reviewers_per_case: int,
    review_period_days: int,
    certificate_years: int,
    note: str = "",
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
        version=latest.version + 1,
        criteria=cleaned,
        threshold=threshold,
        reviewers_per_case=reviewers_per_case,
        review_period_days=review_period_days,
        certificate_years=certificate_years,
        note=note[:2000],
        created_by_id=principal.user_id,
    )
    session.add(created)
    await session.flush()
    await audit.record(
        session, principal, "committee.criteria_published", "criteria_set", created.id, {"version": created.version}
    )
    return created


# --- ties and conflicts ---------------------------------------------------------------------------


def tie_conflicts(tie: Tie, on: date) -> bool:
    return tie.starts_on <= on and (tie.ends_on is None or tie.ends_on >= on - TIE_COOLING_OFF)


async def conflicted(session: AsyncSession, member_id: int, provider_id: int, on: date) -> bool:
    ties = (
        await session.scalars(
            sa.select(Tie).where(col(Tie.member_id) == member_id, col(Tie.provider_id) == provider_id)
        )
    ).all()
    return any(tie_conflicts(tie, on) for tie in ties)


async def may_read_submissions(session: AsyncSession, principal: Principal, provider_id: int) -> bool:
    """The catalogue's submitted versions: the secretariat, and members in office without a tie to the provider."""
    role = await role_of(session, principal)
    if role.operator:
        return True
    return role.member and not await conflicted(session, principal.user_id, provider_id, clock.today())


async def ties_of(session: AsyncSession, member_id: int) -> list[Tie]:
    return list(
        (
            await session.scalars(
                sa.select(Tie).where(col(Tie.member_id) == member_id).order_by(col(Tie.starts_on).desc(), col(Tie.id))
            )
        ).all()
    )


async def declare_tie(
    session: AsyncSession,
    principal: Principal,
    *,
    provider_id: int,
    kind: str,
    starts_on: date,
    ends_on: date | None = None,
    note: str = "",
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
    tie = Tie(
        member_id=principal.user_id,
        provider_id=provider_id,
        kind=kind,
        starts_on=starts_on,
        ends_on=ends_on,
        note=note[:1000],
    )
    session.add(tie)
    await session.flush()
    await audit.record(
        session, principal, "committee.tie_declared", "tie", tie.id, {"provider_id": provider_id, "kind": kind}
    )
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


async def names_of(session: AsyncSession, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return dict(
        (await session.execute(sa.select(id_column(User.id), col(User.name)).where(col(User.id).in_(user_ids))))
        .tuples()
        .all()
    )
