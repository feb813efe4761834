from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import MISSING, BaseModel, ConfigDict, Field, model_validator

from common.schemas import StorableText

# What of a client's User-Agent its session keeps.
USER_AGENT_LENGTH = 200

# Not validated as an email: a malformed one is just another unknown account.
LoginName = Annotated[StorableText, Field(min_length=1, max_length=320)]
LoginPassword = Annotated[str, Field(min_length=1, max_length=128)]


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: LoginName
    password: LoginPassword


class TokenForm(BaseModel):
    """OAuth2's token request (RFC 6749), form-encoded, for one of two grants:

    - `password` (4.3.2, the default): a user's `username` (the email) and `password`; what the
      docs' Authorize button sends. `scope`, `client_id` and `client_secret` are ignored.
    - `client_credentials` (4.4.2): a service, authenticated with HTTP Basic (its client id and
      secret) or with `client_id` and `client_secret`; `scope` is what it asks for
      (space-separated), by default every scope it is granted.
    """

    model_config = ConfigDict(extra="forbid")

    grant_type: Literal["password", "client_credentials"] = "password"
    username: LoginName | MISSING = MISSING
    password: LoginPassword | MISSING = MISSING
    scope: Annotated[str, Field(max_length=1000)] | MISSING = MISSING
    client_id: Annotated[str, Field(max_length=200)] | MISSING = MISSING
    client_secret: Annotated[str, Field(max_length=200)] | MISSING = MISSING

    @model_validator(mode="after")
    def password_grant_names_the_user(self) -> "TokenForm":
        if self.grant_type == "password" and (self.username is MISSING or self.password is MISSING):
            raise ValueError("the password grant needs `username` and `password`")
        return self


class Tokens(BaseModel):
    """A new access token, and the refresh token that renews it (once: each use rotates it)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    # Seconds the access token is valid for.
    expires_in: int
    refresh_token: str
    # Seconds until the session ends, however often it is refreshed.
    refresh_expires_in: int


class ServiceToken(BaseModel):
    """A service's access token. No refresh token: the service asks again (RFC 6749, 4.4.3)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    # Seconds the access token is valid for.
    expires_in: int
    # The scopes granted, space-separated.
    scope: str


class RefreshTokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[str, Field(min_length=1, max_length=200)]


class JsonWebKeySet(BaseModel):
    keys: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class Client:
    """The client logging in, as far as its request says."""

    # The address failures are counted for: an IPv4 address, or the /64 of an IPv6 one.
    address: str
    user_agent: str | None
