"""Events between services: a transactional outbox relayed to NATS JetStream, and consumers
that apply each event once (docs/events.md).

A producer calls `publish(session, Event(...))` in its request's transaction; its app, made with
`create_app(..., events=Events(relay=True))`, relays the outbox. A consumer gives `create_app`
`Events(handlers=[Handler("user.deactivated", apply), ...])`. Each adds the tables it needs to
its own metadata (`add_outbox`, `add_inbox`), so its Alembic history creates them.
"""

from common.events.consumer import ApplyEvent, Handler
from common.events.envelope import Event, event_schema, event_schema_document
from common.events.lifespan import Events
from common.events.outbox import publish
from common.events.settings import EventSettings
from common.events.tables import add_inbox, add_outbox

__all__ = [
    "ApplyEvent",
    "Event",
    "EventSettings",
    "Events",
    "Handler",
    "add_inbox",
    "add_outbox",
    "event_schema",
    "event_schema_document",
    "publish",
]
