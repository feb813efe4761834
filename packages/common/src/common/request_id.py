"""The request's ID, which its log lines, its problems and the events it causes carry.

`common.middleware` starts each request with one: the caller's `X-Request-ID` when acceptable,
else a new one; it echoes it in the answer.
"""

import re
import secrets
from contextvars import ContextVar

# A caller's ID is kept only when it is short and plain, so it cannot forge log lines.
_ACCEPTABLE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def start_request(incoming: bytes | None) -> str:
    """The ID of the request that starts, made current: `incoming` (the caller's `X-Request-ID`)
    when acceptable, else a new one."""
    if incoming is not None and _ACCEPTABLE.fullmatch(incoming):
        request_id = incoming.decode("ascii")
    else:
        request_id = secrets.token_hex(16)
    _request_id.set(request_id)
    return request_id
