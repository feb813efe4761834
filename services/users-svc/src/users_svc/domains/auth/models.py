from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from users_svc.database import Base

ACCOUNT = "account"
CLIENT = "client"


class LoginFailures(Base):
    """Failed logins of one account or one client address in the current window.

    Keyed by a SHA-256 of the email tried (whether an account has it or not) or of the client's
    address, never the value itself; a row outlives its window only until the pruner's next run
    (`auth.service.pruning_counters`).
    """

    __tablename__ = "login_failures"
    __table_args__ = (CheckConstraint(f"scope IN ('{ACCOUNT}', '{CLIENT}')", name="scope"),)

    scope: Mapped[str] = mapped_column(String(7), primary_key=True)
    key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_ends_at: Mapped[datetime] = mapped_column(index=True)


class SignUps(Base):
    """Sign-ups from one client address in the current window, keyed by a SHA-256 of the
    address; pruned like the login failures once the window has ended."""

    __tablename__ = "sign_ups"

    key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    sign_ups: Mapped[int] = mapped_column(Integer)
    window_ends_at: Mapped[datetime] = mapped_column(index=True)
