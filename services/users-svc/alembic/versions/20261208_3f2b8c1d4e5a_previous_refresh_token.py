"""login sessions remember their previous refresh token

Revision ID: 3f2b8c1d4e5a
Revises: 9a4c2e7b1d3f
Create Date: 2026-12-08 02:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f2b8c1d4e5a"
down_revision: str | None = "9a4c2e7b1d3f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "login_sessions",
        sa.Column("previous_token_hash", sa.LargeBinary(length=32), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("login_sessions", "previous_token_hash")
