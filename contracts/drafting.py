"""Drafting a contract: a draft from a listed service's plan (or a renewal of a signed contract), changing it,
freezing its document and sending it for signature; taking a sent version back, and revising a declined one.

The price is always computed here from the plan the catalogue offers. Every change is one transaction with one
audit event, and announces itself with `market.hooks.emit`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

import catalog
from contracts import authority, budgets, documents, pricing, workflow
from contracts.models import (
    CURRENCY,
    Contract,
    ContractVersion,
    Side,
    Signature,
    VersionKind,
)
from contracts.models import ContractStatus as C
from contracts.models import VersionState as V
from contracts.schemas import (
    DraftInput,
    DraftUpdate,
    RenewInput,
    TermsInput,
    amendment_reason_labels,
    billing_labels,
    invalid,
    route_labels,
)
from contracts.views import (
    get_contract,
    proposer_side,
    require_side,
    side_of,
    version_of,
)
from market import audit, hooks
from market.auth import Principal
from market.database import utcnow
from market.errors import Conflict, Forbidden, NotFound, Refused
from market.formatting import day, money
from market.i18n import N_, _
from market.models import Organisation
from market.schemas import MONEY_MAX

VAT_RATE_BP = 1000  # 10 %


@dataclass(frozen=True)
class Offer:
    """A listed service as an agency may draft from it: the listed version, its priced plans and the provider."""

    service_id: int
    version: catalog.ContractedService
    plans: list[catalog.OfferedPlan]
    provider: Organisation


async def listed_offer(session: AsyncSession, service_id: int) -> Offer:
    """The listed version of a service that can be contracted now; 404 if unknown or never listed (another
    provider's draft or submission is not disclosed), 409 if no longer listed."""
    offer = await catalog.listed_offer(session, service_id)
    if offer is None:
        raise NotFound(_("No such service."))
    if not offer.listed:
        raise Conflict(
            _("This service is not listed (it is %(status)s): no contract can be drafted from it.", status=offer.status)
        )
    provider = await session.get(Organisation, offer.provider_id)
    if provider is None or not provider.active:
        raise Conflict(
            _(
                "The provider's account is deactivated: no contract can be drafted from its services until the secretariat activates it again."
            )
        )
    return Offer(offer.service_id, offer.version, offer.plans, provider)


def _plan_snapshot(plan: catalog.OfferedPlan) -> dict[str, Any]:
    return {
        "id": plan.id,
        "name": plan.name,
        "unit": plan.unit,
        "unit_price": plan.unit_price,
        "vat_included": plan.vat_included,
        "minimum_term_months": plan.minimum_term_months,
    }


def priced(
    plan: dict[str, Any], terms: TermsInput | ContractVersion, vat_rate_bp: int, field: str = "quantity"
) -> pricing.Price:
    """The price of these terms; a total beyond the largest amount of money taken (`MONEY_MAX`) is refused on `field`."""
    price = pricing.price(
        unit=plan["unit"],
        unit_price=int(plan["unit_price"]),
        vat_included=bool(plan["vat_included"]),
        quantity=terms.quantity,
        starts_on=terms.starts_on,
        ends_on=terms.ends_on,
        billing_period=terms.billing_period,
        vat_rate_bp=vat_rate_bp,
    )
    if max(price.amount_net, price.amount_vat, price.amount_total) > MONEY_MAX:
        raise invalid(
            field,
            _(
                "The total, ₩%(total)s with VAT, is too large: a contract may be worth at most ₩%(most)s.",
                total=f"{price.amount_total:,}",
                most=f"{MONEY_MAX:,}",
            ),
        )
    return price


def _check_terms(plan: dict[str, Any], terms: TermsInput, price: pricing.Price) -> None:
    minimum = int(plan.get("minimum_term_months") or 0)
    if price.months < minimum:
        raise invalid(
            "ends_on", _("The plan %(plan)s has a minimum term of %(n)s months.", plan=plan["name"], n=minimum)
        )


def _apply_terms(version: ContractVersion, plan: dict[str, Any], terms: TermsInput, price: pricing.Price) -> None:
    version.plan = plan
    version.quantity = terms.quantity
    version.starts_on, version.ends_on = terms.starts_on, terms.ends_on
    version.billing_period = terms.billing_period
    version.budget_reference, version.route, version.special_terms = (
        terms.budget_reference,
        terms.route,
        terms.special_terms,
    )
    version.periods = price.periods
    version.amount_net, version.amount_vat, version.amount_total = (
        price.amount_net,
        price.amount_vat,
        price.amount_total,
    )


async def _project_award(
    session: AsyncSession, actor: Principal, project_id: int, service_id: int
) -> catalog.ProjectAward:
    project = await catalog.project_award(session, project_id)
    if project is None:
        raise NotFound(_("No such project."))
    if project.agency_id != actor.organisation_id:
        raise Refused(_("No such project."))
    if project.awarded_service_id != service_id:
        raise invalid("project_id", _("This project was not awarded to this service."))
    return project


async def _contract_number(session: AsyncSession, contract: Contract) -> str:
    return f"CT-{contract.created_at.year}-{contract.id:05d}"


async def draft(
    session: AsyncSession, actor: Principal, data: DraftInput, *, renewal_of: Contract | None = None
) -> Contract:
    """A new contract in draft from a listed service's plan; the price is computed here from the stored plan."""
    budgets.require_agency(actor)
    authority.check_may_draft(actor)
    offer = await listed_offer(session, data.service_id)
    plan = next((item for item in offer.plans if item.id == data.plan_id), None)
    if plan is None:
        raise invalid("plan_id", _("Choose one of the plans of the listed service."))
    project = (
        await _project_award(session, actor, data.project_id, data.service_id) if data.project_id is not None else None
    )
    snapshot = _plan_snapshot(plan)
    price = priced(snapshot, data, VAT_RATE_BP)
    _check_terms(snapshot, data, price)
    await budgets.check_budget(session, actor.organisation_id, data.starts_on, price.amount_total)
    now = utcnow()
    contract = Contract(
        number=f"new-{secrets.token_hex(8)}",
        agency_id=actor.organisation_id,
        provider_id=offer.provider.id,  # type: ignore[arg-type]
        service_id=offer.service_id,
        project_id=project.id if project else None,
        renewal_of_id=renewal_of.id if renewal_of else None,
        created_by_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(contract)
    await session.flush()
    assert contract.id is not None  # flushed
    contract.number = await _contract_number(session, contract)
    version = ContractVersion(
        contract_id=contract.id,
        number=1,
        kind=VersionKind.original,
        state=V.draft,
        service_version_id=offer.version.id,
        plan_id=plan.id,
        quantity=data.quantity,
        starts_on=data.starts_on,
        ends_on=data.ends_on,
        billing_period=data.billing_period,
        vat_rate_bp=VAT_RATE_BP,
        periods=price.periods,
        amount_net=price.amount_net,
        amount_vat=price.amount_vat,
        amount_total=price.amount_total,
        created_by_id=actor.user_id,
    )
    _apply_terms(version, snapshot, data, price)
    session.add(version)
    await session.flush()
    contract.current_version_id = version.id
    await session.flush()
    await audit.record(
        session,
        actor,
        "contract.renew" if renewal_of else "contract.draft",
        "contract",
        contract.id,
        {
            "number": contract.number,
            "service_id": contract.service_id,
            "plan": plan.name,
            "quantity": data.quantity,
            "amount_total": price.amount_total,
            "project_id": contract.project_id,
            "renewal_of": contract.renewal_of_id,
        },
    )
    return contract


async def update_draft(session: AsyncSession, actor: Principal, contract_id: int, data: DraftUpdate) -> Contract:
    """Change the draft being prepared; a change made on a stale copy of the draft is refused (409). A change
    withdraws the draft's approval."""
    contract = await get_contract(session, actor, contract_id, for_update=True)
    require_side(actor, contract, Side.agency)
    authority.check_may_draft(actor)
    if contract.status != C.draft:
        raise Conflict(_("Only a draft can be changed; withdraw the sent version first."))
    version = await version_of(session, contract)
    if version.lock_version != data.lock_version:
        raise Conflict(
            _("The draft was changed by someone else since you opened it; reload it and make your change again.")
        )
    if data.plan_id == version.plan_id:
        snapshot = dict(version.plan)
    else:
        plan = await catalog.offered_plan(session, version.service_version_id, data.plan_id)
        if plan is None:
            raise invalid("plan_id", _("Choose one of the plans of the listed service."))
        snapshot = _plan_snapshot(plan)
        version.plan_id = plan.id
    price = priced(snapshot, data, version.vat_rate_bp)
    _check_terms(snapshot, data, price)
    await budgets.check_budget(session, contract.agency_id, data.starts_on, price.amount_total, excluding=contract.id)
    _apply_terms(version, snapshot, data, price)
    version.lock_version += 1
    version.edited_by_id = actor.user_id
    approval_withdrawn = authority.withdraw_approval(version)
    contract.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        actor,
        "contract.update_draft",
        "contract",
        contract.id,
        {
            "version": version.number,
            "quantity": version.quantity,
            "amount_total": version.amount_total,
            **({"approval_withdrawn": True} if approval_withdrawn else {}),
        },
    )
    return contract


def new_version_from(
    previous: ContractVersion, actor: Principal, number: int, kind: str | None = None
) -> ContractVersion:
    """A fresh draft copying `previous`'s terms: the frozen text and its signatures stay with `previous`."""
    copied = {
        key: getattr(previous, key)
        for key in (
            "service_version_id",
            "plan_id",
            "plan",
            "quantity",
            "starts_on",
            "ends_on",
            "billing_period",
            "budget_reference",
            "route",
            "special_terms",
            "vat_rate_bp",
            "periods",
            "amount_net",
            "amount_vat",
            "amount_total",
            "amendment_reason",
            "amendment_rationale",
        )
    }
    return ContractVersion(
        contract_id=previous.contract_id,
        number=number,
        kind=kind or previous.kind,
        state=V.draft,
        created_by_id=actor.user_id,
        **copied,
    )


async def next_number(session: AsyncSession, contract_id: int) -> int:
    return (
        int(
            await session.scalar(
                sa.select(sa.func.max(col(ContractVersion.number))).where(
                    col(ContractVersion.contract_id) == contract_id
                )
            )
            or 0
        )
        + 1
    )


STANDARD_TERMS = [
    N_(
        "The provider supplies the service and plan described below, as certified and listed in the marketplace, for the term stated."
    ),
    N_("The provider meets the service level stated below; service credits apply as stated when it does not."),
    N_(
        "The agency pays each invoice within 30 days of its issue; amounts are in Korean won, with VAT shown separately."
    ),
    N_(
        "The provider keeps the agency's data in the country and region stated, and processes it only to supply the service."
    ),
    N_(
        "At the end of the contract the provider returns and then deletes the agency's data as stated in the exit terms."
    ),
    N_(
        "Either party may terminate the contract early with written reasons; amounts due for the service supplied until the effective date remain payable."
    ),
    N_("Changes to this contract are made only by an amendment signed by both parties."),
]


async def document_context(session: AsyncSession, contract: Contract, version: ContractVersion) -> dict[str, Any]:
    """Everything the document says, from the stored rows only."""
    agency = await session.get(Organisation, contract.agency_id)
    provider = await session.get(Organisation, contract.provider_id)
    service = await catalog.contracted_service(session, version.service_version_id)
    previous = None
    if version.kind == VersionKind.amendment and contract.signed_version_id:
        previous = await session.get(ContractVersion, contract.signed_version_id)
    schedule = pricing.period_amounts(
        version.starts_on, version.ends_on, version.billing_period, version.amount_net, version.amount_vat
    )
    return {
        "contract": contract,
        "version": version,
        "agency": agency,
        "provider": provider,
        "service": service,
        "plan": version.plan,
        "schedule": schedule,
        "standard_terms": [_(text) for text in STANDARD_TERMS],
        "previous": previous,
        "currency": CURRENCY,
        "reason_labels": amendment_reason_labels(),
        "billing_labels": billing_labels(),
        "route_labels": route_labels(),
    }


def _pdf_sections(context: dict[str, Any]) -> list[tuple[str, list[str]]]:
    version, agency, provider, service, plan = (
        context[key] for key in ("version", "agency", "provider", "service", "plan")
    )
    sla = f"{service.sla_availability_bp / 100:.2f} %" if service.sla_availability_bp else "—"
    sections = [
        (
            _("Parties"),
            [
                _("Agency: %(name)s (%(number)s)", name=agency.name, number=agency.registration_number or ""),
                _("Provider: %(name)s (%(number)s)", name=provider.name, number=provider.registration_number or ""),
            ],
        ),
        (
            _("Service and plan"),
            [
                f"{service.name} — {plan['name']} ({plan['unit']}, {money(plan['unit_price'])})",
                _("Quantity: %(n)s", n=version.quantity),
                _("Term: %(start)s to %(end)s", start=day(version.starts_on), end=day(version.ends_on)),
            ],
        ),
        (_("Service level"), [_("Availability: %(sla)s", sla=sla), service.support_hours, service.service_credits]),
        (_("Exit terms"), [service.data_export_format, service.data_return_terms, service.data_deletion_terms]),
        (
            _("Price schedule"),
            [
                f"{day(first)} – {day(last)}: {money(net)} + VAT {money(vat)} = {money(total)}"
                for first, last, net, vat, total in context["schedule"]
            ]
            + [
                _(
                    "Total: ₩%(net)s + VAT ₩%(vat)s = ₩%(total)s",
                    net=f"{version.amount_net:,}",
                    vat=f"{version.amount_vat:,}",
                    total=f"{version.amount_total:,}",
                )
            ],
        ),
        (_("Standard terms"), context["standard_terms"]),
        (_("Special terms"), [version.special_terms or _("None.")]),
    ]
    if version.kind == VersionKind.amendment:
        sections.insert(
            0,
            (
                _("Amendment"),
                [amendment_reason_labels().get(version.amendment_reason or "", ""), version.amendment_rationale],
            ),
        )
    return [(title, [text for text in texts if text]) for title, texts in sections]


async def freeze(
    session: AsyncSession, store: documents.DocumentStore, contract: Contract, version: ContractVersion
) -> None:
    """Render the version's document to HTML and PDF, store both and record their SHA-256: the version is frozen."""
    context = await document_context(session, contract, version)
    html = documents.render_html(context)
    version.document_key = await store.put(html)
    version.document_sha256 = documents.sha256(html)
    pdf = documents.render_pdf(
        _pdf_sections(context), _("Contract %(number)s, version %(n)s", number=contract.number, n=version.number)
    )
    if pdf is not None:
        version.pdf_key = await store.put(pdf)
        version.pdf_sha256 = documents.sha256(pdf)
    version.state = V.sent
    version.sent_at = utcnow()


async def send(
    session: AsyncSession, actor: Principal, store: documents.DocumentStore, contract_id: int
) -> ContractVersion:
    """Freeze the draft and send it to the provider for signature; above the agency's approval threshold only once
    a second member approved it."""
    contract = await get_contract(session, actor, contract_id, for_update=True)
    require_side(actor, contract, Side.agency)
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
    await audit.record(
        session,
        actor,
        "contract.send",
        "contract",
        contract.id,
        {"version": version.number, "document_sha256": version.document_sha256, "amount_total": version.amount_total},
    )
    await hooks.emit("contract.sent", session, contract_id=contract.id, version_id=version.id)
    return version


async def withdraw(session: AsyncSession, actor: Principal, contract_id: int, reason: str = "") -> Contract:
    """The proposer takes a sent version back before the other side signs; a new draft copy is opened.
    The agency withdraws a sent contract; either party withdraws an amendment it proposed."""
    contract = await get_contract(session, actor, contract_id, for_update=True)
    authority.check_may_draft(actor)
    version = await version_of(session, contract)
    if version.kind == VersionKind.amendment:
        if side_of(actor, contract) != await proposer_side(session, version, contract):
            raise Forbidden(_("Only the party that proposed the amendment can withdraw it."))
    else:
        require_side(actor, contract, Side.agency)
    workflow.VERSION.check(version.state, V.withdrawn)
    other = Side.provider if side_of(actor, contract) == Side.agency else Side.agency
    if await session.scalar(
        sa.select(col(Signature.id)).where(col(Signature.version_id) == version.id, col(Signature.side) == other)
    ):
        raise Conflict(_("The other party has already signed this version; it can no longer be withdrawn."))
    version.state = V.withdrawn
    if version.kind == VersionKind.amendment:
        contract.current_version_id = contract.signed_version_id
    else:
        workflow.CONTRACT.check(contract.status, C.draft)
        fresh = new_version_from(version, actor, await next_number(session, contract_id))
        session.add(fresh)
        await session.flush()
        contract.current_version_id = fresh.id
        contract.status = C.draft
    contract.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session, actor, "contract.withdraw", "contract", contract.id, {"version": version.number, "reason": reason}
    )
    return contract


async def revise(session: AsyncSession, actor: Principal, contract_id: int) -> Contract:
    """After a decline, the agency opens a new draft version (a copy of the declined one) to change and send again."""
    contract = await get_contract(session, actor, contract_id, for_update=True)
    require_side(actor, contract, Side.agency)
    authority.check_may_draft(actor)
    if contract.status != C.declined:  # (sent, draft) in the table is the agency's withdrawal, not a revision
        raise Conflict(_("Only a declined contract is revised; withdraw a sent one to change it."))
    version = await version_of(session, contract)
    fresh = new_version_from(version, actor, await next_number(session, contract_id))
    session.add(fresh)
    await session.flush()
    contract.current_version_id = fresh.id
    contract.status = C.draft
    contract.end_reason = ""
    contract.updated_at = utcnow()
    await session.flush()
    await audit.record(session, actor, "contract.revise", "contract", contract.id, {"version": fresh.number})
    return contract


async def renew(session: AsyncSession, actor: Principal, contract_id: int, data: RenewInput) -> Contract:
    """A new draft linked to this contract, from the service's listed plan of the same name."""
    contract = await get_contract(session, actor, contract_id)
    require_side(actor, contract, Side.agency)
    if contract.status not in workflow.RENEWABLE:
        raise Conflict(_("Only a signed contract can be renewed."))
    terms = await version_of(session, contract, version_id=contract.signed_version_id)
    offer = await listed_offer(session, contract.service_id)
    plan = next((item for item in offer.plans if item.name == terms.plan.get("name")), None)
    if plan is None:
        raise Conflict(
            _(
                "The plan %(plan)s is no longer offered; draft a new contract from the service instead.",
                plan=terms.plan.get("name"),
            )
        )
    starts_on = data.starts_on or terms.ends_on + timedelta(days=1)
    length = pricing.term_months(terms.starts_on, terms.ends_on)
    ends_on = data.ends_on or pricing.add_months(starts_on, length) - timedelta(days=1)
    renewal = DraftInput(
        service_id=contract.service_id,
        plan_id=plan.id,
        quantity=data.quantity or terms.quantity,
        starts_on=starts_on,
        ends_on=ends_on,
        billing_period=terms.billing_period,
        budget_reference=terms.budget_reference,
        route=terms.route,
        special_terms=terms.special_terms,
    )
    return await draft(session, actor, renewal, renewal_of=contract)
