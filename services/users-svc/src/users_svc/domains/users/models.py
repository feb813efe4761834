import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String, false, func, text, true
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
    # Wrong passwords since the last right one, across every throttling window: at
    # USERS_PASSWORD_FAILURES_BEFORE_LOCK the account is locked until an administrator unlocks it.
    failed_password_checks: Mapped[int] = mapped_column(default=0, server_default=text("0"))


class LoginSession(Base):
    """What one login started: the refresh token that renews its access tokens.

    Only the SHA-256 of the current refresh token is kept, and of the one it replaced: the token
    names its session, so the replaced token sent again is recognised as reused, while a token
    with a made-up secret is only refused. Ending a session deletes its row;
    deleting the account deletes its sessions (the foreign key cascades).
    """

    __tablename__ = "login_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    previous_token_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    refreshed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # However often it is refreshed, the session ends here.
    expires_at: Mapped[datetime]
    # What the client said it was at login, so its owner can tell sessions apart.
    user_agent: Mapped[str | None] = mapped_column(String(200))
