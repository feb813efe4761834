import uuid

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import TimestampMixin, new_id
from things_svc.database import Base


class Share(TimestampMixin, Base):
    __tablename__ = "shares"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # A user of users-svc. No foreign key: that table lives in another service's database.
    owner_id: Mapped[uuid.UUID] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
