"""Request IDs: accepted from `X-Request-ID` or generated, echoed, and put on every log line."""

import re
import secrets
from contextvars import ContextVar

from starlette.types import Message, Receive, Scope, Send

from common.middleware import HttpMiddleware

# A caller's ID is kept only when it is short and plain, so it cannot forge log lines.
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


class RequestIdMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _incoming_id(scope) or secrets.token_hex(16)
        _request_id.set(request_id)

        # Appended as bytes: no endpoint sets this header itself.
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _ACCEPTABLE.fullmatch(candidate) else None
    return None
