"""The request's database sessions, ended before the response is sent.

- `SessionDep`: an `AsyncSession` in the request's one transaction. It commits when the endpoint
  returns and rolls back if it raises, before the response leaves: a commit that fails (a
  deferred constraint, a lost connection) becomes an error response, never a 2xx. Services may
  flush, never commit.
- `ReadSessionDep`: an `AsyncSession` that only reads, for endpoints that change nothing. Each
  query runs on its own in autocommit, without BEGIN and COMMIT around it: one round trip instead
  of three. Two queries may then see two snapshots, so an endpoint whose reads must agree takes
  `SessionDep`. It refuses to write.

Both are dependencies with `yield` and `scope="function"`: FastAPI ends them when the endpoint
returns, before it sends the response, and shields their exit from cancellation. A request that
declares one of them several times (in its endpoint and in its dependencies) gets one session.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Database


def database_of(request: Request) -> Database:
    database: Database = request.state.database
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: committed when the endpoint returns, rolled back if it raises."""
    session = database_of(request).sessionmaker()
    try:
        yield session
        await session.commit()
    finally:
        # Closing a session whose transaction is still open (the endpoint or the commit raised)
        # rolls it back; either way its connection goes back to the pool.
        await session.close()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read-only session for the request, closed when the endpoint returns."""
    session = database_of(request).read_sessionmaker()
    try:
        yield session
    finally:
        await session.close()


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
