import uuid

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from common.db import TimestampMixin, new_id
from sample_app.database import Base


class Widget(TimestampMixin, Base):
    # Checked at COMMIT, not at INSERT: lets tests make a commit fail after the endpoint returned.
    __table_args__ = (UniqueConstraint("code", deferrable=True, initially="DEFERRED"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(50))
    label: Mapped[str | None] = mapped_column(String(100))
