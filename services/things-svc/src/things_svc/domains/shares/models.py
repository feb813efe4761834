import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, func
from sqlalchemy.orm import Mapped, mapped_column

from things_svc.database import Base


class Share(Base):
    """A thing its owner lets another user read."""

    __tablename__ = "shares"

    # Deleting the thing deletes its shares.
    thing_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("things.id", ondelete="CASCADE"), primary_key=True
    )
    # A user of users-svc, found by email through its lookup. No foreign key: that table lives in
    # another service's database; the user's erasure (`user.deleted`) deletes its shares.
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
