"""The engines' connection pools, observed: SQLAlchemy's async queue pool, counting the requests
that wait for a connection and those that give up (SQLAlchemy's pool reports neither).

SQLAlchemy names a pool's logger after its class's module: this module's logger stays at
WARNING, as SQLAlchemy keeps its own (it logs each disposal at INFO).
"""

import logging
from collections.abc import Callable
from typing import Any, ClassVar

from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import AsyncAdaptedQueuePool

from common.metrics import POOL_TIMEOUTS

logging.getLogger(__name__).setLevel(logging.WARNING)


class ObservedPool(AsyncAdaptedQueuePool):
    """The async engine's own pool, counting the requests that wait for a connection and those
    that give up: SQLAlchemy's pool reports neither. The label is the subclass's `role`, a class
    attribute, since SQLAlchemy recreates a pool (on `dispose`) from its class and arguments."""

    role: ClassVar[str] = "write"

    def __init__(
        self,
        creator: Callable[..., Any],
        pool_size: int = 5,
        max_overflow: int = 10,
        timeout: float = 30.0,
        **kw: Any,
    ) -> None:
        super().__init__(
            creator, pool_size=pool_size, max_overflow=max_overflow, timeout=timeout, **kw
        )
        self.capacity = pool_size + max(max_overflow, 0)
        self.waiting = 0

    def _do_get(self) -> Any:
        if self.checkedout() < self.capacity:
            return super()._do_get()
        self.waiting += 1
        try:
            return super()._do_get()
        except PoolTimeoutError:
            POOL_TIMEOUTS.labels(self.role).inc()
            raise
        finally:
            self.waiting -= 1


class WritePool(ObservedPool):
    role = "write"


class ReadPool(ObservedPool):
    role = "read"
