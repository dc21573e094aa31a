"""authority inside an organisation: roles by kind, signing limits, approval threshold and approvals

Agencies' members become buyers, signers or administrators; providers' signers or administrators; committee and
operator members keep `member`. Existing data: an agency's `member` becomes a buyer (it drafted, it does not sign
any more), a provider's `member` a signer (it signed, and still does); open invitations alike. Every signing limit
starts at 0: after the upgrade an agency's administrators appoint its signers and set their limits (an
administrator signs only within a limit another administrator gives them). No agency has an approval threshold
until its administrator sets one.

Revision ID: 0008_authority
Revises: 0007_accounts_trust
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import market.database

revision: str = "0008_authority"
down_revision: str | None = "0007_accounts_trust"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RENAMED = (("agency", "member", "buyer"), ("provider", "member", "signer"))


def _rename_roles() -> None:
    for table in ("user_account", "invitation"):
        for kind, before, after in RENAMED:
            op.execute(
                sa.text(
                    f"UPDATE {table} SET role = :after WHERE role = :before "
                    "AND organisation_id IN (SELECT id FROM organisation WHERE kind = :kind)"
                ).bindparams(after=after, before=before, kind=kind)
            )


def upgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signing_limit", sa.BigInteger(), nullable=False, server_default="0"))
    _rename_roles()

    with op.batch_alter_table("contracts_contract_version", schema=None) as batch_op:
        batch_op.add_column(sa.Column("edited_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("approved_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("approved_by_role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column("approved_at", market.database.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            "fk_contracts_contract_version_edited_by_id_user_account", "user_account", ["edited_by_id"], ["id"]
        )
        batch_op.create_foreign_key(
            "fk_contracts_contract_version_approved_by_id_user_account", "user_account", ["approved_by_id"], ["id"]
        )

    op.create_table(
        "contracts_approval_threshold",
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["updated_by_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("agency_id"),
    )


def downgrade() -> None:
    op.drop_table("contracts_approval_threshold")
    with op.batch_alter_table("contracts_contract_version", schema=None) as batch_op:
        batch_op.drop_constraint("fk_contracts_contract_version_approved_by_id_user_account", type_="foreignkey")
        batch_op.drop_constraint("fk_contracts_contract_version_edited_by_id_user_account", type_="foreignkey")
        batch_op.drop_column("approved_at")
        batch_op.drop_column("approved_by_role")
        batch_op.drop_column("approved_by_id")
        batch_op.drop_column("edited_by_id")
    # an agency's signers and a provider's signers were members before; administrators stay administrators
    for table in ("user_account", "invitation"):
        op.execute(sa.text(f"UPDATE {table} SET role = 'member' WHERE role IN ('buyer', 'signer')"))
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("signing_limit")
