"""Every error answered as RFC 9457 problem+json, with no internals reaching the client.

`install_error_handlers` gives the app a handler per kind of error (`common.errors`);
`unhandled_error` is the answer to any other exception, given by `common.middleware`.
"""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from common.errors import (
    CHECK_VIOLATION,
    DATA_EXCEPTION_CLASS,
    FOREIGN_KEY_VIOLATION,
    NOT_NULL_VIOLATION,
    PROBLEM_MEDIA_TYPE,
    UNIQUE_VIOLATION,
    DomainError,
    Problem,
    is_database_unavailable,
    sqlstate_of,
    title_of,
)
from common.request_id import current_request_id

# One name for every error logged, whichever module answers it: what log queries look for.
logger = logging.getLogger("common.errors")

RETRY_AFTER_SECONDS = 1


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
    sqlstate = sqlstate_of(exc)
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
    if isinstance(exc, DBAPIError) and (sqlstate_of(exc) or "").startswith(DATA_EXCEPTION_CLASS):
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


def unhandled_error(exc: Exception) -> ProblemResponse:
    """The answer to an exception no handler took: 503 when the database is unavailable, else a
    logged 500 without internals."""
    if is_database_unavailable(exc):
        return service_unavailable(None)
    logger.error("unhandled error", exc_info=exc)
    return internal_error(None)
