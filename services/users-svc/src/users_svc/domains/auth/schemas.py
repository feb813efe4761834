from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import MISSING, BaseModel, ConfigDict, Field

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


class PasswordForm(BaseModel):
    """OAuth2's password grant (RFC 6749, 4.3.2), form-encoded: `username` is the email.

    `scope`, `client_id` and `client_secret` are accepted, as OAuth2 clients send them, and
    ignored: there are no scopes and no registered clients.
    """

    model_config = ConfigDict(extra="forbid")

    grant_type: Literal["password"] | MISSING = MISSING
    username: LoginName
    password: LoginPassword
    scope: Annotated[str, Field(max_length=1000)] | MISSING = MISSING
    client_id: Annotated[str, Field(max_length=200)] | MISSING = MISSING
    client_secret: Annotated[str, Field(max_length=200)] | MISSING = MISSING


class Tokens(BaseModel):
    """A new access token, and the refresh token that renews it (once: each use rotates it)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    # Seconds the access token is valid for.
    expires_in: int
    refresh_token: str
    # Seconds until the session ends, however often it is refreshed.
    refresh_expires_in: int


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
