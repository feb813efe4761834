from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Not validated as an email: a malformed one is just another unknown account.
    email: Annotated[str, Field(max_length=320)]
    password: Annotated[str, Field(max_length=128)]


class AccessToken(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class JsonWebKeySet(BaseModel):
    keys: list[dict[str, str]]
