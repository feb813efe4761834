"""Liveness and readiness.

`/health/live` says the process answers. `/health/ready` says it can serve: the database answers
and its schema is at the Alembic head this code was written for, so a load balancer never routes
to an instance whose migrations have not run.
"""

import asyncio
import logging

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from common.errors import Problem, ProblemResponse, problem_response
from common.revisions import VERSION_TABLE
from common.session import database_of

logger = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 2.0

router = APIRouter(prefix="/health", tags=["health"])


class Health(BaseModel):
    status: str


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
    expected: frozenset[str] = request.state.migration_heads
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            current = await _current_revisions(request)
    except (TimeoutError, OSError, SQLAlchemyError) as exc:
        logger.warning("not ready: database check failed (%s)", type(exc).__name__)
        return _not_ready(request, "The database does not answer.")
    if current != expected:
        logger.warning("not ready: schema at %s, expected %s", sorted(current), sorted(expected))
        return _not_ready(request, "The database schema is not at the expected migration.")
    return Health(status="ready")


async def _current_revisions(request: Request) -> frozenset[str]:
    async with database_of(request).engine.connect() as connection:
        exists = await connection.scalar(
            text("SELECT to_regclass(:table) IS NOT NULL"), {"table": VERSION_TABLE}
        )
        if not exists:
            return frozenset()
        rows = await connection.scalars(text(f"SELECT version_num FROM {VERSION_TABLE}"))
        return frozenset(rows.all())


def _not_ready(request: Request, detail: str) -> ProblemResponse:
    return problem_response(
        request,
        status=503,
        title="Service Unavailable",
        detail=detail,
        headers={"Retry-After": "1"},
    )
