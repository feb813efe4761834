"""Logging: one handler for every logger (uvicorn's and SQLAlchemy's included), each line with
the request ID and, when tracing is on, the trace and span IDs; secrets masked.

Two formats: readable text for a person at a terminal (development), and JSON lines for a log
pipeline (production), written by python-json-logger through the standard library's logging,
which uvicorn and SQLAlchemy already use, so their lines get the same fields.
"""

import logging
import re
import sys
from typing import Any, TextIO

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from common.request_id import current_request_id
from common.settings import LogFormat

LOG_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s%(trace)s] %(name)s: %(message)s"
JSON_FIELDS = ("asctime", "levelname", "name", "message", "request_id", "trace_id", "span_id")
JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger"}
_HANDLER_NAME = "common"

# What must never reach a log line, whoever logs it: a bearer token, a JWT anywhere (the
# three base64url parts of a signed token), a PEM private key, an argon2 hash, and the value of
# a field or query parameter named like a secret (`password=...`, `"token": "..."`).
SECRET_PATTERNS = (
    re.compile(r"(?i)\bbearer\s+[\w.~+/=-]{16,}"),
    re.compile(r"\beyJ[\w-]*\.eyJ[\w-]*\.[\w-]*"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
    re.compile(r"\$argon2(?:id|i|d)\$[^\s'\"]+"),
    re.compile(
        r"(?i)\b(password|passwd|secret|token|access_token|refresh_token|api_key|signing_key)"
        r"(=|[\"']\s*:\s*[\"']?)(?!\*\*\*)[^\s&\"',}]+"
    ),
)
MASK = "***"


def mask_secrets(text: str) -> str:
    """`text` with every secret the patterns above find replaced by `***`."""
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(_masked, text)
    return text


def _masked(match: re.Match[str]) -> str:
    # A `name=value` pair keeps its name, so the line still says what was there.
    if match.re is SECRET_PATTERNS[-1]:
        return f"{match.group(1)}{match.group(2)}{MASK}"
    return MASK


class ContextFilter(logging.Filter):
    """Stamps a record with the request ID and the current span's trace and span IDs."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            trace_id = format(context.trace_id, "032x")
            span_id = format(context.span_id, "016x")
            record.trace_id, record.span_id = trace_id, span_id
            record.trace = f" trace={trace_id} span={span_id}"
        else:
            record.trace_id = record.span_id = None
            record.trace = ""
        return True


class TextFormatter(logging.Formatter):
    """A line for a person; secrets masked in the whole line, a traceback included."""

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message, request_id, trace_id, span_id
    (and `exc_info` with a traceback); secrets masked."""

    def __init__(self) -> None:
        super().__init__(
            list(JSON_FIELDS),
            rename_fields=JSON_NAMES,
            # The text format's helper field, and uvicorn's coloured copy of its message.
            reserved_attrs=[*RESERVED_ATTRS, "trace", "color_message"],
        )

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a line is written: a test runner swaps it for
    each test and closes the old one, and lines written at exit must not fail."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        return None


def configure_logging(level: str, *, sql: bool = False, log_format: LogFormat = "text") -> None:
    """Send every logger through one handler that stamps the request and trace IDs. Safe to
    call twice.

    With `sql`, SQLAlchemy logs every statement and its parameters (what `echo=True` would print,
    through this handler instead of one of its own)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonLineFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO if sql else logging.WARNING)
    route_uvicorn_logs()


def route_uvicorn_logs() -> None:
    """uvicorn installs handlers of its own (again when its command line starts): route its
    lines through ours instead."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
