"""password lock and sign-ups

Revision ID: 9a4c2e7b1d3f
Revises: 5e1f0c2a9b7d
Create Date: 2026-12-08 01:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9a4c2e7b1d3f"
down_revision: str | None = "5e1f0c2a9b7d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "-- squawk-ignore-file prefer-bigint-over-int -- users.failed_password_checks stops at "
        "the lock (100 by default) and sign_ups.sign_ups counts one window's sign-ups of one "
        "client: neither nears 2^31"
    )
    # A constant default: Postgres 11 and later add the column without rewriting the table.
    op.add_column(
        "users",
        sa.Column(
            "failed_password_checks", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
    )
    op.create_table(
        "sign_ups",
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sign_ups", sa.Integer(), nullable=False),
        sa.Column("window_ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sign_ups")),
    )
    op.create_index(
        op.f("ix_sign_ups_window_ends_at"), "sign_ups", ["window_ends_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sign_ups_window_ends_at"), table_name="sign_ups")
    op.drop_table("sign_ups")
    op.drop_column("users", "failed_password_checks")
