"""accounts trust: confirmed addresses, removed members, expiring API tokens, throttled account mail

`user_account.email_verified_at` is set once the link e-mailed at self-registration is opened; every user that
exists already is counted as confirmed (from its creation). `user_account.removed_at` marks a member an
administrator removed from the organisation. `api_token.expires_at` is required; tokens that exist already
expire 90 days after this migration. `email_verification` holds the single-use confirmation links (their
SHA-256 only); `account_mail` counts the messages sent about an account to an address, for throttling.

Revision ID: 0007_accounts_trust
Revises: 0006_search_speed
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import market.database
from market import clock

revision: str = "0007_accounts_trust"
down_revision: str | None = "0006_search_speed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXISTING_TOKEN_LIFETIME = timedelta(days=90)


def upgrade() -> None:
    op.create_table(
        "email_verification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", market.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("email_verification", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_email_verification_user_id"), ["user_id"], unique=False)

    op.create_table(
        "account_mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("at", market.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("account_mail", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_mail_email"), ["email"], unique=False)
        batch_op.create_index(batch_op.f("ix_account_mail_at"), ["at"], unique=False)

    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_verified_at", market.database.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("removed_at", market.database.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE user_account SET email_verified_at = created_at")

    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", market.database.UTCDateTime(timezone=True), nullable=True))
    api_token = sa.table("api_token", sa.column("expires_at", market.database.UTCDateTime(timezone=True)))
    op.execute(api_token.update().values(expires_at=clock.now() + EXISTING_TOKEN_LIFETIME))
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.alter_column("expires_at", existing_type=market.database.UTCDateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("removed_at")
        batch_op.drop_column("email_verified_at")
    with op.batch_alter_table("account_mail", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_mail_at"))
        batch_op.drop_index(batch_op.f("ix_account_mail_email"))
    op.drop_table("account_mail")
    with op.batch_alter_table("email_verification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_verification_user_id"))
    op.drop_table("email_verification")
