from typing import Annotated, Literal

from pydantic import MISSING, BaseModel, ConfigDict, Field

# Postgres text cannot hold a NUL character: refused up front, as the schema says.
STORABLE = r"^[^\x00]*$"
# Not validated as an email: a malformed one is just another unknown account.
LoginName = Annotated[str, Field(min_length=1, max_length=320, pattern=STORABLE)]
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


class AccessToken(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class JsonWebKeySet(BaseModel):
    keys: list[dict[str, str]]
