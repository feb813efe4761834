"""create shares

Revision ID: 7bef4a5e685b
Revises: 634dad6c50e0
Create Date: 2026-12-08 02:28:23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7bef4a5e685b"
down_revision: str | None = "634dad6c50e0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shares",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shares")),
    )
    op.create_index(op.f("ix_shares_owner_id"), "shares", ["owner_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_shares_owner_id"), table_name="shares")
    op.drop_table("shares")
