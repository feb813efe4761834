"""Declarative base, timestamps, and the engine and session factories a running app owns."""

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self

from sqlalchemy import DateTime, MetaData, event, func
from sqlalchemy.engine import Dialect, ExceptionContext, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
)
from uuid_utils.compat import uuid7

from common.errors import DatabaseUnavailableError
from common.pools import ReadPool, WritePool
from common.settings import AppBaseSettings, Pooler

logger = logging.getLogger(__name__)

# Deterministic constraint names, so migrations can drop and alter what they created.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> uuid.UUID:
    """A UUIDv7: time-ordered, so ids sort by creation and index inserts stay local."""
    return uuid7()


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def table_name_for(class_name: str) -> str:
    """The table of a model class: its name in snake case, in the plural.

    `Thing` -> `things`, `OrderItem` -> `order_items`, `Category` -> `categories`, `Box` ->
    `boxes`. An irregular plural is set on the model itself: `__tablename__ = "people"`.
    """
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", class_name).lower()
    if re.search(r"[^aeiou]y$", words):
        return f"{words[:-1]}ies"
    if re.search(r"(s|x|z|ch|sh)$", words):
        return f"{words}es"
    return f"{words}s"


class Base(DeclarativeBase):
    """Root of every model. A model's table is named after its class (`table_name_for`) unless
    it sets `__tablename__` itself.

    Each service subclasses it once, abstract and with its own `MetaData`, so that services
    installed in one environment never see each other's tables:

        class Base(common.db.Base):
            __abstract__ = True
            metadata = new_metadata()
    """

    @declared_attr.directive
    @classmethod
    def __tablename__(cls) -> str:
        return table_name_for(cls.__name__)

    metadata = new_metadata()
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}
    # Server-generated values (timestamps) come back with INSERT/UPDATE ... RETURNING instead of
    # a lazy load later, which async sessions cannot do.
    __mapper_args__: Any = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy reads it per class


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


def create_engine(settings: AppBaseSettings, *, autocommit: bool = False) -> AsyncEngine:
    """An engine of the app and its pool; with `autocommit`, each statement runs on its own, on
    the read replica when the settings name one."""
    engine = create_async_engine(
        (settings.read_database_url or settings.database_url)
        if autocommit
        else settings.database_url,
        isolation_level="AUTOCOMMIT" if autocommit else None,
        # SQLAlchemy's async queue pool, counting the requests that wait for a connection.
        poolclass=ReadPool if autocommit else WritePool,
        pool_size=settings.db_read_pool_size if autocommit else settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        # No ping on every checkout (a round trip per request): a connection found dead fails
        # its request with 503 and invalidates the pool, so the next requests reconnect.
        pool_pre_ping=False,
        connect_args=connect_args(settings),
        # A failed statement's error (and so the log line of an unexpected one) would carry its
        # bound values, emails and hashes among them; production's logs keep the SQL only.
        hide_parameters=settings.is_production,
    )
    event.listen(engine.sync_engine, "do_connect", _connect)
    event.listen(engine.sync_engine, "handle_error", _timeout_is_disconnect)
    event.listen(engine.sync_engine, "handle_error", _unreachable, retval=True)
    return engine


def session_timeouts(settings: AppBaseSettings) -> dict[str, str]:
    """The server-side limits of every session of the service, as Postgres settings."""
    return {
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "idle_in_transaction_session_timeout": str(settings.db_idle_in_transaction_timeout_ms),
    }


def connect_args(settings: AppBaseSettings) -> dict[str, Any]:
    """What asyncpg is given for each new connection.

    Through PgBouncer in transaction mode, two consecutive statements outside a transaction may
    reach two server connections, and a statement prepared on one does not exist on the other.
    With both statement caches off (asyncpg's and SQLAlchemy's), asyncpg prepares each statement
    unnamed and parses it again in the very message sequence that runs it, so it never relies
    on an earlier one. SQLAlchemy's other documented remedy, a unique name per prepared statement
    (`prepared_statement_name_func`), still prepares and runs in two sequences: outside a
    transaction (the read engine, in autocommit) that fails under load (docs/deployment.md:
    PgBouncer, measured). PgBouncer 1.18 refuses startup parameters it does not track, so the
    session timeouts are the pooler's to set there (`connect_query`).
    """
    args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout_seconds,
        "command_timeout": settings.db_command_timeout_seconds,
    }
    if settings.db_pooler is Pooler.PGBOUNCER:
        return {
            **args,
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "server_settings": {"application_name": settings.service_name},
        }
    return {
        **args,
        "server_settings": {
            "application_name": settings.service_name,
            **session_timeouts(settings),
        },
    }


def _timeout_is_disconnect(context: ExceptionContext) -> None:
    """A statement past its command timeout means a server or network that does not answer (the
    server's own `statement_timeout` is shorter): the connection is dropped at once, as if
    disconnected, and the pool with it. Kept, its rollback would wait for another command timeout;
    invalidated, SQLAlchemy would first try to close it politely, for up to 2 s."""
    if isinstance(context.original_exception, TimeoutError):
        context.is_disconnect = True
        connection = context.connection
        if connection is not None and not connection.invalidated:
            driver: Any = connection.connection.driver_connection
            driver.terminate()


def _connect(
    dialect: Dialect, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> Any:
    """Connects as the engine would. The driver's own errors while connecting are no DBAPI
    errors (asyncpg raises `ConnectionRefusedError`, `socket.gaierror`, `TimeoutError`), and
    SQLAlchemy's `handle_error` never sees them: they become `DatabaseUnavailableError` here, so
    that no other `OSError` passes for the database's."""
    try:
        return dialect.connect(*cargs, **cparams)
    except OSError as exc:
        raise DatabaseUnavailableError(f"cannot connect: {exc!r}") from exc


def _unreachable(context: ExceptionContext) -> BaseException | None:
    """The driver's `OSError` while running a statement (a reset connection, the command
    timeout) as `DatabaseUnavailableError`, raised from it."""
    if isinstance(context.original_exception, OSError):
        return DatabaseUnavailableError(f"no answer: {context.original_exception!r}")
    return None


class ReadOnlySessionError(RuntimeError):
    """A write through a read-only session: a programming error, answered 500."""


class ReadOnlySession(Session):
    """A session that refuses to write: nothing to flush, no INSERT, UPDATE or DELETE.

    What `ReadSessionDep` hands out. In production it runs on a connection in autocommit, where
    nothing would undo a write; refused here, a write fails as the bug it is.
    """


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_flush(session: Session, *_: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadOnlySessionError("a read-only session cannot write: use SessionDep")


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _refuse_writes(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlySessionError("a read-only session cannot write: use SessionDep")


def create_sessionmaker(bind: AsyncEngine | AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Sessions for the requests' transactions.

    Objects stay readable after commit: responses are built from them without another query.
    Bound to a connection already in a transaction (the tests'), a session joins it through a
    savepoint, so its own commit and rollback still run.
    """
    return async_sessionmaker(
        bind, expire_on_commit=False, autoflush=False, join_transaction_mode="create_savepoint"
    )


def create_read_sessionmaker(
    bind: AsyncEngine | AsyncConnection,
) -> async_sessionmaker[AsyncSession]:
    """Read-only sessions: on the read engine, each query runs on its own, in autocommit."""
    return async_sessionmaker(
        bind,
        sync_session_class=ReadOnlySession,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )


@dataclass(frozen=True, slots=True)
class Database:
    """The engines and session factories of one running app, made in its lifespan.

    `engine` runs the requests' transactions (`sessionmaker`); `read_engine`, in autocommit, runs
    the read-only sessions' queries without BEGIN and COMMIT (`read_sessionmaker`), on the read
    replica when `read_database_url` names one. Each has its own pool: a connection that changed
    its isolation level at every checkout would cost a read a tenth of its CPU (docs/speed.md).
    """

    engine: AsyncEngine
    read_engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    read_sessionmaker: async_sessionmaker[AsyncSession]

    @classmethod
    def from_settings(cls, settings: AppBaseSettings) -> Self:
        # Once per start: which database, as the driver reads it, never the password.
        shown = make_url(settings.database_url).render_as_string(hide_password=True)
        logger.info("database: %s", shown)
        if settings.read_database_url:
            replica = make_url(settings.read_database_url).render_as_string(hide_password=True)
            logger.info("reads (ReadSessionDep) from: %s", replica)
        engine = create_engine(settings)
        read_engine = create_engine(settings, autocommit=True)
        return cls(
            engine=engine,
            read_engine=read_engine,
            sessionmaker=create_sessionmaker(engine),
            read_sessionmaker=create_read_sessionmaker(read_engine),
        )

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self.read_engine.dispose()
