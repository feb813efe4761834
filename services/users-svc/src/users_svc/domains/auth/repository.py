"""The login-failure counters: one row per account key and per client key, in a window."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from users_svc.domains.auth.models import LoginFailures

# Counters are stamped with the database's clock, the one every replica shares; clock_timestamp,
# not now(), which stands still for a whole transaction.
DATABASE_NOW = func.clock_timestamp()
# Expired counters a failed login deletes on its way: enough to keep up with any rate of them.
PURGE_BATCH = 100

CounterKey = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class Counter:
    scope: str
    failures: int
    seconds_left: float


async def live_counters(session: AsyncSession, keys: Sequence[CounterKey]) -> list[Counter]:
    """The counters of these keys whose window has not ended."""
    statement = select(
        LoginFailures.scope,
        LoginFailures.failures,
        LoginFailures.window_ends_at,
        DATABASE_NOW,
    ).where(
        tuple_(LoginFailures.scope, LoginFailures.key).in_(keys),
        LoginFailures.window_ends_at > DATABASE_NOW,
    )
    return [
        Counter(scope, failures, _seconds_between(now, ends))
        for scope, failures, ends, now in (await session.execute(statement)).all()
    ]


async def count_failure(
    session: AsyncSession, keys: Sequence[CounterKey], *, window: timedelta
) -> None:
    """One more failure for each key; a counter whose window has ended starts a new one."""
    statement = insert(LoginFailures).values(
        [
            {"scope": scope, "key": key, "failures": 1, "window_ends_at": DATABASE_NOW + window}
            for scope, key in keys
        ]
    )
    ended = LoginFailures.window_ends_at <= DATABASE_NOW
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[LoginFailures.scope, LoginFailures.key],
            set_={
                "failures": case((ended, 1), else_=LoginFailures.failures + 1),
                "window_ends_at": case(
                    (ended, statement.excluded.window_ends_at), else_=LoginFailures.window_ends_at
                ),
            },
        )
    )


async def forget(session: AsyncSession, key: CounterKey) -> None:
    scope, value = key
    await session.execute(
        delete(LoginFailures).where(LoginFailures.scope == scope, LoginFailures.key == value)
    )


async def purge_ended(session: AsyncSession) -> None:
    """Delete a batch of counters whose window has ended."""
    ended = LoginFailures.window_ends_at <= DATABASE_NOW
    batch = select(LoginFailures.scope, LoginFailures.key).where(ended).limit(PURGE_BATCH)
    # `ended` again on the row itself: a counter a concurrent failure has just restarted stays.
    await session.execute(
        delete(LoginFailures).where(
            ended, tuple_(LoginFailures.scope, LoginFailures.key).in_(batch)
        )
    )


def _seconds_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()
