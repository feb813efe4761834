"""event inbox and revoked subjects

Revision ID: 8d2b6a41c0e3
Revises: 9c9b1464be04
Create Date: 2026-12-02 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8d2b6a41c0e3"
down_revision: str | None = "9c9b1464be04"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_inbox",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column(
            "applied_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_event_inbox")),
    )
    op.create_table(
        "revoked_subjects",
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column(
            "revoked_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("subject_id", name=op.f("pk_revoked_subjects")),
    )


def downgrade() -> None:
    op.drop_table("revoked_subjects")
    op.drop_table("event_inbox")
