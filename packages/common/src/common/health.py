"""Liveness and readiness.

`/health/live` says the process answers. `/health/ready` says it can serve: the database answers
and its schema is at the Alembic head this code was written for, or at a later release's revisions
(common.revisions.Schema), so a load balancer never routes to an instance whose migrations have not
run, and the previous release keeps serving while the next one rolls out.

A database that does not answer gets a 503 after `READY_TIMEOUT_SECONDS`, however often it is
asked: the probes that arrive while a check runs wait for that one check, and a check that takes
too long goes on alone, bounded by the engine's connect and command timeouts. Cancelling it would
not free anything sooner: SQLAlchemy closes a cancelled statement's connection politely first, which
against a server that does not answer takes 2 s more.
"""

import asyncio
import logging

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from common.db import Database
from common.errors import Problem
from common.handlers import ProblemResponse, problem_response
from common.revisions import Schema, applied_revisions
from common.session import database_of

logger = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 2.0
# SQLSTATE class 28, invalid authorization: a wrong password, or a role that does not exist.
AUTHENTICATION_FAILED_CLASS = "28"

router = APIRouter(prefix="/health", tags=["health"])


class Health(BaseModel):
    status: str


class ReadinessCheck:
    """The app's database check, shared by the probes that arrive while it runs."""

    def __init__(self) -> None:
        self._running: asyncio.Task[frozenset[str]] | None = None

    async def current_revisions(self, database: Database) -> frozenset[str]:
        """The revisions the database is at; TimeoutError if it takes over the readiness timeout."""
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(_current_revisions(database))
        # Shielded: a probe that gives up leaves the check running for the next ones.
        return await asyncio.wait_for(asyncio.shield(self._running), READY_TIMEOUT_SECONDS)

    def cancel(self) -> None:
        """Stop a check still running (at shutdown)."""
        if self._running is not None:
            self._running.cancel()


@router.get("/live")
async def live() -> Health:
    """The process is up and answering."""
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Health,
    responses={503: {"model": Problem, "description": "Database unreachable or not migrated"}},
)
async def ready(request: Request) -> Health | ProblemResponse:
    """The service can serve: its database answers and its schema is at the expected revision."""
    schema: Schema = request.state.schema
    check: ReadinessCheck = request.state.readiness
    database = database_of(request)
    try:
        current = await check.current_revisions(database)
    except (TimeoutError, OSError, SQLAlchemyError) as exc:
        logger.warning("not ready: database check failed (%s)", type(exc).__name__)
        if _authentication_failed(exc):
            role = database.engine.url.username
            return _not_ready(
                request, f"The database refused the login: authentication failed for role {role}."
            )
        return _not_ready(request, "The database does not answer.")
    if not schema.serves(current):
        logger.warning(
            "not ready: schema at %s, expected %s", sorted(current), sorted(schema.heads)
        )
        return _not_ready(request, "The database schema is not at the expected migration.")
    return Health(status="ready")


async def _current_revisions(database: Database) -> frozenset[str]:
    async with database.engine.connect() as connection:
        return await applied_revisions(connection)


def _authentication_failed(error: BaseException) -> bool:
    sqlstate = getattr(error.orig, "sqlstate", None) if isinstance(error, DBAPIError) else None
    return str(sqlstate or "").startswith(AUTHENTICATION_FAILED_CLASS)


def _not_ready(request: Request, detail: str) -> ProblemResponse:
    return problem_response(
        request,
        status=503,
        detail=detail,
        headers={"Retry-After": "1"},
    )
