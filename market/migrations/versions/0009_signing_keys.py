"""signing keys: passkeys and API signing keys, single-use signing nonces, a signature's evidence, and the
organisation's choice whether its members may still sign by re-entering their password

Revision ID: 0009_signing_keys
Revises: 0008_authority
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import market.database

revision: str = "0009_signing_keys"
down_revision: str | None = "0008_authority"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signing_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("credential_id", sqlmodel.sql.sqltypes.AutoString(length=1400), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("algorithm", sa.Integer(), nullable=False),
        sa.Column("sign_count", sa.Integer(), nullable=False),
        sa.Column("created_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", market.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("removed_at", market.database.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("signing_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signing_key_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_signing_key_credential_id"), ["credential_id"], unique=False)

    op.create_table(
        "signing_nonce",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nonce", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("expires_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", market.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("nonce"),
    )
    with op.batch_alter_table("signing_nonce", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signing_nonce_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_signing", sa.Boolean(), server_default=sa.true(), nullable=False))

    with op.batch_alter_table("contracts_signature", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=16), server_default="password", nullable=False)
        )
        batch_op.add_column(sa.Column("signing_key_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("payload", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("evidence", sa.JSON(), nullable=True))
        batch_op.create_foreign_key("fk_contracts_signature_signing_key_id", "signing_key", ["signing_key_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("contracts_signature", schema=None) as batch_op:
        batch_op.drop_constraint("fk_contracts_signature_signing_key_id", type_="foreignkey")
        batch_op.drop_column("evidence")
        batch_op.drop_column("payload")
        batch_op.drop_column("signing_key_id")
        batch_op.drop_column("method")

    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.drop_column("password_signing")

    with op.batch_alter_table("signing_nonce", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signing_nonce_user_id"))
    op.drop_table("signing_nonce")

    with op.batch_alter_table("signing_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signing_key_credential_id"))
        batch_op.drop_index(batch_op.f("ix_signing_key_user_id"))
    op.drop_table("signing_key")
