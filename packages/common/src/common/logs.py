"""Logging with the request ID on every line, uvicorn's own lines included."""

import logging

from common.request_id import current_request_id

LOG_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
_HANDLER_NAME = "common"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        return True


def configure_logging(level: str, *, sql: bool = False) -> None:
    """Send every logger through one handler that stamps the request ID. Safe to call twice.

    With `sql`, SQLAlchemy logs every statement and its parameters (what `echo=True` would print,
    through this handler instead of one of its own)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO if sql else logging.WARNING)
    # uvicorn installs handlers of its own; route its lines through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
