"""erased subjects

Revision ID: 634dad6c50e0
Revises: 8d2b6a41c0e3
Create Date: 2026-12-08 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "634dad6c50e0"
down_revision: str | None = "8d2b6a41c0e3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erased_subjects",
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column(
            "erased_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("subject_id", name=op.f("pk_erased_subjects")),
    )


def downgrade() -> None:
    op.drop_table("erased_subjects")
