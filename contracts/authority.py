"""Authority inside an organisation: who may draft, sign and approve a contract.

An agency's buyers (and administrators) draft, change and send contracts; its signers (and administrators) sign
them, each only up to a signing limit in won that another administrator of the agency sets: a contract or an
amendment whose total value over its term, VAT included, is above the signer's limit is refused with 409 naming the
members whose limit suffices (as a Korean contracting officer, 계약관, signs and a US contracting officer signs
within a warrant). A buyer never signs. A provider's signers and administrators sign without a limit.

Above an agency's approval threshold, a draft is sent only once a second member (a signer or an administrator
who neither drafted nor last changed it) has approved it; a change to the draft withdraws the approval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts.models import ApprovalThreshold, Contract, ContractStatus, ContractVersion, Side, VersionState
from contracts.workflow import CONTRACT
from market import audit
from market.auth import Principal
from market.database import utcnow
from market.errors import Conflict, Forbidden, Invalid
from market.formatting import money, number
from market.i18n import _
from market.models import MemberRole, User
from market.schemas import MONEY_MAX

# The roles that draft, change, send, withdraw, revise, cancel and renew an agency's contracts, and propose its amendments.
DRAFTING_ROLES = frozenset({MemberRole.buyer, MemberRole.admin})
# The roles that sign (an agency's within their limit) and approve an agency's drafts.
SIGNING_ROLES = frozenset({MemberRole.signer, MemberRole.admin})
MAX_THRESHOLD = MONEY_MAX


def _names(users: list[User]) -> str:
    return ", ".join(f"{user.name} ({user.email})" for user in users)


# --- drafting ---------------------------------------------------------------------------------------------


def check_may_draft(actor: Principal) -> None:
    """An agency's buyers and administrators draft and send; its signers sign and approve what others drafted."""
    if actor.is_kind("agency") and actor.role not in DRAFTING_ROLES:
        raise Forbidden(
            _(
                "Drafting, changing and sending contracts is for your agency's buyers and administrators; signers sign and approve."
            )
        )


# --- signing ----------------------------------------------------------------------------------------------


async def members_who_can_sign(session: AsyncSession, agency_id: int, amount: int) -> list[User]:
    """The agency's active signers and administrators whose signing limit covers `amount`."""
    return list(
        (
            await session.scalars(
                sa.select(User)
                .where(
                    col(User.organisation_id) == agency_id,
                    col(User.active).is_(True),
                    col(User.role).in_(SIGNING_ROLES),
                    col(User.signing_limit) >= amount,
                )
                .order_by(col(User.name), col(User.id))
            )
        ).all()
    )


async def _who_can(session: AsyncSession, contract: Contract, version: ContractVersion, actor: Principal) -> str:
    others = [
        user
        for user in await members_who_can_sign(session, contract.agency_id, version.amount_total)
        if user.id != actor.user_id
    ]
    if not others:
        return _("No member of your agency has a signing limit this large; an administrator can raise one.")
    return _("Members who can sign it: %(names)s.", names=_names(others))


async def check_signing_authority(
    session: AsyncSession, actor: Principal, contract: Contract, version: ContractVersion
) -> None:
    """The actor may sign `version` for their side: a provider's signer or administrator; an agency's signer or
    administrator whose signing limit covers the version's total value with VAT. 403 for a role that never signs,
    409 over the limit; both name who can."""
    user = await session.get(User, actor.user_id)
    role = user.role if user is not None else actor.role
    if actor.is_kind("provider"):
        if role not in SIGNING_ROLES:
            raise Forbidden(_("Only your organisation's signers and administrators can sign contracts."))
        return
    if role not in SIGNING_ROLES:
        raise Forbidden(
            _("Buyers cannot sign contracts. %(who)s", who=await _who_can(session, contract, version, actor))
        )
    limit = user.signing_limit if user is not None else 0
    if version.amount_total > limit:
        raise Conflict(
            _(
                "Version %(n)s is worth %(amount)s with VAT over its term, more than your signing limit of %(limit)s. %(who)s",
                n=version.number,
                amount=money(version.amount_total),
                limit=money(limit),
                who=await _who_can(session, contract, version, actor),
            )
        )


# --- the approval threshold -------------------------------------------------------------------------------


async def approval_threshold(session: AsyncSession, agency_id: int) -> int | None:
    """The agency's threshold in won with VAT; None when it has none (no draft needs approval)."""
    return await session.scalar(
        sa.select(col(ApprovalThreshold.amount)).where(col(ApprovalThreshold.agency_id) == agency_id)
    )


async def set_approval_threshold(session: AsyncSession, actor: Principal, amount: int | None) -> int | None:
    """An agency administrator sets (or, with None, removes) the approval threshold."""
    if not actor.is_kind("agency"):
        raise Forbidden(_("The approval threshold is an agency's."))
    if not actor.is_admin:
        raise Forbidden(_("Only an administrator of your agency can set the approval threshold."))
    if amount is not None and not 0 <= amount <= MAX_THRESHOLD:
        raise Invalid(
            _("Please correct: %(fields)s.", fields="amount"),
            errors={"amount": _("A whole number of won from 0 to %(n)s.", n=number(MAX_THRESHOLD))},
        )
    row = await session.get(ApprovalThreshold, actor.organisation_id, with_for_update=True)
    previous = row.amount if row is not None else None
    if amount is None:
        if row is not None:
            await session.delete(row)
    elif row is None:
        session.add(ApprovalThreshold(agency_id=actor.organisation_id, amount=amount, updated_by_id=actor.user_id))
    else:
        row.amount, row.updated_by_id, row.updated_at = amount, actor.user_id, utcnow()
    await session.flush()
    await audit.record(
        session,
        actor,
        "approval_threshold.set",
        "organisation",
        actor.organisation_id,
        {"amount": amount, "previous": previous},
    )
    return amount


# --- approvals --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Approval:
    """Where a contract's version stands with the agency's approval rule (for its page and its JSON)."""

    threshold: int | None
    needed: bool  # its total value is above the threshold
    approved_by: str | None  # the approver's name
    approved_by_role: str | None
    approved_at: datetime | None

    @property
    def approved(self) -> bool:
        return self.approved_at is not None


def _needs_approval(threshold: int | None, version: ContractVersion) -> bool:
    return threshold is not None and version.amount_total > threshold


async def approval_of(session: AsyncSession, contract: Contract, version: ContractVersion) -> Approval:
    threshold = await approval_threshold(session, contract.agency_id)
    approver = await session.get(User, version.approved_by_id) if version.approved_by_id else None
    return Approval(
        threshold,
        _needs_approval(threshold, version),
        approver.name if approver else None,
        version.approved_by_role,
        version.approved_at,
    )


def withdraw_approval(version: ContractVersion) -> bool:
    """A change to the draft withdraws its approval; True when there was one."""
    had = version.approved_at is not None
    version.approved_by_id = version.approved_by_role = version.approved_at = None
    return had


async def check_approval(session: AsyncSession, contract: Contract, version: ContractVersion) -> None:
    """Before sending: a draft above the agency's threshold must carry a second member's approval (409 otherwise)."""
    threshold = await approval_threshold(session, contract.agency_id)
    if _needs_approval(threshold, version) and version.approved_at is None:
        raise Conflict(
            _(
                "Contract %(number)s is worth %(amount)s with VAT, above your agency's approval threshold of %(threshold)s: "
                "a second member (a signer or an administrator who did not draft or change it) must approve the draft before it is sent.",
                number=contract.number,
                amount=money(version.amount_total),
                threshold=money(threshold or 0),
            )
        )


async def approve(session: AsyncSession, actor: Principal, contract_id: int) -> ContractVersion:
    """A signer or administrator of the agency approves the draft being prepared, which someone else drafted."""
    from contracts.views import get_contract, side_of, version_of

    contract = await get_contract(session, actor, contract_id, for_update=True)
    if side_of(actor, contract) != Side.agency:
        raise Forbidden(_("Only the agency can do this."))
    if actor.role not in SIGNING_ROLES:
        raise Forbidden(_("Drafts are approved by your agency's signers and administrators."))
    version = await version_of(session, contract)
    if contract.status != ContractStatus.draft or version.state != VersionState.draft:
        raise Conflict(
            _("Only a draft is approved; this contract is %(status)s.", status=CONTRACT.label(contract.status).lower())
        )
    if version.approved_at is not None:
        approver = await session.get(User, version.approved_by_id) if version.approved_by_id else None
        raise Conflict(_("This draft was approved already by %(name)s.", name=approver.name if approver else "?"))
    if actor.user_id in (version.created_by_id, version.edited_by_id):
        raise Conflict(_("You drafted or last changed this draft: a second member must approve it."))
    version.approved_by_id, version.approved_by_role, version.approved_at = actor.user_id, actor.role, utcnow()
    contract.updated_at = utcnow()
    await session.flush()
    threshold = await approval_threshold(session, contract.agency_id)
    await audit.record(
        session,
        actor,
        "contract.approve",
        "contract",
        contract.id,
        {"version": version.number, "amount_total": version.amount_total, "threshold": threshold},
    )
    return version
