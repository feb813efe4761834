import uuid
from datetime import datetime
from typing import Annotated

from pydantic import MISSING, BaseModel, ConfigDict, Field

from common.schemas import StorableText

Name = Annotated[StorableText, Field(min_length=1, max_length=200)]
Description = Annotated[StorableText, Field(max_length=10_000)]


class ShareCreate(BaseModel):
    """A new share.

    Its owner is the signed-in user; any other field is refused.
    """

    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description | None = None


class ShareUpdate(BaseModel):
    """Fields to change; omitted fields stay as they are, a null description clears it.

    The name may be omitted but not null: `MISSING` keeps null out of the schema as well.
    """

    model_config = ConfigDict(extra="forbid")

    name: Name | MISSING = MISSING
    description: Description | None = None


class ShareRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime
