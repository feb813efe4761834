import uuid
from datetime import datetime
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import MISSING, AfterValidator, BaseModel, ConfigDict, Field

from common.schemas import StorableText
from users_svc.passwords import is_common


def _valid_email(value: str) -> str:
    """The address, lowercased, if it has the syntax of an email address.

    An email names an account here; nothing writes to it. So every address of the syntax the
    OpenAPI `format: email` promises is taken, reserved test domains and dotless ones included,
    and deliverability is not checked (no DNS).
    """
    try:
        address = validate_email(
            value, check_deliverability=False, test_environment=True, globally_deliverable=False
        )
    except EmailNotValidError as exc:
        raise ValueError(f"value is not a valid email address: {exc}") from None
    return address.normalized.lower()


# RFC 5321 caps a path at 256 octets, the address at 254 of them.
Email = Annotated[
    str, Field(max_length=254, json_schema_extra={"format": "email"}), AfterValidator(_valid_email)
]
FullName = Annotated[StorableText, Field(min_length=1, max_length=200)]


def _not_common(password: str) -> str:
    # NIST 800-63B, 5.1.1.2: a password attackers try first is refused, and the answer says why.
    if is_common(password):
        raise ValueError("this password is too common: it is one of the most used passwords")
    return password


# A new password. Lengths count characters before NFKC normalisation (passwords.py).
Password = Annotated[str, Field(min_length=8, max_length=128), AfterValidator(_not_common)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    full_name: FullName
    password: Password


class UserUpdate(BaseModel):
    """Fields to change; omitted fields stay as they are. The password has its own operation.

    A field may be omitted but not null: `MISSING` keeps null out of the schema as well.
    """

    model_config = ConfigDict(extra="forbid")

    email: Email | MISSING = MISSING
    full_name: FullName | MISSING = MISSING


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: Annotated[str, Field(max_length=128)]
    new_password: Password


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    is_active: bool
    is_superuser: bool
    created_at: datetime
    updated_at: datetime


class UserLookup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email


class UserReference(BaseModel):
    """What another service may know of an account it looked up by email."""

    id: uuid.UUID
    # Active: things can be shared with it. Deactivated accounts are found, but not shareable.
    shareable: bool


class AccountErasure(BaseModel):
    """The current password, so that a borrowed access token cannot erase an account."""

    model_config = ConfigDict(extra="forbid")

    password: Annotated[str, Field(max_length=128)]


class SessionRead(BaseModel):
    """A session one login started, renewed by its refresh token until `expires_at`."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    refreshed_at: datetime
    expires_at: datetime
    user_agent: str | None
