"""Reading contracts: a party's access to one, the read model of a contract in lists (`ContractRow`, shared with the
open register), the contract page's view with what it offers each side, the JSON answers, and the amount paid.

A contract belongs to two organisations, its agency and its provider; anyone else is told it does not exist.
Nothing here changes state.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from catalog import service_version_names
from contracts import authority, workflow
from contracts.models import (
    CURRENCY,
    Contract,
    ContractStatus,
    ContractVersion,
    Invoice,
    Payment,
    Side,
    Signature,
    VersionKind,
)
from contracts.models import ContractStatus as C
from contracts.models import VersionState as V
from contracts.schemas import invalid
from market.auth import Principal
from market.errors import Forbidden, NotFound, Refused
from market.i18n import _
from market.models import Organisation, User
from market.web import PAGE_SIZE, Page, check_page

SORTS = {
    "updated": (col(Contract.updated_at).desc(), col(Contract.id).desc()),
    "created": (col(Contract.created_at).desc(), col(Contract.id).desc()),
    "number": (col(Contract.number).asc(),),
    "status": (col(Contract.status).asc(), col(Contract.id).desc()),
}


def side_of(actor: Principal, contract: Contract) -> Side | None:
    if actor.organisation_id == contract.agency_id and actor.is_kind("agency"):
        return Side.agency
    if actor.organisation_id == contract.provider_id and actor.is_kind("provider"):
        return Side.provider
    return None


async def get_contract(
    session: AsyncSession, actor: Principal, contract_id: int, *, for_update: bool = False
) -> Contract:
    """The contract if the actor's organisation is one of its parties; 404 otherwise, so its existence stays private."""
    contract = await session.get(Contract, contract_id)
    if contract is None:
        raise NotFound(_("No such contract."))
    if side_of(actor, contract) is None:
        raise Refused(_("No such contract."))
    if for_update:
        contract = await session.get(Contract, contract_id, with_for_update=True, populate_existing=True)
        assert contract is not None  # read just above; contracts are never deleted
    return contract


def require_side(actor: Principal, contract: Contract, side: Side) -> None:
    if side_of(actor, contract) != side:
        if side == Side.agency:
            raise Forbidden(_("Only the agency can do this."))
        raise Forbidden(_("Only the provider can do this."))


async def version_of(
    session: AsyncSession, contract: Contract, number: int | None = None, *, version_id: int | None = None
) -> ContractVersion:
    query = sa.select(ContractVersion).where(col(ContractVersion.contract_id) == contract.id)
    if version_id is not None:
        query = query.where(col(ContractVersion.id) == version_id)
    elif number is not None:
        query = query.where(col(ContractVersion.number) == number)
    else:
        query = query.where(col(ContractVersion.id) == contract.current_version_id)
    version = await session.scalar(query)
    if version is None:
        raise NotFound(_("No such version of this contract."))
    return version


async def versions_of(session: AsyncSession, contract_id: int) -> list[ContractVersion]:
    return list(
        (
            await session.scalars(
                sa.select(ContractVersion)
                .where(col(ContractVersion.contract_id) == contract_id)
                .order_by(col(ContractVersion.number))
            )
        ).all()
    )


async def signatures_of(session: AsyncSession, contract_id: int) -> list[Signature]:
    return list(
        (
            await session.scalars(
                sa.select(Signature)
                .where(col(Signature.contract_id) == contract_id)
                .order_by(col(Signature.signed_at), col(Signature.id))
            )
        ).all()
    )


@dataclass(frozen=True)
class ContractRow:
    """One line of a contract list, and the read model the rest of the package (invoices, the register) builds on."""

    id: int
    number: str
    status: str
    agency_id: int
    agency_name: str
    provider_id: int
    provider_name: str
    service_id: int
    service_name: str
    plan_name: str
    route: str
    starts_on: date
    ends_on: date
    billing_period: str
    amount_net: int
    amount_vat: int
    amount_total: int
    currency: str
    version_id: int  # the signed version in force, else the current one
    updated_at: Any

    @property
    def status_label(self) -> str:
        return workflow.CONTRACT.label(self.status)


# The names a contract row joins, aliased once: aliasing them anew for each query took 6 % of a signature's CPU.
Agency = aliased(Organisation, name="agency")
Provider = aliased(Organisation, name="provider")
Shown = aliased(ContractVersion, name="shown")  # the signed version in force, else the one being prepared
SHOWN_VERSION = sa.func.coalesce(col(Contract.signed_version_id), col(Contract.current_version_id))


def rows_select(*extra: Any) -> sa.Select[Any]:
    """The columns of a `ContractRow` (and `extra` ones) for every contract: its parties' and service's names and the
    figures of the version that speaks for it now. Callers filter and order; `row_values` reads a result."""
    names = service_version_names()
    return (
        sa.select(
            col(Contract.id),
            col(Contract.number),
            col(Contract.status),
            col(Contract.agency_id),
            col(Agency.name).label("agency_name"),
            col(Contract.provider_id),
            col(Provider.name).label("provider_name"),
            col(Contract.service_id),
            names.c.name.label("service_name"),
            col(Shown.plan),
            col(Shown.route),
            col(Shown.starts_on),
            col(Shown.ends_on),
            col(Shown.billing_period),
            col(Shown.amount_net),
            col(Shown.amount_vat),
            col(Shown.amount_total),
            col(Shown.id).label("version_id"),
            col(Contract.updated_at),
            *extra,
        )
        .select_from(Contract)
        .join(Shown, col(Shown.id) == SHOWN_VERSION)
        .join(Agency, col(Agency.id) == col(Contract.agency_id))
        .join(Provider, col(Provider.id) == col(Contract.provider_id))
        .join(names, names.c.id == col(Shown.service_version_id))
    )


@functools.cache  # built once (a Select is immutable)
def _rows_query() -> sa.Select[Any]:
    return rows_select()


def row_values(values: Any) -> dict[str, Any]:
    """A result row of `rows_select` as the fields of a `ContractRow` (and the extra columns, by their names)."""
    data = dict(values._mapping)
    plan = data.pop("plan") or {}
    return {**data, "plan_name": str(plan.get("name", "")), "currency": CURRENCY}


async def contract_rows(
    session: AsyncSession, *where: Any, order: tuple[Any, ...] | None = None, limit: int | None = None, offset: int = 0
) -> list[ContractRow]:
    """Contracts with their names and the figures of the version in force (or being prepared), for any reader.
    Callers filter: this does no access check."""
    query = _rows_query().where(*where).order_by(*(order or SORTS["updated"])).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [ContractRow(**row_values(row)) for row in (await session.execute(query)).all()]


async def contract_row(session: AsyncSession, contract_id: int) -> ContractRow | None:
    rows = await contract_rows(session, col(Contract.id) == contract_id)
    return rows[0] if rows else None


def _party_filter(actor: Principal) -> Any:
    if actor.is_kind("agency"):
        return col(Contract.agency_id) == actor.organisation_id
    if actor.is_kind("provider"):
        return col(Contract.provider_id) == actor.organisation_id
    raise Forbidden(_("Contracts are for agencies and providers."))


async def list_contracts(
    session: AsyncSession,
    actor: Principal,
    *,
    status: str | None = None,
    sort: str = "updated",
    page: int = 1,
) -> tuple[list[ContractRow], Page]:
    where = [_party_filter(actor)]
    if status:
        if status not in {item.value for item in ContractStatus}:
            raise invalid("status", _("Choose one of the offered values."))
        where.append(col(Contract.status) == status)
    if sort not in SORTS:
        raise invalid("sort", _("Choose one of the offered values."))
    total = int(await session.scalar(sa.select(sa.func.count()).select_from(Contract).where(*where)) or 0)
    current = check_page(Page(number=page, size=PAGE_SIZE, total=total))
    rows = await contract_rows(session, *where, order=SORTS[sort], limit=PAGE_SIZE, offset=current.offset)
    return rows, current


@dataclass
class ContractView:
    contract: Contract
    row: ContractRow
    side: Side
    versions: list[ContractVersion]
    signatures: list[Signature]
    current: ContractVersion
    signed: ContractVersion | None
    renewal_of: Contract | None = None
    renewals: list[Contract] = field(default_factory=list)
    amount_paid: int = 0
    proposer: Side | None = None  # who made the current version (the agency for an original)
    approval: authority.Approval | None = None  # where the current version stands with the agency's approval rule

    def signatures_on(self, version: ContractVersion) -> list[Signature]:
        return [item for item in self.signatures if item.version_id == version.id]

    def has_signed(self, version: ContractVersion, side: str) -> bool:
        return any(item.side == side for item in self.signatures_on(version))

    @property
    def pending_amendment(self) -> ContractVersion | None:
        if self.current.kind == VersionKind.amendment and self.current.state in workflow.PENDING_VERSION:
            return self.current
        return None

    # What the page offers this side, from the contract's and the current version's states (the guards and the
    # role checks of each step still decide).

    @property
    def may_change_draft(self) -> bool:
        return self.side == Side.agency and self.contract.status == C.draft

    @property
    def may_approve(self) -> bool:
        return self.may_change_draft and self.approval is not None and not self.approval.approved

    @property
    def awaits_approval(self) -> bool:
        """The draft is above the approval threshold and nobody approved it yet."""
        return self.approval is not None and self.approval.needed and self.current.state == V.draft

    @property
    def may_sign(self) -> bool:
        return self.current.state == V.sent and not self.has_signed(self.current, self.side)

    @property
    def may_decline(self) -> bool:
        return (
            self.current.state == V.sent and self.side != self.proposer and not self.has_signed(self.current, self.side)
        )

    @property
    def may_withdraw(self) -> bool:
        return self.current.state == V.sent and self.side == self.proposer

    @property
    def may_revise(self) -> bool:
        return self.side == Side.agency and self.contract.status == C.declined

    @property
    def may_cancel(self) -> bool:
        return self.side == Side.agency and self.contract.status in workflow.BEFORE_SIGNATURE

    @property
    def may_amend(self) -> bool:
        return self.contract.status in workflow.IN_FORCE and self.pending_amendment is None

    @property
    def may_terminate(self) -> bool:
        return self.contract.status in workflow.IN_FORCE

    @property
    def may_renew(self) -> bool:
        return self.side == Side.agency and self.contract.status in workflow.RENEWABLE

    @property
    def end_reason(self) -> str:
        """Why the contract was declined, terminated or cancelled; blank otherwise."""
        return self.contract.end_reason if self.contract.status in workflow.ENDED_WITH_REASON else ""

    @property
    def terminated(self) -> bool:
        return self.contract.status == C.terminated


async def proposer_side(session: AsyncSession, version: ContractVersion, contract: Contract) -> Side:
    """Who made the version: the agency for an original, either party for an amendment."""
    organisation_id = await session.scalar(
        sa.select(col(User.organisation_id)).where(col(User.id) == version.created_by_id)
    )
    return Side.agency if organisation_id == contract.agency_id else Side.provider


async def view_contract(session: AsyncSession, actor: Principal, contract_id: int) -> ContractView:
    contract = await get_contract(session, actor, contract_id)
    versions = await versions_of(session, contract_id)
    by_id = {version.id: version for version in versions}
    renewal_of = await session.get(Contract, contract.renewal_of_id) if contract.renewal_of_id else None
    current = by_id[contract.current_version_id]
    renewals = list(
        (
            await session.scalars(
                sa.select(Contract).where(col(Contract.renewal_of_id) == contract.id).order_by(col(Contract.id))
            )
        ).all()
    )
    row, side = await contract_row(session, contract_id), side_of(actor, contract)
    assert row is not None and side is not None  # get_contract found it and admits only its parties
    return ContractView(
        contract=contract,
        row=row,
        side=side,
        versions=versions,
        signatures=await signatures_of(session, contract_id),
        current=current,
        proposer=await proposer_side(session, current, contract),
        signed=by_id.get(contract.signed_version_id) if contract.signed_version_id else None,
        renewal_of=renewal_of,
        renewals=renewals,
        amount_paid=await amount_paid(session, contract_id),
        approval=await authority.approval_of(session, contract, current),
    )


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def version_json(version: ContractVersion) -> dict[str, Any]:
    return {
        "id": version.id,
        "number": version.number,
        "kind": version.kind,
        "state": version.state,
        "service_version_id": version.service_version_id,
        "plan_id": version.plan_id,
        "plan": version.plan,
        "quantity": version.quantity,
        "starts_on": _iso(version.starts_on),
        "ends_on": _iso(version.ends_on),
        "billing_period": version.billing_period,
        "budget_reference": version.budget_reference,
        "route": version.route,
        "special_terms": version.special_terms,
        "vat_rate_bp": version.vat_rate_bp,
        "periods": version.periods,
        "amount_net": version.amount_net,
        "amount_vat": version.amount_vat,
        "amount_total": version.amount_total,
        "currency": CURRENCY,
        "amendment_reason": version.amendment_reason,
        "amendment_rationale": version.amendment_rationale,
        "lock_version": version.lock_version,
        "document_sha256": version.document_sha256,
        "pdf_sha256": version.pdf_sha256,
        "decline_reason": version.decline_reason,
        "created_at": _iso(version.created_at),
        "sent_at": _iso(version.sent_at),
        "signed_at": _iso(version.signed_at),
        "approved_by_id": version.approved_by_id,
        "approved_by_role": version.approved_by_role,
        "approved_at": _iso(version.approved_at),
    }


def signature_json(signature: Signature) -> dict[str, Any]:
    return {
        "id": signature.id,
        "version_id": signature.version_id,
        "side": signature.side,
        "user_id": signature.user_id,
        "organisation_id": signature.organisation_id,
        "signer_name": signature.signer_name,
        "signer_role": signature.signer_role,
        "document_sha256": signature.document_sha256,
        "signed_at": _iso(signature.signed_at),
        "method": signature.method,
        "signing_key_id": signature.signing_key_id,
    }


def row_json(row: ContractRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "number": row.number,
        "status": row.status,
        "agency": {"id": row.agency_id, "name": row.agency_name},
        "provider": {"id": row.provider_id, "name": row.provider_name},
        "service": {"id": row.service_id, "name": row.service_name},
        "plan": row.plan_name,
        "route": row.route,
        "starts_on": _iso(row.starts_on),
        "ends_on": _iso(row.ends_on),
        "billing_period": row.billing_period,
        "amount_net": row.amount_net,
        "amount_vat": row.amount_vat,
        "amount_total": row.amount_total,
        "currency": row.currency,
        "updated_at": _iso(row.updated_at),
    }


def contract_json(view: ContractView) -> dict[str, Any]:
    contract = view.contract
    return {
        **row_json(view.row),
        "your_side": view.side,
        "project_id": contract.project_id,
        "renewal_of_id": contract.renewal_of_id,
        "renewal_ids": [item.id for item in view.renewals],
        "current_version_id": contract.current_version_id,
        "signed_version_id": contract.signed_version_id,
        "ended_on": _iso(contract.ended_on),
        "end_reason": contract.end_reason,
        "amount_paid_at_end": contract.amount_paid_at_end,
        "amount_paid": view.amount_paid,
        "created_at": _iso(contract.created_at),
        "approval": _approval_json(view.approval) if view.side == Side.agency else None,  # the agency's internal rule
        "versions": [version_json(version) for version in view.versions],
        "signatures": [signature_json(signature) for signature in view.signatures],
    }


def _approval_json(approval: authority.Approval | None) -> dict[str, Any] | None:
    if approval is None:
        return None
    return {
        "threshold": approval.threshold,
        "needed": approval.needed,
        "approved": approval.approved,
        "approved_by": approval.approved_by,
        "approved_by_role": approval.approved_by_role,
        "approved_at": _iso(approval.approved_at),
    }


async def amount_paid(session: AsyncSession, contract_id: int) -> int:
    """What the agency has paid on this contract so far (every recorded payment of its invoices)."""
    return int(
        await session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(col(Payment.amount)), 0))
            .join(Invoice, col(Invoice.id) == col(Payment.invoice_id))
            .where(col(Invoice.contract_id) == contract_id)
        )
        or 0
    )
