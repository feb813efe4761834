"""The envelope every event travels in: versioned, and the same JSON in the outbox and on NATS.

Its JSON schema is committed (`packages/common/events.schema.json`) and checked for drift like
the services' OpenAPI documents (`make event-schema`, `make openapi`: tools/generated_files.py).
"""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from common.db import new_id
from common.request_id import current_request_id
from common.tracing import event_headers

# The header JetStream de-duplicates on, within the stream's duplicate window.
MESSAGE_ID_HEADER = "Nats-Msg-Id"


class Event(BaseModel):
    """One fact a service tells the others: `type` says what happened to `subject_id`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID = Field(
        default_factory=new_id, description="Unique; the JetStream message id, the inbox key"
    )
    type: str = Field(
        pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$",
        description="What happened, `<entity>.<past tense>`: `user.deactivated`",
    )
    version: int = Field(default=1, ge=1, description="The version of `data`'s shape for `type`")
    occurred_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), description="When it happened (UTC)"
    )
    subject_id: uuid.UUID = Field(
        description="Whom it happened to; events of one subject are applied in order"
    )
    data: dict[str, Any] = Field(default_factory=dict, description="The type's own fields")
    request_id: str | None = Field(
        default_factory=current_request_id, description="The request that caused it, for logs"
    )
    trace_context: dict[str, str] = Field(
        default_factory=event_headers,
        description="W3C trace context (`traceparent`, `tracestate`) of the producing request",
    )

    def subject(self, stream: str) -> str:
        """The NATS subject it is published on: `<stream>.<type>`."""
        return f"{stream}.{self.type}"


def event_schema() -> dict[str, Any]:
    """The envelope's JSON schema."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "events.schema.json",
        **Event.model_json_schema(),
    }


def event_schema_document() -> str:
    """The envelope's JSON schema as committed in `packages/common/events.schema.json`."""
    return json.dumps(event_schema(), indent=2, sort_keys=True) + "\n"
