"""Caps on request size: 413 problem+json for a body past the limit, 431 for oversized headers.

Pure ASGI (no `BaseHTTPMiddleware`, which leaks connections when clients cancel). A
`Content-Length` over the limit is refused before any byte of the body is read; a chunked body is
counted as it arrives and refused once it grows past the limit, whatever the app does with the
error its read raised.
"""

import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.handlers import problem_response
from common.middleware import HttpMiddleware

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# Every header's name and value together; nginx and Node refuse far less than this by default.
DEFAULT_MAX_HEADER_BYTES = 16 * 1024


class RequestBodyTooLargeError(Exception):
    """Raised by the body read that crosses the limit; the middleware answers 413 itself."""


class BodyLimitMiddleware(HttpMiddleware):
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    ) -> None:
        super().__init__(app)
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        header_bytes, declared, chunked = _framing(scope)
        if header_bytes > self.max_header_bytes:
            await _refuse(
                scope,
                receive,
                send,
                status=431,
                detail=f"The request headers must not exceed {self.max_header_bytes} bytes.",
            )
            return
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        if not chunked:
            # No body, or one of a declared length within the limit, which the server reads no
            # further than: nothing to count.
            await self.app(scope, receive, send)
            return

        received = 0
        exceeded = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    exceeded = True
                    raise RequestBodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            # Once the body is too large, whatever the app answers (a 400 for a body it could not
            # parse, say) is replaced by the 413 below.
            if exceeded and not response_started:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded or response_started:
                raise
        if exceeded and not response_started:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _refuse(
            scope,
            receive,
            send,
            status=413,
            detail=f"The request body must not exceed {self.max_body_bytes} bytes.",
        )


async def _refuse(scope: Scope, receive: Receive, send: Send, *, status: int, detail: str) -> None:
    response = problem_response(
        None,
        status=status,
        detail=detail,
        # The unread rest of the body would otherwise be parsed as the next request.
        headers={"Connection": "close"},
    )
    await response(scope, receive, send)


def _framing(scope: Scope) -> tuple[int, int | None, bool]:
    """The headers' size, the declared body length, and whether the body comes in chunks."""
    size = 0
    declared: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        size += len(name) + len(value)
        if name == b"content-length":
            # A malformed length is refused by the server itself.
            with contextlib.suppress(ValueError):
                declared = int(value)
        elif name == b"transfer-encoding":
            chunked = True
    return size, declared, chunked
