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
        sa.Column("thing_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["thing_id"],
            ["things.id"],
            name=op.f("fk_shares_thing_id_things"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("thing_id", "user_id", name=op.f("pk_shares")),
    )
    op.create_index(op.f("ix_shares_user_id"), "shares", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_shares_user_id"), table_name="shares")
    op.drop_table("shares")
