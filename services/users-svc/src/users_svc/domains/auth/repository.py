"""The throttling counters: failed password checks per account key and per client key, and
sign-ups per client key, each in a window."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from users_svc.domains.auth.models import LoginFailures, SignUps

# Counters are stamped with the database's clock, the one every replica shares; clock_timestamp,
# not now(), which stands still for a whole transaction.
DATABASE_NOW = func.clock_timestamp()
CounterKey = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class Counter:
    scope: str
    count: int
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


async def live_sign_ups(session: AsyncSession, key: bytes) -> Counter | None:
    """The sign-up counter of this client key, if its window has not ended."""
    statement = select(SignUps.sign_ups, SignUps.window_ends_at, DATABASE_NOW).where(
        SignUps.key == key, SignUps.window_ends_at > DATABASE_NOW
    )
    row = (await session.execute(statement)).one_or_none()
    if row is None:
        return None
    sign_ups, ends, now = row
    return Counter("sign_up", sign_ups, _seconds_between(now, ends))


async def count_sign_up(session: AsyncSession, key: bytes, *, window: timedelta) -> Counter:
    """One more sign-up for this client key, and its count in the window, in one statement: two
    sign-ups at once are both counted."""
    statement = insert(SignUps).values(key=key, sign_ups=1, window_ends_at=DATABASE_NOW + window)
    ended = SignUps.window_ends_at <= DATABASE_NOW
    counted = statement.on_conflict_do_update(
        index_elements=[SignUps.key],
        set_={
            "sign_ups": case((ended, 1), else_=SignUps.sign_ups + 1),
            "window_ends_at": case(
                (ended, statement.excluded.window_ends_at), else_=SignUps.window_ends_at
            ),
        },
    ).returning(SignUps.sign_ups, SignUps.window_ends_at, DATABASE_NOW)
    sign_ups, ends, now = (await session.execute(counted)).one()
    return Counter("sign_up", sign_ups, _seconds_between(now, ends))


async def prune_ended(session: AsyncSession) -> dict[str, int]:
    """Delete the counters whose window has ended; how many, by table."""
    pruned = {}
    for table in (LoginFailures, SignUps):
        deleted = await session.execute(
            delete(table).where(table.window_ends_at <= DATABASE_NOW).returning(table.key)
        )
        pruned[table.__tablename__] = len(deleted.all())
    return pruned


def _seconds_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()
