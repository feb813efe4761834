"""Every error answered as RFC 9457 problem+json, with no internals reaching the client."""

import json
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
from starlette.types import Message, Receive, Scope, Send

from common.middleware import HttpMiddleware
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


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_response(
    request: Request | None,
    *,
    status: int,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemResponse:
    problem = Problem(
        title=title_of(status),
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
        # 08: connection exception; 57P: operator intervention (shutdown, restart); 53: no room;
        # 28: the login refused (a password or role the operator must fix: /health/ready says).
        return (
            sqlstate.startswith(("08", "57P", "53", "28"))
            or sqlstate in (QUERY_CANCELED, LOCK_NOT_AVAILABLE)
            or isinstance(error.orig, ConnectionError | OSError)
        )
    return isinstance(error, OSError)


async def _domain_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, DomainError)
    return problem_response(
        request,
        status=exc.status_code,
        detail=exc.detail,
        headers=exc.response_headers(),
    )


async def _http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's answer to a body it could not parse at all (invalid UTF-8, JSON nested past
        # the recursion limit, a broken form): the same 422 as a body that is not valid JSON.
        return problem_response(
            request,
            status=422,
            detail="The request is not valid.",
            errors=[{"loc": ["body"], "msg": "The body could not be parsed", "type": "body"}],
        )
    # Starlette's detail when none was given is the phrase: the title says it already.
    phrase = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    return problem_response(
        request,
        status=exc.status_code,
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
            detail="The request breaks a rule of the data it changes.",
        )
    detail = {
        UNIQUE_VIOLATION: "A resource with the same unique value already exists.",
        FOREIGN_KEY_VIOLATION: "The request refers to a resource that does not exist or is in use.",
    }.get(sqlstate or "", "The request conflicts with the current state of the resource.")
    return problem_response(request, status=409, detail=detail)


async def _database_error(request: Request, exc: Exception) -> ProblemResponse:
    if is_database_unavailable(exc):
        logger.warning("database unavailable: %s", type(exc).__name__)
        return service_unavailable(request)
    if isinstance(exc, DBAPIError) and (_sqlstate(exc) or "").startswith(DATA_EXCEPTION_CLASS):
        return problem_response(
            request,
            status=422,
            detail="The request holds a value the database cannot store.",
        )
    logger.error("database error", exc_info=exc)
    return internal_error(request)


def service_unavailable(request: Request | None) -> ProblemResponse:
    return problem_response(
        request,
        status=503,
        detail="The service cannot reach its database right now. Retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def internal_error(request: Request | None) -> ProblemResponse:
    return problem_response(
        request,
        status=500,
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


class UnhandledErrorMiddleware(HttpMiddleware):
    """Turns any exception no handler took into a logged 500 problem, without internals.

    It sits inside the request-ID middleware, so even a 500 carries its request ID.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
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


# -- what the OpenAPI document says about errors ------------------------------------------

PROBLEM_REF = "#/components/schemas/Problem"
OPENAPI_METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}
# Statuses every operation can answer, whatever its route declares: the middleware's limits,
# the unexpected error, and the database (or another limit) being unavailable for a moment.
EVERY_OPERATION = {
    "431": "The request's headers are too large",
    "500": "Unexpected error",
    "503": "Unavailable for a moment (the database, or the service, is too busy or unreachable)",
}
WITH_INPUT = {"422": "Invalid request: a parameter or the body is missing, malformed or invalid"}
WITH_BODY = {"413": "The request body is too large"}
# Headers an error response always carries, by status.
ERROR_HEADERS = {"429": RETRY_AFTER_HEADER, "503": RETRY_AFTER_HEADER}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """The app's OpenAPI document made to say what the app answers on errors, in place.

    Every error response is `application/problem+json` with the `Problem` schema (FastAPI would
    document `application/json`), every operation lists the errors any request can get (and 422
    when it takes input, 413 when it takes a body), and `Retry-After` is documented where it is
    always sent. FastAPI's own validation-error schemas, which no answer uses, are left out.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for path_item in schema.get("paths", {}).values():
        for method in OPENAPI_METHODS:
            if method in path_item:
                _document_operation(path_item[method])
    # In this order: HTTPValidationError refers to ValidationError.
    for unused in ("HTTPValidationError", "ValidationError"):
        if f'"#/components/schemas/{unused}"' not in json.dumps(schema):
            components.pop(unused, None)
    return schema


def _document_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    added = dict(EVERY_OPERATION)
    if operation.get("parameters") or "requestBody" in operation:
        added |= WITH_INPUT
    if "requestBody" in operation:
        added |= WITH_BODY
    for status, description in added.items():
        responses.setdefault(status, {"description": description})
    if responses.get("422", {}).get("description") == "Validation Error":  # FastAPI's own
        responses["422"]["description"] = WITH_INPUT["422"]
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400:
            response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}}
            if status in ERROR_HEADERS:
                response["headers"] = {**ERROR_HEADERS[status], **response.get("headers", {})}
    operation["responses"] = dict(sorted(responses.items()))
