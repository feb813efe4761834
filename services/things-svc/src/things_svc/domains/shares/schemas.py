import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from common.schemas import StorableText


class ShareCreate(BaseModel):
    """Whom to share a thing with: their account's email (users-svc checks it)."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[StorableText, Field(min_length=3, max_length=320)]


class ShareRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    thing_id: uuid.UUID
    user_id: uuid.UUID
    created_at: datetime
