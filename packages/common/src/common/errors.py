"""Every error answered as RFC 9457 problem+json, with no internals reaching the client."""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.request_id import current_request_id

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 1

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
    """An error a domain raises on purpose. Its class decides the HTTP status."""

    status_code: ClassVar[int] = 400
    title: ClassVar[str] = "Bad Request"
    headers: ClassVar[Mapping[str, str] | None] = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(DomainError):
    status_code = 404
    title = "Not Found"


class ForbiddenError(DomainError):
    status_code = 403
    title = "Forbidden"


class ConflictError(DomainError):
    status_code = 409
    title = "Conflict"


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_response(
    request: Request | None,
    *,
    status: int,
    title: str,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemResponse:
    problem = Problem(
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path if request is not None else None,
        request_id=current_request_id(),
        errors=errors,
    )
    return ProblemResponse(
        problem.model_dump(exclude_none=True), status_code=status, headers=headers
    )


def _sqlstate(error: DBAPIError) -> str | None:
    sqlstate = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return str(sqlstate) if sqlstate else None


def is_database_unavailable(error: BaseException) -> bool:
    """True when the database cannot be reached or has no connection to spare right now."""
    if isinstance(error, PoolTimeoutError | ConnectionError | TimeoutError):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        sqlstate = _sqlstate(error) or ""
        # 08: connection exception; 57P: operator intervention (shutdown, restart); 53: no room.
        return (
            sqlstate.startswith(("08", "57P", "53"))
            or sqlstate in (QUERY_CANCELED, LOCK_NOT_AVAILABLE)
            or isinstance(error.orig, ConnectionError | OSError)
        )
    return isinstance(error, OSError)


async def _domain_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, DomainError)
    return problem_response(
        request,
        status=exc.status_code,
        title=exc.title,
        detail=exc.detail,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    return problem_response(
        request,
        status=exc.status_code,
        title=title,
        detail=detail,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    # Only where and why: the rejected input itself may be a password.
    errors = [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    return problem_response(
        request,
        status=422,
        title="Unprocessable Content",
        detail="The request is not valid.",
        errors=errors,
    )


async def _integrity_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, IntegrityError)
    sqlstate = _sqlstate(exc)
    if sqlstate in (NOT_NULL_VIOLATION, CHECK_VIOLATION):
        return problem_response(
            request,
            status=422,
            title="Unprocessable Content",
            detail="The request breaks a rule of the data it changes.",
        )
    detail = {
        UNIQUE_VIOLATION: "A resource with the same unique value already exists.",
        FOREIGN_KEY_VIOLATION: "The request refers to a resource that does not exist or is in use.",
    }.get(sqlstate or "", "The request conflicts with the current state of the resource.")
    return problem_response(request, status=409, title="Conflict", detail=detail)


async def _database_error(request: Request, exc: Exception) -> ProblemResponse:
    if is_database_unavailable(exc):
        logger.warning("database unavailable: %s", type(exc).__name__)
        return service_unavailable(request)
    if isinstance(exc, DBAPIError) and (_sqlstate(exc) or "").startswith(DATA_EXCEPTION_CLASS):
        return problem_response(
            request,
            status=422,
            title="Unprocessable Content",
            detail="The request holds a value the database cannot store.",
        )
    logger.error("database error", exc_info=exc)
    return internal_error(request)


def service_unavailable(request: Request | None) -> ProblemResponse:
    return problem_response(
        request,
        status=503,
        title="Service Unavailable",
        detail="The service cannot reach its database right now. Retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def internal_error(request: Request | None) -> ProblemResponse:
    return problem_response(
        request,
        status=500,
        title="Internal Server Error",
        detail="An unexpected error occurred. It has been logged.",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(PoolTimeoutError, _database_error)
    app.add_exception_handler(OSError, _database_error)


class UnhandledErrorMiddleware:
    """Turns any exception no handler took into a logged 500 problem, without internals.

    It sits inside the request-ID middleware, so even a 500 carries its request ID.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if response_started:
                raise
            if is_database_unavailable(exc):
                response = service_unavailable(None)
            else:
                logger.exception("unhandled error")
                response = internal_error(None)
            await response(scope, receive, send)
