"""contracts: contracts, versions, signatures, budgets, invoices, payments, stripe, ocds releases

Revision ID: 0005_contracts
Revises: 0004_committee
Create Date: 2026-11-29 18:48:21.329426
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import market.database

revision: str = "0005_contracts"
down_revision: str | None = "0004_committee"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "contracts_stripe_event",
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("received_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_table(
        "contracts_budget",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("updated_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["organisation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agency_id", "year"),
    )
    with op.batch_alter_table("contracts_budget", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contracts_budget_agency_id"), ["agency_id"], unique=False)

    op.create_table(
        "contracts_stripe_customer",
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("created_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["organisation.id"],
        ),
        sa.PrimaryKeyConstraint("agency_id"),
        sa.UniqueConstraint("customer_id"),
    )
    op.create_table(
        "contracts_contract",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("renewal_of_id", sa.Integer(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("current_version_id", sa.Integer(), nullable=True),
        sa.Column("signed_version_id", sa.Integer(), nullable=True),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("end_reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("amount_paid_at_end", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["organisation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["catalog_project.id"],
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["organisation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["renewal_of_id"],
            ["contracts_contract.id"],
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["catalog_service.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
    )
    with op.batch_alter_table("contracts_contract", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contracts_contract_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contracts_contract_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contracts_contract_service_id"), ["service_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contracts_contract_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_contracts_contract_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "contracts_contract_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("service_version_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("billing_period", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("budget_reference", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("route", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("special_terms", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
        sa.Column("vat_rate_bp", sa.Integer(), nullable=False),
        sa.Column("periods", sa.Integer(), nullable=False),
        sa.Column("amount_net", sa.Integer(), nullable=False),
        sa.Column("amount_vat", sa.Integer(), nullable=False),
        sa.Column("amount_total", sa.Integer(), nullable=False),
        sa.Column("amendment_reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("amendment_rationale", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.Column("document_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("document_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("pdf_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("pdf_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("decline_reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", market.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("signed_at", market.database.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts_contract.id"],
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["catalog_plan.id"],
        ),
        sa.ForeignKeyConstraint(
            ["service_version_id"],
            ["catalog_service_version.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contract_id", "number"),
    )
    with op.batch_alter_table("contracts_contract_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contracts_contract_version_contract_id"), ["contract_id"], unique=False)

    op.create_table(
        "contracts_ocds_release",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("ocid", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("release_id", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("released_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts_contract.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("release_id"),
    )
    with op.batch_alter_table("contracts_ocds_release", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contracts_ocds_release_contract_id"), ["contract_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contracts_ocds_release_ocid"), ["ocid"], unique=False)
        batch_op.create_index(batch_op.f("ix_contracts_ocds_release_released_at"), ["released_at"], unique=False)

    op.create_table(
        "contracts_invoice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("amount_net", sa.Integer(), nullable=False),
        sa.Column("amount_vat", sa.Integer(), nullable=False),
        sa.Column("amount_total", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("payment_mode", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("stripe_invoice_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("stripe_status_at", sa.Integer(), nullable=True),
        sa.Column("paid_at", market.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["organisation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts_contract.id"],
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["organisation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["contracts_contract_version.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contract_id", "period"),
        sa.UniqueConstraint("number"),
        sa.UniqueConstraint("stripe_invoice_id"),
    )
    with op.batch_alter_table("contracts_invoice", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contracts_invoice_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contracts_invoice_contract_id"), ["contract_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contracts_invoice_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contracts_invoice_status"), ["status"], unique=False)

    op.create_table(
        "contracts_signature",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("side", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("signer_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("signer_role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("document_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_agent", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("signed_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts_contract.id"],
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["contracts_contract_version.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version_id", "side"),
    )
    with op.batch_alter_table("contracts_signature", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contracts_signature_contract_id"), ["contract_id"], unique=False)

    op.create_table(
        "contracts_payment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["contracts_invoice.id"],
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["user_account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("contracts_payment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contracts_payment_invoice_id"), ["invoice_id"], unique=False)

    # ### end Alembic commands ###


def downgrade() -> None:

    with op.batch_alter_table("contracts_payment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contracts_payment_invoice_id"))

    op.drop_table("contracts_payment")
    with op.batch_alter_table("contracts_signature", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contracts_signature_contract_id"))

    op.drop_table("contracts_signature")
    with op.batch_alter_table("contracts_invoice", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contracts_invoice_status"))
        batch_op.drop_index(batch_op.f("ix_contracts_invoice_provider_id"))
        batch_op.drop_index(batch_op.f("ix_contracts_invoice_contract_id"))
        batch_op.drop_index(batch_op.f("ix_contracts_invoice_agency_id"))

    op.drop_table("contracts_invoice")
    with op.batch_alter_table("contracts_ocds_release", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contracts_ocds_release_released_at"))
        batch_op.drop_index(batch_op.f("ix_contracts_ocds_release_ocid"))
        batch_op.drop_index(batch_op.f("ix_contracts_ocds_release_contract_id"))

    op.drop_table("contracts_ocds_release")
    with op.batch_alter_table("contracts_contract_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contracts_contract_version_contract_id"))

    op.drop_table("contracts_contract_version")
    with op.batch_alter_table("contracts_contract", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contracts_contract_updated_at"))
        batch_op.drop_index(batch_op.f("ix_contracts_contract_status"))
        batch_op.drop_index(batch_op.f("ix_contracts_contract_service_id"))
        batch_op.drop_index(batch_op.f("ix_contracts_contract_provider_id"))
        batch_op.drop_index(batch_op.f("ix_contracts_contract_agency_id"))

    op.drop_table("contracts_contract")
    op.drop_table("contracts_stripe_customer")
    with op.batch_alter_table("contracts_budget", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contracts_budget_agency_id"))

    op.drop_table("contracts_budget")
    op.drop_table("contracts_stripe_event")
    # ### end Alembic commands ###
