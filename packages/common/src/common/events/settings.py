"""What a service that publishes or consumes events is configured with."""

from typing import ClassVar, Self

from pydantic import Field, SecretStr, model_validator

from common.settings import PLACEHOLDER_SECRETS, AppBaseSettings, SettingsError


class EventSettings(AppBaseSettings):
    """The broker, the stream and how hard a consumer tries before it gives an event up.

    Without `nats_url` the service neither relays nor consumes: its outbox keeps the events it
    writes, and they leave once a broker is configured.
    """

    # NATS decides who may publish which event by the user a service connects as
    # (docs/events.md: security): production never connects anonymously.
    required_in_production: ClassVar[tuple[str, ...]] = ("nats_url", "nats_user", "nats_password")

    nats_url: str | None = Field(
        # `make up`'s broker; 4223, so a NATS of the machine's own on 4222 stays out of the way.
        default="nats://127.0.0.1:4223",
        description="The NATS server (JetStream on); empty: events stay in the outbox",
    )
    nats_user: str | None = Field(
        default=None,
        description="The service's NATS user, whose permissions say what it may publish "
        "and consume; empty: anonymous (a server without authorization)",
    )
    nats_password: SecretStr | None = Field(
        default=None, description="The NATS user's password (`make up` generates its own)"
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

    @model_validator(mode="after")
    def _refuse_a_placeholder_nats_password(self) -> Self:
        password = None if self.nats_password is None else self.nats_password.get_secret_value()
        if (
            self.is_production
            and password is not None
            and (password.lower() in PLACEHOLDER_SECRETS or password == self.nats_user)
        ):
            raise SettingsError(
                f"unsafe settings: {self._env_name('nats_password')} is empty or a placeholder"
            )
        return self
