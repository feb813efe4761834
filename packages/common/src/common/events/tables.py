"""The outbox and the inbox: tables a service adds to its own metadata, so they join its own
Alembic history like its models.

    # things_svc/database.py
    class Base(CommonBase):
        __abstract__ = True
        metadata = new_metadata()

    add_inbox(Base.metadata)

`common` itself reads and writes them through `OUTBOX` and `INBOX`, which name the same tables
and columns without belonging to any metadata.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    String,
    Table,
    Uuid,
    column,
    func,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

OUTBOX_TABLE = "event_outbox"
INBOX_TABLE = "event_inbox"
# The channel an outbox insert notifies, in its transaction: the relay wakes on commit.
OUTBOX_CHANNEL = "event_outbox"


def add_outbox(metadata: MetaData) -> Table:
    """The outbox: events committed with the change they describe, published by the relay in
    `position` order and then marked `sent_at`."""
    return Table(
        OUTBOX_TABLE,
        metadata,
        Column("position", BigInteger, Identity(always=True), primary_key=True),
        Column("id", Uuid, nullable=False, unique=True),
        Column("type", String(200), nullable=False),
        Column("envelope", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True)),
        Index(
            "ix_event_outbox_pending",
            "position",
            postgresql_where=text("sent_at IS NULL"),
        ),
    )


def add_inbox(metadata: MetaData) -> Table:
    """The inbox: the id of every event this service applied, written in the transaction of
    the event's effect, so a redelivered event is recognised and applied once."""
    return Table(
        INBOX_TABLE,
        metadata,
        Column("event_id", Uuid, primary_key=True),
        Column("type", String(200), nullable=False),
        Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


OUTBOX = table(
    OUTBOX_TABLE,
    column("position", BigInteger),
    column("id", Uuid),
    column("type", String),
    column("envelope", JSONB),
    column("created_at", DateTime(timezone=True)),
    column("sent_at", DateTime(timezone=True)),
)
INBOX = table(
    INBOX_TABLE,
    column("event_id", Uuid),
    column("type", String),
    column("applied_at", DateTime(timezone=True)),
)
