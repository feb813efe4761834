"""Subjects whose tokens a service refuses before they expire: deactivated or deleted users.

A projection of account events. The handler that applies `user.deactivated` calls `revoke()`,
the one that applies `user.reactivated` calls `restore()`: each writes the service's
`revoked_subjects` table and notifies, in the event's transaction. Every process of the service
keeps the set in memory (`RevokedSubjects`, kept current by `keeping_revocations`): loaded whole
when it starts listening, then changed by each notification, and loaded whole again after a lost
connection. Behind PgBouncer, which cannot LISTEN, a one-row query each second tells when to load
it again. The token verifier checks a subject against the set: no query per request.

An erased subject (`user.deleted`) is more: `erase()` also records it in `erased_subjects`, which
`restore()` never undoes, and `refuse_erased_owners()` makes the service refuse, in the write's
own transaction, a row written for it. The set in memory lags the commit by a notification; the
write's check does not: a write and an erasure of one subject take one advisory lock (shared by
writes, exclusive for the erasure), so either the write commits first and the erasure deletes
its row, or the erasure commits first and the write sees it and is refused.

Rows are kept as long as they are useful: a revocation until the last token it could refuse has
expired (the issuer's longest access-token lifetime, `access_token_max_seconds`, plus the leeway,
after `revoked_at`: tokens are issued neither to deactivated nor to erased accounts), an erasure
a few minutes more, for a request whose token was checked just before it expired. Every process
prunes them in the background and notifies what it pruned; `REVOCATIONS_PRUNED` counts them.
"""

import asyncio
import contextlib
import logging
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from pydantic import Field
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Exists,
    MetaData,
    String,
    Table,
    Uuid,
    cast,
    column,
    delete,
    event,
    exists,
    func,
    literal,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, Mapper

from common.auth import InvalidTokenError, TokenSettings
from common.background import in_background, periodically, stopping
from common.events.listener import staying_connected
from common.metrics import REVOCATIONS_PRUNED
from common.settings import AppBaseSettings, Pooler, StartupError
from common.tracing import untraced

logger = logging.getLogger("common.events")

REVOCATIONS_TABLE = "revoked_subjects"
ERASURES_TABLE = "erased_subjects"
REVOCATIONS_CHANNEL = "revoked_subjects"
POLL_EVERY_SECONDS = 1.0
PRUNE_EVERY_SECONDS = 60.0
# How much longer than a revocation an erasure is kept: a request whose token was checked just
# before it expired may still be writing.
ERASURE_MARGIN_SECONDS = 300

REVOKED = table(
    REVOCATIONS_TABLE, column("subject_id", Uuid), column("revoked_at", DateTime(timezone=True))
)
ERASED = table(
    ERASURES_TABLE, column("subject_id", Uuid), column("erased_at", DateTime(timezone=True))
)
# The advisory locks of erasures: the two-key form, this first key, and 32 bits of the subject.
ERASURE_LOCKS = zlib.crc32(b"common.events.revocations.erasures") & 0x7FFFFFFF
# What changes whenever a row is added or removed (behind PgBouncer, instead of notifications).
FINGERPRINT = select(func.count(), func.max(REVOKED.c.revoked_at))


class RevocationSettings(TokenSettings):
    """How long a revocation stays useful: until the last token it could refuse expires."""

    access_token_max_seconds: int = Field(
        default=900,
        ge=1,
        description="The longest lifetime of the issuer's access tokens (users-svc caps its "
        "ACCESS_TOKEN_SECONDS at 900): a revocation is kept this long, plus the leeway",
    )


def add_revocations(metadata: MetaData) -> Table:
    return Table(
        REVOCATIONS_TABLE,
        metadata,
        Column("subject_id", Uuid, primary_key=True),
        Column("revoked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def add_erasures(metadata: MetaData) -> Table:
    return Table(
        ERASURES_TABLE,
        metadata,
        Column("subject_id", Uuid, primary_key=True),
        Column("erased_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


async def revoke(session: AsyncSession, subject_id: uuid.UUID) -> None:
    """From this transaction's commit, the subject's tokens are refused (401)."""
    await session.execute(insert(REVOKED).values(subject_id=subject_id).on_conflict_do_nothing())
    await _notify(session, f"revoke {subject_id}")


async def restore(session: AsyncSession, subject_id: uuid.UUID) -> None:
    """From this transaction's commit, the subject's tokens are accepted again, unless it was
    erased."""
    restored = await session.scalar(
        delete(REVOKED)
        .where(REVOKED.c.subject_id == subject_id, ~_erased(subject_id))
        .returning(REVOKED.c.subject_id)
    )
    if restored is not None:
        await _notify(session, f"restore {subject_id}")


async def erase(session: AsyncSession, subject_id: uuid.UUID) -> None:
    """Revoke the subject for good, and refuse its writes: once this returns, no write of its
    is in flight (they committed, so what the caller deletes next includes them), and from this
    transaction's commit every new one is refused."""
    await session.execute(select(func.pg_advisory_xact_lock(*_erasure_lock(subject_id))))
    await session.execute(insert(ERASED).values(subject_id=subject_id).on_conflict_do_nothing())
    await revoke(session, subject_id)


async def prune_revocations(engine: AsyncEngine, settings: RevocationSettings) -> None:
    """Forget the revocations and erasures no token can need any more; every process of the
    service is told, as by `restore`. Each pass counts its rows in `REVOCATIONS_PRUNED`."""
    kept = timedelta(seconds=settings.access_token_max_seconds + settings.token_leeway_seconds)
    async with engine.begin() as connection:
        pruned = (
            delete(REVOKED)
            .where(REVOKED.c.revoked_at < func.now() - kept)
            .returning(REVOKED.c.subject_id)
            .cte("pruned")
        )
        payload = literal("restore ") + cast(pruned.c.subject_id, String)
        revocations = len(
            (await connection.execute(select(func.pg_notify(REVOCATIONS_CHANNEL, payload)))).all()
        )
        margin = timedelta(seconds=ERASURE_MARGIN_SECONDS)
        erasures = (
            await connection.execute(
                delete(ERASED).where(ERASED.c.erased_at < func.now() - kept - margin)
            )
        ).rowcount
    REVOCATIONS_PRUNED.labels(table=REVOCATIONS_TABLE).inc(revocations)
    REVOCATIONS_PRUNED.labels(table=ERASURES_TABLE).inc(erasures)


def refuse_erased_owners(owner: InstrumentedAttribute[uuid.UUID]) -> None:
    """Refuse (401, as its token now is) to insert or update a row whose `owner` column names an
    erased subject, in the write's transaction: `refuse_erased_owners(Thing.owner_id)`."""

    def check(_mapper: Mapper[Any], connection: Connection, target: object) -> None:
        subject_id: uuid.UUID = getattr(target, owner.key)
        # Shared: writes of one subject do not wait for each other, only for its erasure.
        connection.execute(select(func.pg_advisory_xact_lock_shared(*_erasure_lock(subject_id))))
        # A statement of its own, so its snapshot includes an erasure committed while waiting.
        if connection.scalar(select(_erased(subject_id))):
            raise InvalidTokenError

    event.listen(owner.class_, "before_insert", check)
    event.listen(owner.class_, "before_update", check)


def _erased(subject_id: uuid.UUID) -> Exists:
    return exists().where(ERASED.c.subject_id == subject_id)


def _erasure_lock(subject_id: uuid.UUID) -> tuple[int, int]:
    # Two subjects may share a lock (one in 2^32): they then wait for each other, no more.
    return ERASURE_LOCKS, int.from_bytes(subject_id.bytes[-4:], signed=True)


async def _notify(session: AsyncSession, payload: str) -> None:
    await session.execute(select(func.pg_notify(REVOCATIONS_CHANNEL, payload)))


class RevokedSubjects:
    """The revoked subjects, as this process knows them: `subject in revoked`."""

    def __init__(self) -> None:
        self._subjects: set[uuid.UUID] = set()
        # Notifications that arrive while the table is being loaded, applied after it.
        self._held: list[str] | None = None

    def __contains__(self, subject: object) -> bool:
        return subject in self._subjects

    def notified(self, *notification: Any) -> None:
        """A listener's callback: the payload (`revoke <uuid>`, `restore <uuid>`) comes last."""
        payload: str = notification[-1]
        if self._held is not None:
            self._held.append(payload)
        else:
            self._apply(payload)

    async def load(self, engine: AsyncEngine) -> None:
        """The whole table, and whatever was notified while it was read."""
        self._held = []
        try:
            async with engine.connect() as connection:
                subjects = set(await connection.scalars(select(REVOKED.c.subject_id)))
            self._subjects, held = subjects, self._held
            for payload in held:
                self._apply(payload)
        finally:
            self._held = None

    def _apply(self, payload: str) -> None:
        action, _, subject = payload.partition(" ")
        try:
            subject_id = uuid.UUID(subject)
        except ValueError:
            logger.warning("revocation notification not understood: %r", payload)
            return
        if action == "revoke":
            self._subjects.add(subject_id)
        elif action == "restore":
            self._subjects.discard(subject_id)


@asynccontextmanager
async def keeping_revocations(
    settings: AppBaseSettings, engine: AsyncEngine, revoked: RevokedSubjects
) -> AsyncIterator[None]:
    """`revoked` kept current while the context lasts; loaded before the first request when the
    database answers (a service started while it does not, as its readiness says, loads the set
    as soon as it does). The rows no token needs any more are pruned meanwhile."""
    if not isinstance(settings, RevocationSettings):
        raise StartupError(
            f"{settings.service_name} keeps revocations: its settings must build on "
            "RevocationSettings"
        )

    async def prune() -> None:
        with untraced():
            await prune_revocations(engine, settings)

    with _logged_failure(), untraced():
        await revoked.load(engine)
    async with (
        in_background(_keep_current(settings, engine, revoked), name="revocations"),
        in_background(periodically(prune, every_seconds=PRUNE_EVERY_SECONDS), name="pruning"),
    ):
        yield


async def _keep_current(
    settings: AppBaseSettings, engine: AsyncEngine, revoked: RevokedSubjects
) -> None:
    if settings.db_pooler is not Pooler.PGBOUNCER:

        async def caught_up() -> None:
            await revoked.load(engine)

        await staying_connected(
            settings, REVOCATIONS_CHANNEL, notified=revoked.notified, connected=caught_up
        )
        return
    seen = None
    while not stopping():
        with _logged_failure(), untraced():
            async with engine.connect() as connection:
                fingerprint = (await connection.execute(FINGERPRINT)).one()
            if fingerprint != seen:
                await revoked.load(engine)
                seen = fingerprint
        await asyncio.sleep(POLL_EVERY_SECONDS)


@contextlib.contextmanager
def _logged_failure() -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # the database is away: keep the last set, try again
        logger.warning("revoked subjects not loaded: %s", exc)
