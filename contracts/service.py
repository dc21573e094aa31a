"""The contracts' rules: drafting from a listed plan, budgets, sending the frozen document, declining and
withdrawing, the lifecycle, amendments and renewal. The only place contracts, versions and budgets change.

A contract belongs to two organisations, its agency and its provider; anyone else is told it does not exist.
Every change is one transaction with one audit event, and announces itself with `market.hooks.emit`.
Signing lives in `contracts.signing`.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import Outcome, Plan, Project, ProjectStatus, Service, ServiceStatus, ServiceVersion
from contracts import authority, documents, pricing, workflow
from contracts.models import (
    CURRENCY, AmendmentReason, Budget, Contract, ContractStatus, ContractVersion, Invoice, Payment, Side, Signature,
    VersionKind, VersionState,
)
from contracts.schemas import AmendInput, BudgetInput, DraftInput, DraftUpdate, RenewInput, TerminateInput, TermsInput
from market import clock
from market import audit, hooks
from market.auth import Principal, SystemActor
from market.database import utcnow
from market.errors import Conflict, Forbidden, Invalid, NotFound, Refused
from market.i18n import N_, _
from market.models import Organisation
from market.schemas import MONEY_MAX
from market.web import PAGE_SIZE, Page, check_page

C, V = ContractStatus, VersionState
VAT_RATE_BP = 1000  # 10 %
SORTS = {
    "updated": (Contract.updated_at.desc(), Contract.id.desc()),
    "created": (Contract.created_at.desc(), Contract.id.desc()),
    "number": (Contract.number.asc(),),
    "status": (Contract.status.asc(), Contract.id.desc()),
}


def invalid(field_name: str, message: str) -> Invalid:
    return Invalid(_("Please correct: %(fields)s.", fields=field_name), errors={field_name: message})


# --- reading --------------------------------------------------------------------------------------

def side_of(actor: Principal, contract: Contract) -> Side | None:
    if actor.organisation_id == contract.agency_id and actor.is_kind("agency"):
        return Side.agency
    if actor.organisation_id == contract.provider_id and actor.is_kind("provider"):
        return Side.provider
    return None


async def get_contract(session: AsyncSession, actor: Principal, contract_id: int, *, for_update: bool = False) -> Contract:
    """The contract if the actor's organisation is one of its parties; 404 otherwise, so its existence stays private."""
    contract = await session.get(Contract, contract_id)
    if contract is None:
        raise NotFound(_("No such contract."))
    if side_of(actor, contract) is None:
        raise Refused(_("No such contract."))
    if for_update:
        contract = await session.get(Contract, contract_id, with_for_update=True, populate_existing=True)
    return contract  # type: ignore[return-value]


def _require(actor: Principal, contract: Contract, side: Side) -> None:
    if side_of(actor, contract) != side:
        if side == Side.agency:
            raise Forbidden(_("Only the agency can do this."))
        raise Forbidden(_("Only the provider can do this."))


async def version_of(session: AsyncSession, contract: Contract, number: int | None = None, *, version_id: int | None = None) -> ContractVersion:
    query = sa.select(ContractVersion).where(ContractVersion.contract_id == contract.id)
    if version_id is not None:
        query = query.where(ContractVersion.id == version_id)
    elif number is not None:
        query = query.where(ContractVersion.number == number)
    else:
        query = query.where(ContractVersion.id == contract.current_version_id)
    version = await session.scalar(query)
    if version is None:
        raise NotFound(_("No such version of this contract."))
    return version


async def versions_of(session: AsyncSession, contract_id: int) -> list[ContractVersion]:
    return list((await session.scalars(
        sa.select(ContractVersion).where(ContractVersion.contract_id == contract_id).order_by(ContractVersion.number)
    )).all())


async def signatures_of(session: AsyncSession, contract_id: int) -> list[Signature]:
    return list((await session.scalars(
        sa.select(Signature).where(Signature.contract_id == contract_id).order_by(Signature.signed_at, Signature.id)
    )).all())


@dataclass(frozen=True)
class ContractRow:
    """One line of a contract list, and the read model other packages (invoices, the register) rely on."""

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


def _names() -> tuple[Any, Any, Any]:
    agency = sa.orm.aliased(Organisation)
    provider = sa.orm.aliased(Organisation)
    service_version = sa.orm.aliased(ServiceVersion)
    return agency, provider, service_version


@functools.cache  # built once (a Select is immutable): aliasing the joined names anew took 6 % of a signature's CPU
def _rows_query() -> tuple[sa.Select[Any], Any]:
    agency, provider, service_version = _names()
    shown = sa.func.coalesce(Contract.signed_version_id, Contract.current_version_id)
    query = (
        sa.select(Contract, ContractVersion, agency.name, provider.name, service_version.name)
        .join(ContractVersion, ContractVersion.id == shown)
        .join(agency, agency.id == Contract.agency_id)
        .join(provider, provider.id == Contract.provider_id)
        .join(service_version, service_version.id == ContractVersion.service_version_id)
    )
    return query, shown


def _row(contract: Contract, version: ContractVersion, agency_name: str, provider_name: str, service_name: str) -> ContractRow:
    return ContractRow(
        id=contract.id, number=contract.number, status=contract.status, agency_id=contract.agency_id,  # type: ignore[arg-type]
        agency_name=agency_name, provider_id=contract.provider_id, provider_name=provider_name,
        service_id=contract.service_id, service_name=service_name, plan_name=str(version.plan.get("name", "")),
        route=version.route, starts_on=version.starts_on, ends_on=version.ends_on, billing_period=version.billing_period,
        amount_net=version.amount_net, amount_vat=version.amount_vat, amount_total=version.amount_total, currency=CURRENCY,
        version_id=version.id, updated_at=contract.updated_at,  # type: ignore[arg-type]
    )


async def contract_rows(session: AsyncSession, *where: Any, order: tuple[Any, ...] | None = None, limit: int | None = None, offset: int = 0) -> list[ContractRow]:
    """Contracts with their names and the figures of the version in force (or being prepared), for any reader.
    Callers filter: this does no access check."""
    query, _shown = _rows_query()
    query = query.where(*where).order_by(*(order or SORTS["updated"])).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [_row(*row) for row in (await session.execute(query)).all()]


async def contract_row(session: AsyncSession, contract_id: int) -> ContractRow | None:
    rows = await contract_rows(session, Contract.id == contract_id)
    return rows[0] if rows else None


def _party_filter(actor: Principal) -> Any:
    if actor.is_kind("agency"):
        return Contract.agency_id == actor.organisation_id
    if actor.is_kind("provider"):
        return Contract.provider_id == actor.organisation_id
    raise Forbidden(_("Contracts are for agencies and providers."))


async def list_contracts(
    session: AsyncSession, actor: Principal, *, status: str | None = None, sort: str = "updated", page: int = 1,
) -> tuple[list[ContractRow], Page]:
    where = [_party_filter(actor)]
    if status:
        if status not in {item.value for item in ContractStatus}:
            raise invalid("status", _("Choose one of the offered values."))
        where.append(Contract.status == status)
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
        return self.current.state == V.sent and self.side != self.proposer and not self.has_signed(self.current, self.side)

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


async def view_contract(session: AsyncSession, actor: Principal, contract_id: int) -> ContractView:
    contract = await get_contract(session, actor, contract_id)
    versions = await versions_of(session, contract_id)
    by_id = {version.id: version for version in versions}
    renewal_of = await session.get(Contract, contract.renewal_of_id) if contract.renewal_of_id else None
    current = by_id[contract.current_version_id]  # type: ignore[index]
    renewals = list((await session.scalars(sa.select(Contract).where(Contract.renewal_of_id == contract.id).order_by(Contract.id))).all())
    return ContractView(
        contract=contract, row=await contract_row(session, contract_id),  # type: ignore[arg-type]
        side=side_of(actor, contract),  # type: ignore[arg-type]
        versions=versions, signatures=await signatures_of(session, contract_id),
        current=current, proposer=await _proposer_side(session, current, contract),
        signed=by_id.get(contract.signed_version_id) if contract.signed_version_id else None,  # type: ignore[arg-type]
        renewal_of=renewal_of, renewals=renewals, amount_paid=await amount_paid(session, contract_id),
        approval=await authority.approval_of(session, contract, current),
    )


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def version_json(version: ContractVersion) -> dict[str, Any]:
    return {
        "id": version.id, "number": version.number, "kind": version.kind, "state": version.state,
        "service_version_id": version.service_version_id, "plan_id": version.plan_id, "plan": version.plan,
        "quantity": version.quantity, "starts_on": _iso(version.starts_on), "ends_on": _iso(version.ends_on),
        "billing_period": version.billing_period, "budget_reference": version.budget_reference, "route": version.route,
        "special_terms": version.special_terms, "vat_rate_bp": version.vat_rate_bp, "periods": version.periods,
        "amount_net": version.amount_net, "amount_vat": version.amount_vat, "amount_total": version.amount_total,
        "currency": CURRENCY, "amendment_reason": version.amendment_reason, "amendment_rationale": version.amendment_rationale,
        "lock_version": version.lock_version, "document_sha256": version.document_sha256, "pdf_sha256": version.pdf_sha256,
        "decline_reason": version.decline_reason, "created_at": _iso(version.created_at), "sent_at": _iso(version.sent_at),
        "signed_at": _iso(version.signed_at), "approved_by_id": version.approved_by_id, "approved_by_role": version.approved_by_role,
        "approved_at": _iso(version.approved_at),
    }


def signature_json(signature: Signature) -> dict[str, Any]:
    return {
        "id": signature.id, "version_id": signature.version_id, "side": signature.side, "user_id": signature.user_id,
        "organisation_id": signature.organisation_id, "signer_name": signature.signer_name,
        "signer_role": signature.signer_role, "document_sha256": signature.document_sha256,
        "signed_at": _iso(signature.signed_at), "method": signature.method, "signing_key_id": signature.signing_key_id,
    }


def row_json(row: ContractRow) -> dict[str, Any]:
    return {
        "id": row.id, "number": row.number, "status": row.status, "agency": {"id": row.agency_id, "name": row.agency_name},
        "provider": {"id": row.provider_id, "name": row.provider_name},
        "service": {"id": row.service_id, "name": row.service_name}, "plan": row.plan_name, "route": row.route,
        "starts_on": _iso(row.starts_on), "ends_on": _iso(row.ends_on), "billing_period": row.billing_period,
        "amount_net": row.amount_net, "amount_vat": row.amount_vat, "amount_total": row.amount_total,
        "currency": row.currency, "updated_at": _iso(row.updated_at),
    }


def contract_json(view: ContractView) -> dict[str, Any]:
    contract = view.contract
    return {
        **row_json(view.row),
        "your_side": view.side,
        "project_id": contract.project_id, "renewal_of_id": contract.renewal_of_id,
        "renewal_ids": [item.id for item in view.renewals],
        "current_version_id": contract.current_version_id, "signed_version_id": contract.signed_version_id,
        "ended_on": _iso(contract.ended_on), "end_reason": contract.end_reason,
        "amount_paid_at_end": contract.amount_paid_at_end, "amount_paid": view.amount_paid,
        "created_at": _iso(contract.created_at),
        "approval": _approval_json(view.approval) if view.side == Side.agency else None,  # the agency's internal rule
        "versions": [version_json(version) for version in view.versions],
        "signatures": [signature_json(signature) for signature in view.signatures],
    }


def _approval_json(approval: authority.Approval | None) -> dict[str, Any] | None:
    if approval is None:
        return None
    return {"threshold": approval.threshold, "needed": approval.needed, "approved": approval.approved,
            "approved_by": approval.approved_by, "approved_by_role": approval.approved_by_role, "approved_at": _iso(approval.approved_at)}


async def amount_paid(session: AsyncSession, contract_id: int) -> int:
    """What the agency has paid on this contract so far (every recorded payment of its invoices)."""
    return int(await session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Payment.amount), 0))
        .join(Invoice, Invoice.id == Payment.invoice_id).where(Invoice.contract_id == contract_id)
    ) or 0)


# --- budgets --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BudgetFigures:
    year: int
    amount: int | None  # None: no budget recorded for the year
    committed: int  # contracts starting that year, not cancelled (total with VAT)

    @property
    def remaining(self) -> int | None:
        return None if self.amount is None else self.amount - self.committed


def _require_agency(actor: Principal) -> None:
    if not actor.is_kind("agency"):
        raise Forbidden(_("Budgets and drafting are for agencies."))


async def budget_figures(session: AsyncSession, agency_id: int, year: int, *, excluding: int | None = None) -> BudgetFigures:
    amount = await session.scalar(sa.select(Budget.amount).where(Budget.agency_id == agency_id, Budget.year == year))
    shown = sa.func.coalesce(Contract.signed_version_id, Contract.current_version_id)
    query = (
        sa.select(sa.func.coalesce(sa.func.sum(ContractVersion.amount_total), 0))
        .select_from(Contract).join(ContractVersion, ContractVersion.id == shown)
        .where(
            Contract.agency_id == agency_id, Contract.status != C.cancelled,
            ContractVersion.starts_on >= date(year, 1, 1), ContractVersion.starts_on <= date(year, 12, 31),
        )
    )
    if excluding is not None:
        query = query.where(Contract.id != excluding)
    return BudgetFigures(year, amount, int(await session.scalar(query) or 0))


async def budgets(session: AsyncSession, actor: Principal) -> list[BudgetFigures]:
    _require_agency(actor)
    years = (await session.scalars(sa.select(Budget.year).where(Budget.agency_id == actor.organisation_id).order_by(Budget.year.desc()))).all()
    return [await budget_figures(session, actor.organisation_id, year) for year in years]


async def set_budget(session: AsyncSession, actor: Principal, data: BudgetInput) -> BudgetFigures:
    _require_agency(actor)
    if not actor.is_admin:
        raise Forbidden(_("Only an administrator of your agency can set its budgets."))
    budget = await session.scalar(
        sa.select(Budget).where(Budget.agency_id == actor.organisation_id, Budget.year == data.year).with_for_update()
    )
    previous = budget.amount if budget else None
    if budget is None:
        budget = Budget(agency_id=actor.organisation_id, year=data.year, amount=data.amount)
        session.add(budget)
    else:
        budget.amount = data.amount
        budget.updated_at = utcnow()
    await session.flush()
    await audit.record(session, actor, "budget.set", "budget", budget.id, {"year": data.year, "amount": data.amount, "previous": previous})
    return await budget_figures(session, actor.organisation_id, data.year)


async def _check_budget(session: AsyncSession, agency_id: int, starts_on: date, amount_total: int, excluding: int | None = None) -> None:
    figures = await budget_figures(session, agency_id, starts_on.year, excluding=excluding)
    if figures.remaining is not None and amount_total > figures.remaining:
        raise Invalid(
            _("This contract (₩%(amount)s with VAT) is more than what remains of the %(year)s budget: ₩%(remaining)s of ₩%(budget)s (₩%(committed)s already committed).",
              amount=f"{amount_total:,}", year=figures.year, remaining=f"{figures.remaining:,}", budget=f"{figures.amount:,}",
              committed=f"{figures.committed:,}"),
            errors={"quantity": _("Over budget: ₩%(remaining)s remains for %(year)s.", remaining=f"{figures.remaining:,}", year=figures.year)},
        )


# --- drafting -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Offer:
    """A listed service as an agency may draft from it: the listed version and its priced plans."""

    service: Service
    version: ServiceVersion
    plans: list[Plan]
    provider: Organisation


async def listed_offer(session: AsyncSession, service_id: int) -> Offer:
    """The listed version of a service that can be contracted now; 404 if unknown or never listed (another
    provider's draft or submission is not disclosed), 409 if no longer listed."""
    service = await session.get(Service, service_id)
    if service is None or service.listed_version_id is None:
        raise NotFound(_("No such service."))
    if service.status != ServiceStatus.listed or service.listed_version_id is None:
        raise Conflict(_("This service is not listed (it is %(status)s): no contract can be drafted from it.", status=service.status))
    version = await session.get(ServiceVersion, service.listed_version_id)
    plans = list((await session.scalars(
        sa.select(Plan).where(Plan.version_id == service.listed_version_id, Plan.unit_price.is_not(None)).order_by(Plan.position, Plan.id)
    )).all())
    provider = await session.get(Organisation, service.provider_id)
    if provider is None or not provider.active:
        raise Conflict(_("The provider's account is deactivated: no contract can be drafted from its services until the secretariat activates it again."))
    return Offer(service, version, plans, provider)  # type: ignore[arg-type]


async def plans_of_version(session: AsyncSession, service_version_id: int) -> list[Plan]:
    return list((await session.scalars(
        sa.select(Plan).where(Plan.version_id == service_version_id, Plan.unit_price.is_not(None)).order_by(Plan.position, Plan.id)
    )).all())


def _plan_snapshot(plan: Plan) -> dict[str, Any]:
    return {
        "id": plan.id, "name": plan.name, "unit": plan.unit, "unit_price": plan.unit_price, "vat_included": plan.vat_included,
        "minimum_term_months": plan.minimum_term_months,
    }


def _priced(plan: dict[str, Any], terms: TermsInput | ContractVersion, vat_rate_bp: int, field: str = "quantity") -> pricing.Price:
    """The price of these terms; a total beyond the largest amount of money taken (`MONEY_MAX`) is refused on `field`."""
    price = pricing.price(
        unit=plan["unit"], unit_price=int(plan["unit_price"]), vat_included=bool(plan["vat_included"]),
        quantity=terms.quantity, starts_on=terms.starts_on, ends_on=terms.ends_on, billing_period=terms.billing_period,
        vat_rate_bp=vat_rate_bp,
    )
    if max(price.amount_net, price.amount_vat, price.amount_total) > MONEY_MAX:
        raise invalid(field, _("The total, ₩%(total)s with VAT, is too large: a contract may be worth at most ₩%(most)s.",
                               total=f"{price.amount_total:,}", most=f"{MONEY_MAX:,}"))
    return price


def _check_terms(plan: dict[str, Any], terms: TermsInput, price: pricing.Price) -> None:
    minimum = int(plan.get("minimum_term_months") or 0)
    if price.months < minimum:
        raise invalid("ends_on", _("The plan %(plan)s has a minimum term of %(n)s months.", plan=plan["name"], n=minimum))


def _apply_terms(version: ContractVersion, plan: dict[str, Any], terms: TermsInput, price: pricing.Price) -> None:
    version.plan = plan
    version.quantity = terms.quantity
    version.starts_on, version.ends_on = terms.starts_on, terms.ends_on
    version.billing_period = terms.billing_period
    version.budget_reference, version.route, version.special_terms = terms.budget_reference, terms.route, terms.special_terms
    version.periods = price.periods
    version.amount_net, version.amount_vat, version.amount_total = price.amount_net, price.amount_vat, price.amount_total


async def _project_award(session: AsyncSession, actor: Principal, project_id: int, service_id: int) -> Project:
    project = await session.get(Project, project_id)
    if project is None:
        raise NotFound(_("No such project."))
    if project.agency_id != actor.organisation_id:
        raise Refused(_("No such project."))
    if project.status != ProjectStatus.ended or project.outcome != Outcome.awarded or project.outcome_service_id != service_id:
        raise invalid("project_id", _("This project was not awarded to this service."))
    return project


async def _contract_number(session: AsyncSession, contract: Contract) -> str:
    return f"CT-{contract.created_at.year}-{contract.id:05d}"


async def draft(session: AsyncSession, actor: Principal, data: DraftInput, *, renewal_of: Contract | None = None) -> Contract:
    """A new contract in draft from a listed service's plan; the price is computed here from the stored plan."""
    _require_agency(actor)
    authority.check_may_draft(actor)
    offer = await listed_offer(session, data.service_id)
    plan = next((item for item in offer.plans if item.id == data.plan_id), None)
    if plan is None:
        raise invalid("plan_id", _("Choose one of the plans of the listed service."))
    project = await _project_award(session, actor, data.project_id, data.service_id) if data.project_id is not None else None
    snapshot = _plan_snapshot(plan)
    price = _priced(snapshot, data, VAT_RATE_BP)
    _check_terms(snapshot, data, price)
    await _check_budget(session, actor.organisation_id, data.starts_on, price.amount_total)
    now = utcnow()
    contract = Contract(
        number=f"new-{secrets.token_hex(8)}", agency_id=actor.organisation_id, provider_id=offer.service.provider_id,
        service_id=offer.service.id, project_id=project.id if project else None,  # type: ignore[arg-type]
        renewal_of_id=renewal_of.id if renewal_of else None, created_by_id=actor.user_id, created_at=now, updated_at=now,
    )
    session.add(contract)
    await session.flush()
    contract.number = await _contract_number(session, contract)
    version = ContractVersion(
        contract_id=contract.id, number=1, kind=VersionKind.original, state=V.draft, service_version_id=offer.version.id,  # type: ignore[arg-type]
        plan_id=plan.id, quantity=data.quantity, starts_on=data.starts_on, ends_on=data.ends_on,  # type: ignore[arg-type]
        billing_period=data.billing_period, vat_rate_bp=VAT_RATE_BP, periods=price.periods, amount_net=price.amount_net,
        amount_vat=price.amount_vat, amount_total=price.amount_total, created_by_id=actor.user_id,
    )
    _apply_terms(version, snapshot, data, price)
    session.add(version)
    await session.flush()
    contract.current_version_id = version.id
    await session.flush()
    await audit.record(session, actor, "contract.renew" if renewal_of else "contract.draft", "contract", contract.id, {
        "number": contract.number, "service_id": contract.service_id, "plan": plan.name, "quantity": data.quantity,
        "amount_total": price.amount_total, "project_id": contract.project_id, "renewal_of": contract.renewal_of_id,
    })
    return contract


async def update_draft(session: AsyncSession, actor: Principal, contract_id: int, data: DraftUpdate) -> Contract:
    """Change the draft being prepared; a change made on a stale copy of the draft is refused (409). A change
    withdraws the draft's approval."""
    contract = await get_contract(session, actor, contract_id, for_update=True)
    _require(actor, contract, Side.agency)
    authority.check_may_draft(actor)
    if contract.status != C.draft:
        raise Conflict(_("Only a draft can be changed; withdraw the sent version first."))
    version = await version_of(session, contract)
    if version.lock_version != data.lock_version:
        raise Conflict(_("The draft was changed by someone else since you opened it; reload it and make your change again."))
    if data.plan_id == version.plan_id:
        snapshot = dict(version.plan)
    else:
        plan = await session.scalar(sa.select(Plan).where(Plan.id == data.plan_id, Plan.version_id == version.service_version_id))
        if plan is None or plan.unit_price is None:
            raise invalid("plan_id", _("Choose one of the plans of the listed service."))
        snapshot = _plan_snapshot(plan)
        version.plan_id = plan.id  # type: ignore[assignment]
    price = _priced(snapshot, data, version.vat_rate_bp)
    _check_terms(snapshot, data, price)
    await _check_budget(session, contract.agency_id, data.starts_on, price.amount_total, excluding=contract.id)
    _apply_terms(version, snapshot, data, price)
    version.lock_version += 1
    version.edited_by_id = actor.user_id
    approval_withdrawn = authority.withdraw_approval(version)
    contract.updated_at = utcnow()
    await session.flush()
    await audit.record(session, actor, "contract.update_draft", "contract", contract.id,
                       {"version": version.number, "quantity": version.quantity, "amount_total": version.amount_total,
                        **({"approval_withdrawn": True} if approval_withdrawn else {})})
    return contract


def _new_version_from(previous: ContractVersion, actor: Principal, number: int, kind: str | None = None) -> ContractVersion:
    """A fresh draft copying `previous`'s terms: the frozen text and its signatures stay with `previous`."""
    copied = {
        key: getattr(previous, key) for key in (
            "service_version_id", "plan_id", "plan", "quantity", "starts_on", "ends_on", "billing_period", "budget_reference",
            "route", "special_terms", "vat_rate_bp", "periods", "amount_net", "amount_vat", "amount_total",
            "amendment_reason", "amendment_rationale",
        )
    }
    return ContractVersion(contract_id=previous.contract_id, number=number, kind=kind or previous.kind, state=V.draft,
                           created_by_id=actor.user_id, **copied)


async def _next_number(session: AsyncSession, contract_id: int) -> int:
    return int(await session.scalar(sa.select(sa.func.max(ContractVersion.number)).where(ContractVersion.contract_id == contract_id)) or 0) + 1


# --- sending --------------------------------------------------------------------------------------

STANDARD_TERMS = [
    N_("The provider supplies the service and plan described below, as certified and listed in the marketplace, for the term stated."),
    N_("The provider meets the service level stated below; service credits apply as stated when it does not."),
    N_("The agency pays each invoice within 30 days of its issue; amounts are in Korean won, with VAT shown separately."),
    N_("The provider keeps the agency's data in the country and region stated, and processes it only to supply the service."),
    N_("At the end of the contract the provider returns and then deletes the agency's data as stated in the exit terms."),
    N_("Either party may terminate the contract early with written reasons; amounts due for the service supplied until the effective date remain payable."),
    N_("Changes to this contract are made only by an amendment signed by both parties."),
]


async def document_context(session: AsyncSession, contract: Contract, version: ContractVersion) -> dict[str, Any]:
    """Everything the document says, from the stored rows only."""
    agency = await session.get(Organisation, contract.agency_id)
    provider = await session.get(Organisation, contract.provider_id)
    service = await session.get(ServiceVersion, version.service_version_id)
    previous = None
    if version.kind == VersionKind.amendment and contract.signed_version_id:
        previous = await session.get(ContractVersion, contract.signed_version_id)
    schedule = pricing.period_amounts(version.starts_on, version.ends_on, version.billing_period, version.amount_net, version.amount_vat)
    return {
        "contract": contract, "version": version, "agency": agency, "provider": provider, "service": service,
        "plan": version.plan, "schedule": schedule, "standard_terms": [_(text) for text in STANDARD_TERMS],
        "previous": previous, "currency": CURRENCY, "reason_labels": amendment_reason_labels(),
        "billing_labels": billing_labels(), "route_labels": route_labels(),
    }


def billing_labels() -> dict[str, str]:
    return {"monthly": _("Monthly"), "quarterly": _("Quarterly"), "once": _("One payment for the whole term")}


def route_labels() -> dict[str, str]:
    return {"direct": _("Direct award by the agency"), "central": _("Catalogue contract through the central procurement agency")}


def _pdf_sections(context: dict[str, Any]) -> list[tuple[str, list[str]]]:
    version, agency, provider, service, plan = (context[key] for key in ("version", "agency", "provider", "service", "plan"))
    sla = f"{service.sla_availability_bp / 100:.2f} %" if service.sla_availability_bp else "—"
    sections = [
        (_("Parties"), [_("Agency: %(name)s (%(number)s)", name=agency.name, number=agency.registration_number or ""),
                        _("Provider: %(name)s (%(number)s)", name=provider.name, number=provider.registration_number or "")]),
        (_("Service and plan"), [f"{service.name} — {plan['name']} ({plan['unit']}, ₩{plan['unit_price']:,})",
                                 _("Quantity: %(n)s", n=version.quantity),
                                 _("Term: %(start)s to %(end)s", start=version.starts_on.isoformat(), end=version.ends_on.isoformat())]),
        (_("Service level"), [_("Availability: %(sla)s", sla=sla), service.support_hours, service.service_credits]),
        (_("Exit terms"), [service.data_export_format, service.data_return_terms, service.data_deletion_terms]),
        (_("Price schedule"), [f"{first.isoformat()} – {last.isoformat()}: ₩{net:,} + VAT ₩{vat:,} = ₩{total:,}"
                               for first, last, net, vat, total in context["schedule"]]
         + [_("Total: ₩%(net)s + VAT ₩%(vat)s = ₩%(total)s", net=f"{version.amount_net:,}", vat=f"{version.amount_vat:,}", total=f"{version.amount_total:,}")]),
        (_("Standard terms"), context["standard_terms"]),
        (_("Special terms"), [version.special_terms or _("None.")]),
    ]
    if version.kind == VersionKind.amendment:
        sections.insert(0, (_("Amendment"), [amendment_reason_labels().get(version.amendment_reason or "", ""), version.amendment_rationale]))
    return [(title, [text for text in texts if text]) for title, texts in sections]


async def freeze(session: AsyncSession, store: documents.DocumentStore, contract: Contract, version: ContractVersion) -> None:
    """Render the version's document to HTML and PDF, store both and record their SHA-256: the version is frozen."""
    context = await document_context(session, contract, version)
    html = documents.render_html(context)
    version.document_key = await store.put(html)
    version.document_sha256 = documents.sha256(html)
    pdf = documents.render_pdf(_pdf_sections(context), _("Contract %(number)s, version %(n)s", number=contract.number, n=version.number))
    if pdf is not None:
        version.pdf_key = await store.put(pdf)
        version.pdf_sha256 = documents.sha256(pdf)
    version.state = V.sent
    version.sent_at = utcnow()


async def send(session: AsyncSession, actor: Principal, store: documents.DocumentStore, contract_id: int) -> ContractVersion:
    """Freeze the draft and send it to the provider for signature; above the agency's approval threshold only once
    a second member approved it."""
    contract = await get_contract(session, actor, contract_id, for_update=True)
    _require(actor, contract, Side.agency)
    authority.check_may_draft(actor)
    workflow.CONTRACT.check(contract.status, C.sent)
    await listed_offer(session, contract.service_id)  # a service delisted since the draft cannot be contracted
    version = await version_of(session, contract)
    workflow.VERSION.check(version.state, V.sent)
    await authority.check_approval(session, contract, version)
    await freeze(session, store, contract, version)
    contract.status = C.sent
    contract.updated_at = utcnow()
    await session.flush()
    await audit.record(session, actor, "contract.send", "contract", contract.id,
                       {"version": version.number, "document_sha256": version.document_sha256, "amount_total": version.amount_total})
    await hooks.emit("contract.sent", session, contract_id=contract.id, version_id=version.id)
    return version


async def withdraw(session: AsyncSession, actor: Principal, contract_id: int, reason: str = "") -> Contract:
    """The proposer takes a sent version back before the other side signs; a new draft copy is opened.
    The agency withdraws a sent contract; either party withdraws an amendment it proposed."""
    contract = await get_contract(session, actor, contract_id, for_update=True)
    authority.check_may_draft(actor)
    version = await version_of(session, contract)
    if version.kind == VersionKind.amendment:
        if side_of(actor, contract) != await _proposer_side(session, version, contract):
            raise Forbidden(_("Only the party that proposed the amendment can withdraw it."))
    else:
        _require(actor, contract, Side.agency)
    workflow.VERSION.check(version.state, V.withdrawn)
    other = Side.provider if side_of(actor, contract) == Side.agency else Side.agency
    if await session.scalar(sa.select(Signature.id).where(Signature.version_id == version.id, Signature.side == other)):
        raise Conflict(_("The other party has already signed this version; it can no longer be withdrawn."))
    version.state = V.withdrawn
    if version.kind == VersionKind.amendment:
        contract.current_version_id = contract.signed_version_id
    else:
        workflow.CONTRACT.check(contract.status, C.draft)
        fresh = _new_version_from(version, actor, await _next_number(session, contract.id))
        session.add(fresh)
        await session.flush()
        contract.current_version_id = fresh.id
        contract.status = C.draft
    contract.updated_at = utcnow()
    await session.flush()
    await audit.record(session, actor, "contract.withdraw", "contract", contract.id, {"version": version.number, "reason": reason})
    return contract


async def _proposer_side(session: AsyncSession, version: ContractVersion, contract: Contract) -> Side:
    from market.models import User

    organisation_id = await session.scalar(sa.select(User.organisation_id).where(User.id == version.created_by_id))
    return Side.agency if organisation_id == contract.agency_id else Side.provider


async def decline(session: AsyncSession, actor: Principal, contract_id: int, reason: str) -> Contract:
    """The party asked to sign refuses the sent version, with a reason. A declined original can be revised by the
    agency or cancelled; a declined amendment leaves the contract as signed."""
    contract = await get_contract(session, actor, contract_id, for_update=True)
    version = await version_of(session, contract)
    side = side_of(actor, contract)
    if version.kind == VersionKind.amendment:
        if side == await _proposer_side(session, version, contract):
            raise Forbidden(_("The party that proposed the amendment withdraws it rather than declining it."))
    else:
        _require(actor, contract, Side.provider)
    workflow.VERSION.check(version.state, V.declined)
    if await session.scalar(sa.select(Signature.id).where(Signature.version_id == version.id, Signature.side == side)):
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
    await audit.record(session, actor, "contract.decline", "contract", contract.id, {"version": version.number, "reason": reason})
    return contract


async def revise(session: AsyncSession, actor: Principal, contract_id: int) -> Contract:
    """After a decline, the agency opens a new draft version (a copy of the declined one) to change and send again."""
    contract = await get_contract(session, actor, contract_id, for_update=True)
    _require(actor, contract, Side.agency)
    authority.check_may_draft(actor)
    if contract.status != C.declined:  # (sent, draft) in the table is the agency's withdrawal, not a revision
        raise Conflict(_("Only a declined contract is revised; withdraw a sent one to change it."))
    version = await version_of(session, contract)
    fresh = _new_version_from(version, actor, await _next_number(session, contract.id))
    session.add(fresh)
    await session.flush()
    contract.current_version_id = fresh.id
    contract.status = C.draft
    contract.end_reason = ""
    contract.updated_at = utcnow()
    await session.flush()
    await audit.record(session, actor, "contract.revise", "contract", contract.id, {"version": fresh.number})
    return contract


async def cancel(session: AsyncSession, actor: Principal, contract_id: int, reason: str) -> Contract:
    """The agency abandons the contract before both signatures."""
    contract = await get_contract(session, actor, contract_id, for_update=True)
    _require(actor, contract, Side.agency)
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


# --- after signature ------------------------------------------------------------------------------

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
    pending = await session.scalar(sa.select(ContractVersion).where(
        ContractVersion.contract_id == contract.id, ContractVersion.state.in_(sorted(workflow.PENDING_VERSION)),
    ))
    if pending is not None:
        pending.state = V.withdrawn if pending.state == V.sent else V.superseded
        contract.current_version_id = contract.signed_version_id


async def advance_contracts(session: AsyncSession, today: date) -> tuple[int, int]:
    """Start signed contracts whose start date has come, and complete active ones whose end date has passed.
    Returns (started, completed). Safe to run again: a contract already moved is not picked up."""
    actor = SystemActor(email="system")
    signed_terms = sa.orm.aliased(ContractVersion)
    due_to_start = (await session.scalars(
        sa.select(Contract).join(signed_terms, signed_terms.id == Contract.signed_version_id)
        .where(Contract.status == C.signed, signed_terms.starts_on <= today).order_by(Contract.id).with_for_update(of=Contract)
    )).all()
    for contract in due_to_start:
        await start(session, actor, contract)
    due_to_end = (await session.execute(
        sa.select(Contract, signed_terms.ends_on).join(signed_terms, signed_terms.id == Contract.signed_version_id)
        .where(Contract.status == C.active, signed_terms.ends_on < today).order_by(Contract.id).with_for_update(of=Contract)
    )).all()
    for contract, ends_on in due_to_end:
        await complete(session, actor, contract, ends_on)
    return len(due_to_start), len(due_to_end)


async def terminate(session: AsyncSession, actor: Principal, contract_id: int, data: TerminateInput, today: date | None = None) -> Contract:
    """Either party ends a signed or active contract early, with a reason and an effective date within the term.
    The amount paid so far is taken from the recorded payments."""
    today = today or clock.today()
    contract = await get_contract(session, actor, contract_id, for_update=True)
    workflow.CONTRACT.check(contract.status, C.terminated)
    terms = await version_of(session, contract, version_id=contract.signed_version_id)
    if data.effective_on < today:
        raise invalid("effective_on", _("The effective date cannot be in the past."))
    if data.effective_on > terms.ends_on:
        raise invalid("effective_on", _("The effective date must be on or before the end of the term (%(date)s).", date=terms.ends_on.isoformat()))
    await _close_pending(session, contract)
    paid = await amount_paid(session, contract.id)
    contract.status = C.terminated
    contract.ended_on = data.effective_on
    contract.end_reason = data.reason
    contract.amount_paid_at_end = paid
    contract.updated_at = utcnow()
    await session.flush()
    await audit.record(session, actor, "contract.terminate", "contract", contract.id,
                       {"reason": data.reason, "effective_on": data.effective_on.isoformat(), "amount_paid": paid, "by": side_of(actor, contract)})
    await hooks.emit("contract.terminated", session, contract_id=contract.id)
    return contract


def amendment_reason_labels() -> dict[str, str]:
    return {
        AmendmentReason.price_reduction: _("Price reduction"), AmendmentReason.volume_change: _("Volume change"),
        AmendmentReason.duration_extension: _("Duration extension"), AmendmentReason.tax_rate_change: _("Tax rate change"),
        AmendmentReason.other: _("Other"),
    }


async def amend(session: AsyncSession, actor: Principal, store: documents.DocumentStore, contract_id: int, data: AmendInput) -> ContractVersion:
    """Either party proposes an amendment to a contract in force: a new version, frozen and sent for both signatures.
    It must change something; it takes effect when both have signed, and the signed text before it stays readable."""
    contract = await get_contract(session, actor, contract_id, for_update=True)
    authority.check_may_draft(actor)
    if contract.status not in workflow.IN_FORCE:
        raise Conflict(_("Only a signed or active contract can be amended."))
    if contract.current_version_id != contract.signed_version_id:
        raise Conflict(_("An amendment is already waiting for signatures; sign, decline or withdraw it first."))
    signed = await version_of(session, contract, version_id=contract.signed_version_id)
    version = _new_version_from(signed, actor, await _next_number(session, contract.id), VersionKind.amendment)
    plan = dict(signed.plan)
    if data.unit_price is not None:
        if data.amendment_reason == AmendmentReason.price_reduction and data.unit_price >= int(plan["unit_price"]):
            raise invalid("unit_price", _("A price reduction must lower the unit price (now ₩%(price)s).", price=f"{int(plan['unit_price']):,}"))
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
    price = _priced(plan, version, version.vat_rate_bp, "unit_price" if data.unit_price is not None else "quantity")
    version.periods, version.amount_net, version.amount_vat, version.amount_total = price.periods, price.amount_net, price.amount_vat, price.amount_total
    compared = ("plan", "quantity", "ends_on", "vat_rate_bp", "special_terms")
    if all(getattr(version, key) == getattr(signed, key) for key in compared):
        raise invalid("amendment_reason", _("The amendment changes nothing: change the quantity, end date, unit price, tax rate or special terms."))
    version.amendment_reason = data.amendment_reason
    version.amendment_rationale = data.rationale
    session.add(version)
    await session.flush()
    await freeze(session, store, contract, version)
    contract.current_version_id = version.id
    contract.updated_at = utcnow()
    await session.flush()
    await audit.record(session, actor, "contract.amend", "contract", contract.id, {
        "version": version.number, "reason": data.amendment_reason, "rationale": data.rationale,
        "changed": [key for key in compared if getattr(version, key) != getattr(signed, key)],
        "amount_total": version.amount_total, "document_sha256": version.document_sha256,
    })
    await hooks.emit("contract.sent", session, contract_id=contract.id, version_id=version.id)
    return version


async def renew(session: AsyncSession, actor: Principal, contract_id: int, data: RenewInput) -> Contract:
    """A new draft linked to this contract, from the service's listed plan of the same name."""
    contract = await get_contract(session, actor, contract_id)
    _require(actor, contract, Side.agency)
    if contract.status not in workflow.RENEWABLE:
        raise Conflict(_("Only a signed contract can be renewed."))
    terms = await version_of(session, contract, version_id=contract.signed_version_id)
    offer = await listed_offer(session, contract.service_id)
    plan = next((item for item in offer.plans if item.name == terms.plan.get("name")), None)
    if plan is None:
        raise Conflict(_("The plan %(plan)s is no longer offered; draft a new contract from the service instead.", plan=terms.plan.get("name")))
    starts_on = data.starts_on or terms.ends_on + timedelta(days=1)
    length = pricing.term_months(terms.starts_on, terms.ends_on)
    ends_on = data.ends_on or pricing.add_months(starts_on, length) - timedelta(days=1)
    renewal = DraftInput(
        service_id=contract.service_id, plan_id=plan.id, quantity=data.quantity or terms.quantity, starts_on=starts_on,  # type: ignore[arg-type]
        ends_on=ends_on, billing_period=terms.billing_period, budget_reference=terms.budget_reference, route=terms.route,  # type: ignore[arg-type]
        special_terms=terms.special_terms,
    )
    return await draft(session, actor, renewal, renewal_of=contract)
