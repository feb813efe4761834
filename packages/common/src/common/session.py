"""The request's database: one transaction per request, ended before the response is sent.

Three handles, each opened on first use and ended by the route:

- `SessionDep`: an `AsyncSession` in the request's one transaction, committed when the endpoint
  returns and rolled back if it raises. Services may flush, never commit.
- `WriteConnection`: the connection of that same transaction, for Core statements (an
  `INSERT ... RETURNING`) without the cost of a `Session` (a third of a simple write's CPU).
  A request may use both: the session then joins the connection's transaction.
- `ReadConnection`: a connection in autocommit, for endpoints that only read. Each statement is
  its own transaction, so a single-statement read costs one round trip instead of three
  (BEGIN, the query, COMMIT); two statements may see two snapshots, so an endpoint whose reads
  must agree uses one of the others.

An app whose `Database` has `sessions_only` (the tests', whose sessions join a transaction rolled
back after each test) runs both connections' statements in the request's session instead.
Every handle needs the route to be a `TransactionRoute`: domain routers are made with
`APIRouter(route_class=TransactionRoute)`, and discovery refuses one that is not.
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from common.db import Database
from common.settings import AppBaseSettings

T = TypeVar("T")

# Where a request's handles wait in its ASGI scope, and the mark of a route that ends them.
_SESSION = "common.session"
_WRITE_CONNECTION = "common.write_connection"
_READ_CONNECTION = "common.read_connection"
_TRANSACTION_ROUTE = "common.transaction_route"


def database_of(request: Request) -> Database:
    database: Database = request.state.database
    return database


def settings_of(request: Request) -> AppBaseSettings:
    """The settings the running app was created with (not necessarily `get_settings()`)."""
    settings: AppBaseSettings = request.state.settings
    return settings


class TransactionRoute(APIRoute):
    """A route that ends the request's database work before its response is sent.

    When the endpoint returns, the request's transaction (if it opened one) commits: a commit
    that fails (a deferred constraint, a lost connection) raises like the endpoint would, so it
    becomes an error response, never a 2xx. If the endpoint raises, it rolls back. Either way
    every handle goes back to its pool. This is what a dependency with `yield` would do, without
    FastAPI's machinery for one (a tenth of a simple read's CPU). The exit of a dependency of
    the endpoint (the code after its `yield`) runs after all this: it must not write.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_in_transaction(request: Request) -> Response:
            scope = request.scope
            scope[_TRANSACTION_ROUTE] = True
            try:
                response = await handle(request)
                # A session on the write connection flushes here, and leaves the COMMIT to it.
                if (session := scope.get(_SESSION)) is not None:
                    await session.commit()
                if (connection := scope.get(_WRITE_CONNECTION)) is not None:
                    await connection.commit()
                return response
            finally:
                # A cancellation is delivered once: the closes below still run after one that
                # interrupted the endpoint or the commit. Closing a handle whose transaction is
                # still open rolls it back.
                for key in (_SESSION, _WRITE_CONNECTION, _READ_CONNECTION):
                    if (opened := scope.pop(key, None)) is not None:
                        await opened.close()

        return handle_in_transaction


def _require_transaction_route(request: Request) -> None:
    if _TRANSACTION_ROUTE not in request.scope:
        raise RuntimeError(
            f"{request.url.path} opens a database handle outside a TransactionRoute: make its "
            "router with `APIRouter(route_class=TransactionRoute)`"
        )


async def get_session(request: Request) -> AsyncSession:
    """The request's session, opened on first use; its `TransactionRoute` commits and closes it."""
    scope = request.scope
    session: AsyncSession | None = scope.get(_SESSION)
    if session is None:
        _require_transaction_route(request)
        sessionmaker = database_of(request).sessionmaker
        connection: AsyncConnection | None = scope.get(_WRITE_CONNECTION)
        # The transaction already runs on the write connection: the session joins it.
        session = sessionmaker() if connection is None else sessionmaker(bind=connection)
        scope[_SESSION] = session
    return session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def _connect(request: Request, engine: AsyncEngine, key: str) -> AsyncConnection:
    _require_transaction_route(request)
    connection = engine.connect()
    # Not `async with`: its exit would run in a task of its own; the route closes it instead.
    await connection.start()
    request.scope[key] = connection
    return connection


async def get_write_connection(request: Request) -> AsyncConnection:
    """The connection of the request's transaction, opened on first use; its route commits it."""
    connection: AsyncConnection | None = request.scope.get(_WRITE_CONNECTION)
    if connection is not None:
        return connection
    database = database_of(request)
    if database.sessions_only or _SESSION in request.scope:
        return await (await get_session(request)).connection()
    return await _connect(request, database.engine, _WRITE_CONNECTION)


WriteConnection = Annotated[AsyncConnection, Depends(get_write_connection)]


async def get_read_connection(request: Request) -> AsyncConnection:
    """The request's autocommit connection, opened on first use; its route closes it."""
    connection: AsyncConnection | None = request.scope.get(_READ_CONNECTION)
    if connection is not None:
        return connection
    read_engine = database_of(request).read_engine
    if read_engine is None:  # the Database is `sessions_only`
        return await (await get_session(request)).connection()
    return await _connect(request, read_engine, _READ_CONNECTION)


ReadConnection = Annotated[AsyncConnection, Depends(get_read_connection)]


async def get_one_or_none(session: AsyncSession, statement: Select[T]) -> T | None:
    result = await session.execute(statement)
    return result.scalar_one_or_none()


async def get_all(session: AsyncSession, statement: Select[T]) -> list[T]:
    result = await session.scalars(statement)
    return list(result.all())
