import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

Name = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=10_000)]


class ThingCreate(BaseModel):
    """A new thing.

    Its owner is the signed-in user; any other field is refused.
    """

    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description | None = None


class ThingUpdate(BaseModel):
    """Fields to change; omitted fields stay as they are, a null description clears it."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: Description | None = None

    @field_validator("name")
    @classmethod
    def _not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("may be omitted, but not null")
        return value


class ThingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime
