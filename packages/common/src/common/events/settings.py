"""What a service that publishes or consumes events is configured with."""

from typing import ClassVar

from pydantic import Field

from common.settings import AppBaseSettings


class EventSettings(AppBaseSettings):
    """The broker, the stream and how hard a consumer tries before it gives an event up.

    Without `nats_url` the service neither relays nor consumes: its outbox keeps the events it
    writes, and they leave once a broker is configured.
    """

    required_in_production: ClassVar[tuple[str, ...]] = ("nats_url",)

    nats_url: str | None = Field(
        # `make up`'s broker; 4223, so a NATS of the machine's own on 4222 stays out of the way.
        default="nats://127.0.0.1:4223",
        description="The NATS server (JetStream on); empty: events stay in the outbox",
    )
    events_stream: str = Field(
        default="events",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The JetStream stream of every event, on subjects <stream>.<type>",
    )
    events_poll_seconds: float = Field(
        default=1.0, gt=0, description="The relay's fallback poll, should a notification be lost"
    )
    events_max_deliver: int = Field(
        default=5, ge=1, description="Deliveries of an event before it goes to dead letters"
    )
    events_ack_wait_seconds: float = Field(
        default=30.0, gt=0, description="Redelivery after a consumer died holding an event"
    )
    events_backoff_seconds: float = Field(
        default=0.1, gt=0, description="First retry delay of a failed event, doubled each time"
    )
