import uuid

from sqlalchemy import CheckConstraint, String, false, true
from sqlalchemy.orm import Mapped, mapped_column

from common.db import TimestampMixin, new_id
from users_svc.database import Base


class User(TimestampMixin, Base):
    # Emails are stored lowercased, so the unique constraint is case-insensitive; the check
    # keeps that true even for rows written outside this code.
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lowercase"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    hashed_password: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Administrators. No request sets it: it is granted in the database (see the README).
    is_superuser: Mapped[bool] = mapped_column(default=False, server_default=false())
