"""The request owns the transaction: one per request, committed before the response is sent."""

from collections.abc import AsyncIterator
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Database
from common.settings import AppBaseSettings

T = TypeVar("T")


def database_of(request: Request) -> Database:
    database: Database = request.state.database
    return database


def settings_of(request: Request) -> AppBaseSettings:
    """The settings the running app was created with (not necessarily `get_settings()`)."""
    settings: AppBaseSettings = request.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield the request's session; commit when the endpoint returns, roll back if it raises.

    Used with `scope="function"`, so the commit runs before the response is sent: a commit that
    fails (a deferred constraint, a lost connection) becomes an error response, never a 2xx.
    """
    session = database_of(request).sessionmaker()
    # Not `async with`: its exit runs in a task of its own to survive cancellation, and FastAPI
    # already shields a dependency's exit, so that task would only cost time.
    try:
        yield session
        await session.commit()
    finally:
        await session.close()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_one_or_none(session: AsyncSession, statement: Select[T]) -> T | None:
    result = await session.execute(statement)
    return result.scalar_one_or_none()


async def get_all(session: AsyncSession, statement: Select[T]) -> list[T]:
    result = await session.scalars(statement)
    return list(result.all())
