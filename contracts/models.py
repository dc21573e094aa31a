"""The contracts' tables: contracts and their versions (the original and each amendment), signatures,
agencies' budgets, invoices and payments, Stripe bookkeeping, and the OCDS releases of the register."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from market.database import utc_field, utcnow

CURRENCY = "KRW"  # whole won: KRW has no minor unit


class ContractStatus(StrEnum):
    draft = "draft"  # the agency is preparing it; nothing frozen yet
    sent = "sent"  # the document is frozen and waiting for signatures
    declined = "declined"  # the provider declined the sent version, with a reason
    signed = "signed"  # both sides signed; it starts on its start date
    active = "active"
    completed = "completed"  # the end date passed
    terminated = "terminated"  # ended early by either party
    cancelled = "cancelled"  # abandoned before both signatures


class VersionState(StrEnum):
    draft = "draft"
    sent = "sent"  # frozen: its document and hash no longer change
    signed = "signed"  # both signatures on this version: it is the text in force
    declined = "declined"
    withdrawn = "withdrawn"  # the agency took it back before the provider signed
    superseded = "superseded"  # a later version replaced it before signature, or a later signed one replaced it


class VersionKind(StrEnum):
    original = "original"
    amendment = "amendment"


class BillingPeriod(StrEnum):
    monthly = "monthly"
    quarterly = "quarterly"
    once = "once"  # one payment for the whole term


class Route(StrEnum):
    direct = "direct"  # a direct award by the agency itself
    central = "central"  # a catalogue contract through the central procurement agency


class AmendmentReason(StrEnum):
    price_reduction = "price_reduction"
    volume_change = "volume_change"
    duration_extension = "duration_extension"
    tax_rate_change = "tax_rate_change"
    other = "other"


class Side(StrEnum):
    agency = "agency"
    provider = "provider"


class InvoiceStatus(StrEnum):
    open = "open"
    paid = "paid"
    void = "void"
    uncollectible = "uncollectible"


class Contract(SQLModel, table=True):
    """One contracting process: what stays the same across its versions."""

    __tablename__ = "contracts_contract"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=20, unique=True)  # CT-2026-00017
    agency_id: int = Field(foreign_key="organisation.id", index=True)
    provider_id: int = Field(foreign_key="organisation.id", index=True)
    service_id: int = Field(foreign_key="catalog_service.id", index=True)
    project_id: int | None = Field(default=None, foreign_key="catalog_project.id")
    renewal_of_id: int | None = Field(default=None, foreign_key="contracts_contract.id")
    status: str = Field(default=ContractStatus.draft, max_length=16, index=True)
    # The version being prepared or signed now, and the signed version in force (None until first signed).
    current_version_id: int | None = Field(default=None)
    signed_version_id: int | None = Field(default=None)
    ended_on: date | None = Field(default=None)  # completion or termination's effective date
    end_reason: str = Field(default="", max_length=2000)  # termination, decline or cancellation reason
    amount_paid_at_end: int | None = Field(default=None, sa_type=sa.BigInteger)  # KRW
    created_by_id: int = Field(foreign_key="user_account.id")
    created_at: datetime = utc_field(default_factory=utcnow)
    updated_at: datetime = utc_field(default_factory=utcnow, index=True)


class ContractVersion(SQLModel, table=True):
    """One text of a contract: the original or an amendment. Frozen (document and hash) once sent."""

    __tablename__ = "contracts_contract_version"
    __table_args__ = (sa.UniqueConstraint("contract_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contracts_contract.id", index=True)
    number: int  # 1 for the original, then one more per new version
    kind: str = Field(default=VersionKind.original, max_length=16)
    state: str = Field(default=VersionState.draft, max_length=16)
    service_version_id: int = Field(foreign_key="catalog_service_version.id")
    plan_id: int = Field(foreign_key="catalog_plan.id")
    plan: dict[str, Any] = Field(
        default_factory=dict, sa_type=sa.JSON
    )  # name, unit, unit_price, vat_included as priced
    quantity: int
    starts_on: date
    ends_on: date
    billing_period: str = Field(max_length=16)
    budget_reference: str = Field(default="", max_length=100)
    route: str = Field(default=Route.direct, max_length=16)
    special_terms: str = Field(default="", max_length=4000)
    vat_rate_bp: int = Field(default=1000)  # basis points: 1000 is 10 %
    periods: int  # billing periods over the term
    amount_net: int = Field(sa_type=sa.BigInteger)  # KRW, before VAT
    amount_vat: int = Field(sa_type=sa.BigInteger)
    amount_total: int = Field(sa_type=sa.BigInteger)
    amendment_reason: str | None = Field(default=None, max_length=32)
    amendment_rationale: str = Field(default="", max_length=4000)
    lock_version: int = Field(default=1)  # optimistic lock for edits of a draft
    document_key: str | None = Field(default=None, max_length=100)  # the frozen HTML in storage
    document_sha256: str | None = Field(default=None, max_length=64)
    pdf_key: str | None = Field(default=None, max_length=100)
    pdf_sha256: str | None = Field(default=None, max_length=64)
    decline_reason: str = Field(default="", max_length=2000)
    created_by_id: int = Field(foreign_key="user_account.id")
    edited_by_id: int | None = Field(
        default=None, foreign_key="user_account.id"
    )  # the last member who changed the draft
    # A second member's approval of the draft (above the agency's approval threshold it is needed before sending);
    # a change to the draft withdraws it.
    approved_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    approved_by_role: str | None = Field(default=None, max_length=16)  # the approver's role at the time
    approved_at: datetime | None = utc_field(default=None, nullable=True)
    created_at: datetime = utc_field(default_factory=utcnow)
    sent_at: datetime | None = utc_field(default=None, nullable=True)
    signed_at: datetime | None = utc_field(default=None, nullable=True)  # when the second signature made it binding


class Signature(SQLModel, table=True):
    """One side's signature on one version. The unique pair makes signing happen exactly once."""

    __tablename__ = "contracts_signature"
    __table_args__ = (sa.UniqueConstraint("version_id", "side"),)

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contracts_contract.id", index=True)
    version_id: int = Field(foreign_key="contracts_contract_version.id")
    side: str = Field(max_length=16)
    user_id: int = Field(foreign_key="user_account.id")
    organisation_id: int = Field(foreign_key="organisation.id")
    signer_name: str = Field(max_length=200)  # as typed by the signer
    signer_role: str = Field(max_length=16)  # the user's role in the organisation at the time
    document_sha256: str = Field(max_length=64)
    address: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=500)
    signed_at: datetime = utc_field(default_factory=utcnow)
    # The proof: "password" (re-entered; proves nothing afterwards), "webauthn" (a passkey) or "ed25519" (an API
    # signing key). For the last two, `payload` is the canonical text that was signed and `evidence` what checks it
    # (credential id, public key, algorithm, signature; for a passkey also authenticator data and client data).
    method: str = Field(default="password", max_length=16, sa_column_kwargs={"server_default": "password"})
    signing_key_id: int | None = Field(default=None, foreign_key="signing_key.id")
    payload: str = Field(default="", sa_type=sa.Text, sa_column_kwargs={"server_default": ""})
    evidence: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)


class Budget(SQLModel, table=True):
    """An agency's budget for cloud services in one fiscal (calendar) year."""

    __tablename__ = "contracts_budget"
    __table_args__ = (sa.UniqueConstraint("agency_id", "year"),)

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="organisation.id", index=True)
    year: int
    amount: int = Field(sa_type=sa.BigInteger)  # KRW
    updated_at: datetime = utc_field(default_factory=utcnow)


class ApprovalThreshold(SQLModel, table=True):
    """An agency's approval threshold: a draft whose total value with VAT is above it is sent only once a second
    member (a signer or an administrator who did not draft it) has approved it. No row: no approval is needed."""

    __tablename__ = "contracts_approval_threshold"

    agency_id: int = Field(foreign_key="organisation.id", primary_key=True)
    amount: int = Field(sa_type=sa.BigInteger)  # KRW, with VAT
    updated_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    updated_at: datetime = utc_field(default_factory=utcnow)


class Invoice(SQLModel, table=True):
    """One billing period's invoice; the pair (contract, period) is issued once."""

    __tablename__ = "contracts_invoice"
    __table_args__ = (sa.UniqueConstraint("contract_id", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=24, unique=True)  # INV-2026-000123
    contract_id: int = Field(foreign_key="contracts_contract.id", index=True)
    version_id: int = Field(foreign_key="contracts_contract_version.id")
    agency_id: int = Field(foreign_key="organisation.id", index=True)
    provider_id: int = Field(foreign_key="organisation.id", index=True)
    period: int  # 1, 2, ...
    period_start: date
    period_end: date
    amount_net: int = Field(sa_type=sa.BigInteger)  # KRW
    amount_vat: int = Field(sa_type=sa.BigInteger)
    amount_total: int = Field(sa_type=sa.BigInteger)
    currency: str = Field(default=CURRENCY, max_length=3)
    issued_on: date
    due_on: date
    status: str = Field(default=InvoiceStatus.open, max_length=16, index=True)
    payment_mode: str = Field(default="manual", max_length=16)  # manual or stripe
    stripe_invoice_id: str | None = Field(default=None, max_length=100, unique=True)
    stripe_status_at: int | None = Field(default=None)  # the Stripe event time of the last status applied
    paid_at: datetime | None = utc_field(default=None, nullable=True)
    created_at: datetime = utc_field(default_factory=utcnow)
    updated_at: datetime = utc_field(default_factory=utcnow)


class Payment(SQLModel, table=True):
    __tablename__ = "contracts_payment"

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="contracts_invoice.id", index=True)
    amount: int = Field(sa_type=sa.BigInteger)  # KRW
    paid_on: date
    method: str = Field(max_length=16)  # bank_transfer or stripe
    reference: str = Field(default="", max_length=200)
    recorded_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = utc_field(default_factory=utcnow)


class StripeCustomer(SQLModel, table=True):
    __tablename__ = "contracts_stripe_customer"

    agency_id: int = Field(foreign_key="organisation.id", primary_key=True)
    customer_id: str = Field(max_length=100, unique=True)
    created_at: datetime = utc_field(default_factory=utcnow)


class StripeEvent(SQLModel, table=True):
    """A processed webhook event: stored with its effect, so a redelivery does nothing."""

    __tablename__ = "contracts_stripe_event"

    event_id: str = Field(max_length=100, primary_key=True)
    type: str = Field(max_length=100)
    created: int  # Stripe's event time (Unix seconds)
    received_at: datetime = utc_field(default_factory=utcnow)


class Release(SQLModel, table=True):
    """An OCDS release, written when the contract changes; `id` orders the feed for harvesters."""

    __tablename__ = "contracts_ocds_release"

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contracts_contract.id", index=True)
    ocid: str = Field(max_length=100, index=True)
    release_id: str = Field(max_length=120, unique=True)
    tags: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    released_at: datetime = utc_field(default_factory=utcnow, index=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
