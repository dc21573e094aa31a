"""A contract's life once sent: what both signatures do, declining, cancelling before signature, the start and the
completion (moved by date every day), early termination, and amendments to a contract in force.

Every change is one transaction with one audit event, and announces itself with `market.hooks.emit`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import authority, documents, workflow
from contracts.drafting import freeze, new_version_from, next_number, priced
from contracts.models import (
    AmendmentReason,
    Contract,
    ContractVersion,
    Side,
    Signature,
    VersionKind,
)
from contracts.models import ContractStatus as C
from contracts.models import VersionState as V
from contracts.schemas import AmendInput, TerminateInput, invalid
from contracts.views import (
    amount_paid,
    get_contract,
    proposer_side,
    require_side,
    side_of,
    version_of,
)
from market import audit, clock, hooks
from market.auth import Principal, SystemActor
from market.database import utcnow
from market.errors import Conflict, Forbidden
from market.i18n import _


async def signed_by_both(
    session: AsyncSession, actor: Principal, contract: Contract, version: ContractVersion, today: date
) -> None:
    """Both signatures are on the version: it is the text in force from now."""
    workflow.VERSION.check(version.state, V.signed)
    version.state = V.signed
    version.signed_at = utcnow()
    previous_id = contract.signed_version_id
    if previous_id is not None:
        previous = await session.get(ContractVersion, previous_id)
        if previous is not None:
            workflow.VERSION.check(previous.state, V.superseded)
            previous.state = V.superseded
    contract.signed_version_id = version.id
    contract.updated_at = utcnow()
    if version.kind == VersionKind.amendment:
        await session.flush()
        await audit.record(
            session, actor, "contract.amendment_signed", "contract", contract.id, {"version": version.number}
        )
        await hooks.emit("contract.amended", session, contract_id=contract.id, version_id=version.id)
        return
    target = C.active if version.starts_on <= today else C.signed
    workflow.CONTRACT.check(contract.status, target)
    contract.status = target
    await session.flush()
    await audit.record(
        session, actor, "contract.signed", "contract", contract.id, {"version": version.number, "status": target}
    )
    await hooks.emit("contract.signed", session, contract_id=contract.id, version_id=version.id)
    if target == C.active:
        await hooks.emit("contract.started", session, contract_id=contract.id)


async def decline(session: AsyncSession, actor: Principal, contract_id: int, reason: str) -> Contract:
    """The party asked to sign refuses the sent version, with a reason. A declined original can be revised by the
    agency or cancelled; a declined amendment leaves the contract as signed."""
    contract = await get_contract(session, actor, contract_id, for_update=True)
    version = await version_of(session, contract)
    side = side_of(actor, contract)
    if version.kind == VersionKind.amendment:
        if side == await proposer_side(session, version, contract):
            raise Forbidden(_("The party that proposed the amendment withdraws it rather than declining it."))
    else:
        require_side(actor, contract, Side.provider)
    workflow.VERSION.check(version.state, V.declined)
    if await session.scalar(
        sa.select(col(Signature.id)).where(col(Signature.version_id) == version.id, col(Signature.side) == side)
    ):
        raise Conflict(_("You have already signed this version."))
    version.state = V.declined
    version.decline_reason = reason
    if version.kind == VersionKind.amendment:
        contract.current_version_id = contract.signed_version_id
    else:
        workflow.CONTRACT.check(contract.status, C.declined)
        contract.status = C.declined
        contract.end_reason = reason
    contract.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session, actor, "contract.decline", "contract", contract.id, {"version": version.number, "reason": reason}
    )
    return contract


async def cancel(session: AsyncSession, actor: Principal, contract_id: int, reason: str) -> Contract:
    """The agency abandons the contract before both signatures."""
    contract = await get_contract(session, actor, contract_id, for_update=True)
    require_side(actor, contract, Side.agency)
    authority.check_may_draft(actor)
    workflow.CONTRACT.check(contract.status, C.cancelled)
    version = await version_of(session, contract)
    if version.state == V.sent:
        version.state = V.withdrawn
    elif version.state == V.draft:
        version.state = V.superseded
    contract.status = C.cancelled
    contract.end_reason = reason
    contract.ended_on = clock.today()
    contract.updated_at = utcnow()
    await session.flush()
    await audit.record(session, actor, "contract.cancel", "contract", contract.id, {"reason": reason})
    await hooks.emit("contract.cancelled", session, contract_id=contract.id)
    return contract


async def start(session: AsyncSession, actor: Any, contract: Contract) -> None:
    workflow.CONTRACT.check(contract.status, C.active)
    contract.status = C.active
    contract.updated_at = utcnow()
    await session.flush()
    await audit.record(session, actor, "contract.start", "contract", contract.id, {})
    await hooks.emit("contract.started", session, contract_id=contract.id)


async def complete(session: AsyncSession, actor: Any, contract: Contract, ended_on: date) -> None:
    workflow.CONTRACT.check(contract.status, C.completed)
    await _close_pending(session, contract)
    contract.status = C.completed
    contract.ended_on = ended_on
    contract.updated_at = utcnow()
    await session.flush()
    await audit.record(session, actor, "contract.complete", "contract", contract.id, {"ended_on": ended_on.isoformat()})
    await hooks.emit("contract.completed", session, contract_id=contract.id)


async def _close_pending(session: AsyncSession, contract: Contract) -> None:
    """A contract that ends takes no more amendments: one waiting for signatures is withdrawn."""
    pending = await session.scalar(
        sa.select(ContractVersion).where(
            col(ContractVersion.contract_id) == contract.id,
            col(ContractVersion.state).in_(sorted(workflow.PENDING_VERSION)),
        )
    )
    if pending is not None:
        pending.state = V.withdrawn if pending.state == V.sent else V.superseded
        contract.current_version_id = contract.signed_version_id


async def advance_contracts(session: AsyncSession, today: date) -> tuple[int, int]:
    """Start signed contracts whose start date has come, and complete active ones whose end date has passed.
    Returns (started, completed). Safe to run again: a contract already moved is not picked up."""
    actor = SystemActor(email="system")
    signed_terms = sa.orm.aliased(ContractVersion)
    due_to_start = (
        await session.scalars(
            sa.select(Contract)
            .join(signed_terms, col(signed_terms.id) == col(Contract.signed_version_id))
            .where(col(Contract.status) == C.signed, col(signed_terms.starts_on) <= today)
            .order_by(col(Contract.id))
            .with_for_update(of=Contract)
        )
    ).all()
    for contract in due_to_start:
        await start(session, actor, contract)
    due_to_end = (
        await session.execute(
            sa.select(Contract, col(signed_terms.ends_on))
            .join(signed_terms, col(signed_terms.id) == col(Contract.signed_version_id))
            .where(col(Contract.status) == C.active, col(signed_terms.ends_on) < today)
            .order_by(col(Contract.id))
            .with_for_update(of=Contract)
        )
    ).all()
    for contract, ends_on in due_to_end:
        await complete(session, actor, contract, ends_on)
    return len(due_to_start), len(due_to_end)


async def terminate(
    session: AsyncSession, actor: Principal, contract_id: int, data: TerminateInput, today: date | None = None
) -> Contract:
    """Either party ends a signed or active contract early, with a reason and an effective date within the term.
    The amount paid so far is taken from the recorded payments."""
    today = today or clock.today()
    contract = await get_contract(session, actor, contract_id, for_update=True)
    workflow.CONTRACT.check(contract.status, C.terminated)
    terms = await version_of(session, contract, version_id=contract.signed_version_id)
    if data.effective_on < today:
        raise invalid("effective_on", _("The effective date cannot be in the past."))
    if data.effective_on > terms.ends_on:
        raise invalid(
            "effective_on",
            _(
                "The effective date must be on or before the end of the term (%(date)s).",
                date=terms.ends_on.isoformat(),
            ),
        )
    await _close_pending(session, contract)
    paid = await amount_paid(session, contract_id)
    contract.status = C.terminated
    contract.ended_on = data.effective_on
    contract.end_reason = data.reason
    contract.amount_paid_at_end = paid
    contract.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        actor,
        "contract.terminate",
        "contract",
        contract.id,
        {
            "reason": data.reason,
            "effective_on": data.effective_on.isoformat(),
            "amount_paid": paid,
            "by": side_of(actor, contract),
        },
    )
    await hooks.emit("contract.terminated", session, contract_id=contract.id)
    return contract


async def amend(
    session: AsyncSession, actor: Principal, store: documents.DocumentStore, contract_id: int, data: AmendInput
) -> ContractVersion:
    """Either party proposes an amendment to a contract in force: a new version, frozen and sent for both signatures.
    It must change something; it takes effect when both have signed, and the signed text before it stays readable."""
    contract = await get_contract(session, actor, contract_id, for_update=True)
    authority.check_may_draft(actor)
    if contract.status not in workflow.IN_FORCE:
        raise Conflict(_("Only a signed or active contract can be amended."))
    if contract.current_version_id != contract.signed_version_id:
        raise Conflict(_("An amendment is already waiting for signatures; sign, decline or withdraw it first."))
    signed = await version_of(session, contract, version_id=contract.signed_version_id)
    version = new_version_from(signed, actor, await next_number(session, contract_id), VersionKind.amendment)
    plan = dict(signed.plan)
    if data.unit_price is not None:
        if data.amendment_reason == AmendmentReason.price_reduction and data.unit_price >= int(plan["unit_price"]):
            raise invalid(
                "unit_price",
                _(
                    "A price reduction must lower the unit price (now ₩%(price)s).",
                    price=f"{int(plan['unit_price']):,}",
                ),
            )
        plan["unit_price"] = data.unit_price
    if data.quantity is not None:
        version.quantity = data.quantity
    if data.ends_on is not None:
        if data.ends_on < signed.starts_on:
            raise invalid("ends_on", _("The end date must not be before the start date."))
        version.ends_on = data.ends_on
    if data.vat_rate_bp is not None:
        version.vat_rate_bp = data.vat_rate_bp
    if data.special_terms is not None:
        version.special_terms = data.special_terms
    version.plan = plan
    price = priced(plan, version, version.vat_rate_bp, "unit_price" if data.unit_price is not None else "quantity")
    version.periods, version.amount_net, version.amount_vat, version.amount_total = (
        price.periods,
        price.amount_net,
        price.amount_vat,
        price.amount_total,
    )
    compared = ("plan", "quantity", "ends_on", "vat_rate_bp", "special_terms")
    if all(getattr(version, key) == getattr(signed, key) for key in compared):
        raise invalid(
            "amendment_reason",
            _("The amendment changes nothing: change the quantity, end date, unit price, tax rate or special terms."),
        )
    version.amendment_reason = data.amendment_reason
    version.amendment_rationale = data.rationale
    session.add(version)
    await session.flush()
    await freeze(session, store, contract, version)
    contract.current_version_id = version.id
    contract.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        actor,
        "contract.amend",
        "contract",
        contract.id,
        {
            "version": version.number,
            "reason": data.amendment_reason,
            "rationale": data.rationale,
            "changed": [key for key in compared if getattr(version, key) != getattr(signed, key)],
            "amount_total": version.amount_total,
            "document_sha256": version.document_sha256,
        },
    )
    await hooks.emit("contract.sent", session, contract_id=contract.id, version_id=version.id)
    return version
