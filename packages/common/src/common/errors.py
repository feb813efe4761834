"""What can go wrong, as a client reads it: the RFC 9457 problem document, the errors domains
raise on purpose (each carrying its HTTP status), and which database errors mean the database is
unavailable rather than the request at fault.

`common.handlers` answers them; `common.openapi` documents them.
"""

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

PROBLEM_MEDIA_TYPE = "application/problem+json"

# SQLSTATE classes of integrity errors, and how a client should read them.
UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATION = "23503"
NOT_NULL_VIOLATION = "23502"
CHECK_VIOLATION = "23514"
# Class 22, data exception: a value Postgres cannot store or compare (a NUL character in text,
# a number out of range). The client sent it, so it is the client's error.
DATA_EXCEPTION_CLASS = "22"
# The statement ran past `statement_timeout`, or waited past `lock_timeout`: the database is too
# busy to answer this request in time, which is worth retrying, not a bug.
QUERY_CANCELED = "57014"
LOCK_NOT_AVAILABLE = "55P03"


# RFC 9110's names, where Python 3.11's HTTPStatus phrases predate them.
TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


def title_of(status: int) -> str:
    """A problem's title: the name HTTP gives its status."""
    return TITLES.get(status) or HTTPStatus(status).phrase


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


class DomainError(Exception):
    """An error a domain raises on purpose. Its class decides the HTTP status, and says what
    went wrong in `detail` unless the raise says it: `raise EmailTakenError()`."""

    status_code: ClassVar[int] = 400
    headers: ClassVar[Mapping[str, str] | None] = None
    detail: str = "The request cannot be carried out."

    def __init__(self, detail: str | None = None) -> None:
        if detail is not None:
            self.detail = detail
        super().__init__(self.detail)

    def response_headers(self) -> dict[str, str] | None:
        """The headers of the answer: the class's, and whatever this instance adds."""
        return dict(self.headers) if self.headers else None


class RetryLaterError(DomainError):
    """A refusal for now, not for good: `Retry-After` tells the client when to try again."""

    def __init__(self, detail: str | None = None, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = max(0, retry_after_seconds)

    def response_headers(self) -> dict[str, str] | None:
        return {**(super().response_headers() or {}), "Retry-After": str(self.retry_after_seconds)}


class TooManyRequestsError(RetryLaterError):
    status_code = 429


class BusyError(RetryLaterError):
    """The service has no capacity to spare for this request right now."""

    status_code = 503


class NotFoundError(DomainError):
    status_code = 404


class UnauthorizedError(DomainError):
    """The caller is not known: RFC 6750's answer names the scheme it should authenticate with."""

    status_code = 401
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012 - never mutated


class ForbiddenError(DomainError):
    status_code = 403


class ConflictError(DomainError):
    status_code = 409


class DatabaseUnavailableError(SQLAlchemyError):
    """The database could not be reached: raised by `common.db`'s engines, from the driver's own
    error (a refused or reset connection, a name that does not resolve, a connect or command
    timeout), which is no DBAPI error and would otherwise pass for any other `OSError`."""


def sqlstate_of(error: DBAPIError) -> str | None:
    sqlstate = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return str(sqlstate) if sqlstate else None


def is_database_unavailable(error: BaseException) -> bool:
    """True when the database cannot be reached or has no connection to spare right now.

    Only errors that came from the database count: an `OSError` raised elsewhere (a file not
    found, a broker not answering) is not the database's.
    """
    if isinstance(error, DatabaseUnavailableError | PoolTimeoutError):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        sqlstate = sqlstate_of(error) or ""
        # 08: connection exception; 57P: operator intervention (shutdown, restart); 53: no room;
        # 28: the login refused (a password or role the operator must fix: /health/ready says).
        return (
            sqlstate.startswith(("08", "57P", "53", "28"))
            or sqlstate in (QUERY_CANCELED, LOCK_NOT_AVAILABLE)
            or isinstance(error.orig, ConnectionError | OSError)
        )
    return False
