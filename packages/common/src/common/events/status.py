"""Where a service's events stand, for `make events`: what waits in its outbox, what its
consumer has not applied yet, what it gave up (dead letters). The same figures as the metrics
`outbox_backlog_events` and `events_consumer_lag_messages`, read from the source."""

import contextlib
from dataclasses import dataclass

import asyncpg
import nats
from nats.js.errors import NotFoundError

from common.events.broker import inbox_prefix
from common.events.listener import asyncpg_dsn
from common.events.tables import OUTBOX_TABLE

UNREACHABLE_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class EventFigures:
    """None where the figure does not apply (no outbox, no consumer) or could not be read."""

    service: str
    outbox_backlog: int | None
    consumer_lag: int | None
    dead_letters: int | None


async def event_figures(
    service: str,
    *,
    database_url: str,
    nats_url: str,
    stream: str,
    nats_user: str | None = None,
    nats_password: str | None = None,
) -> EventFigures:
    backlog = await outbox_backlog(database_url)
    lag = dead = None
    with contextlib.suppress(OSError, TimeoutError, nats.errors.Error):
        client = await nats.connect(
            nats_url,
            user=nats_user,
            password=nats_password,
            inbox_prefix=inbox_prefix(service),
            connect_timeout=UNREACHABLE_TIMEOUT_SECONDS,
            allow_reconnect=False,
        )
        try:
            js = client.jetstream()
            with contextlib.suppress(NotFoundError):
                info = await js.consumer_info(stream, service)
                lag = info.num_pending + info.num_ack_pending
                subject = f"{stream}.dead.{service}"
                found = await js.stream_info(stream, subjects_filter=subject)
                dead = sum((found.state.subjects or {}).values())
        finally:
            await client.close()
    return EventFigures(service, backlog, lag, dead)


async def outbox_backlog(database_url: str) -> int | None:
    """Events committed and not yet published; None for a database without an outbox."""
    connection = await asyncpg.connect(
        asyncpg_dsn(database_url), timeout=UNREACHABLE_TIMEOUT_SECONDS
    )
    try:
        if await connection.fetchval("SELECT to_regclass($1)", OUTBOX_TABLE) is None:
            return None
        count = await connection.fetchval(
            f"SELECT count(*) FROM {OUTBOX_TABLE} WHERE sent_at IS NULL"
        )
        return int(count)
    finally:
        await connection.close()


def figures_table(rows: list[EventFigures]) -> str:
    """The figures as `make events` prints them, `-` where one does not apply."""

    def cell(value: int | None) -> str:
        return "-" if value is None else str(value)

    lines = [f"{'service':<16}{'outbox backlog':>16}{'consumer lag':>14}{'dead letters':>14}"]
    for row in rows:
        lines.append(
            f"{row.service:<16}{cell(row.outbox_backlog):>16}"
            f"{cell(row.consumer_lag):>14}{cell(row.dead_letters):>14}"
        )
    return "\n".join(lines)
