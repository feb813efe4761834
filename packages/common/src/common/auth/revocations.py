"""Subjects whose tokens a service refuses before they expire: deactivated or deleted users.

The service that learns it (from an event) writes the subject to its `revoked_subjects` table
with `revoke()` and lifts it with `restore()`; both notify, in their transaction. Every process
of the service keeps the whole set in memory (`watching_revocations`), reloaded on each
notification, on commit, and every second should one be lost: `CurrentUser` checks a token's
subject against that set, with no query per request.
"""

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    Table,
    Uuid,
    column,
    delete,
    func,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from common.background import in_background
from common.events.listener import listening
from common.settings import AppBaseSettings
from common.tracing import untraced

logger = logging.getLogger("common.auth")

REVOCATIONS_TABLE = "revoked_subjects"
REVOCATIONS_CHANNEL = "revoked_subjects"
RELOAD_EVERY_SECONDS = 1.0

REVOKED = table(
    REVOCATIONS_TABLE, column("subject_id", Uuid), column("revoked_at", DateTime(timezone=True))
)


def add_revocations(metadata: MetaData) -> Table:
    return Table(
        REVOCATIONS_TABLE,
        metadata,
        Column("subject_id", Uuid, primary_key=True),
        Column("revoked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


async def revoke(session: AsyncSession, subject_id: uuid.UUID) -> None:
    """From this transaction's commit, the subject's tokens are refused (401)."""
    await session.execute(insert(REVOKED).values(subject_id=subject_id).on_conflict_do_nothing())
    await session.execute(text(f"NOTIFY {REVOCATIONS_CHANNEL}"))


async def restore(session: AsyncSession, subject_id: uuid.UUID) -> None:
    """From this transaction's commit, the subject's tokens are accepted again."""
    await session.execute(delete(REVOKED).where(REVOKED.c.subject_id == subject_id))
    await session.execute(text(f"NOTIFY {REVOCATIONS_CHANNEL}"))


class RevokedSubjects:
    """The revoked subjects, as last loaded."""

    def __init__(self) -> None:
        self.subjects: frozenset[uuid.UUID] = frozenset()

    def __contains__(self, subject: object) -> bool:
        return subject in self.subjects

    async def reload(self, engine: AsyncEngine) -> None:
        # A background poll, no request's work: never traced.
        with untraced():
            async with engine.connect() as connection:
                rows = await connection.scalars(select(REVOKED.c.subject_id))
                self.subjects = frozenset(rows)


@asynccontextmanager
async def watching_revocations(
    settings: AppBaseSettings, engine: AsyncEngine
) -> AsyncIterator[RevokedSubjects]:
    """The revoked subjects, kept current while the context lasts."""
    revoked = RevokedSubjects()
    # Loaded before the first request when the database answers; a service started while it
    # does not (its readiness says so) loads the set as soon as it does, within a second.
    await _reload(revoked, engine)
    async with in_background(_keep_current(settings, engine, revoked)):
        yield revoked


async def _keep_current(
    settings: AppBaseSettings, engine: AsyncEngine, revoked: RevokedSubjects
) -> None:
    async with listening(settings, REVOCATIONS_CHANNEL) as wakeup:
        while True:
            await wakeup.wait(RELOAD_EVERY_SECONDS)
            await _reload(revoked, engine)


async def _reload(revoked: RevokedSubjects, engine: AsyncEngine) -> None:
    try:
        await revoked.reload(engine)
    except Exception as exc:  # the database is away: keep the last set, try again
        logger.warning("revoked subjects not reloaded: %s", exc)
