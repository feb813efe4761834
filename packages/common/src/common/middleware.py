"""`EdgeMiddleware`: what every HTTP request goes through around the app, in one pass and one
wrapped `send`.

Read `EdgeMiddleware.__call__` top to bottom, as a request goes: it gets its ID
(`common.request_id`); headers or a declared body over the limits are refused (431, 413) before
the app runs; the app runs, a chunked body counted as it arrives and refused (413) once past the
limit; an exception no handler took becomes a problem (`common.handlers.unhandled_error`); every
answer carries `X-Request-ID`; and the request is timed in `http_server_request_duration_seconds`
(`common.metrics`) by method, route template and status.

Pure ASGI rather than Starlette's `BaseHTTPMiddleware`: no task or stream per request, nothing
leaked when a client cancels, and the request's context variables (its ID, its trace) stay
visible to the endpoint.
"""

import contextlib
from time import perf_counter
from typing import NamedTuple

from fastapi.routing import iter_route_contexts
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.handlers import ProblemResponse, problem_response, unhandled_error
from common.metrics import KNOWN_METHODS, REQUEST_DURATION, UNMATCHED
from common.request_id import start_request


class RequestBodyTooLargeError(Exception):
    """Raised by the body read that crosses the limit; the middleware answers 413 itself."""


class Head(NamedTuple):
    """What the middleware reads of a request's headers, in one pass over them."""

    size: int  # every header's name and value together
    declared_length: int | None  # Content-Length
    chunked: bool  # Transfer-Encoding: the body's length is known once read
    request_id: bytes | None  # X-Request-ID, as the caller sent it


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_header_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        # The duration histogram's child per label set, and each route's full template.
        self._durations: dict[tuple[str, str, int], Histogram] = {}
        self._templates: dict[int, str] | None = None  # by id(route): routes are not hashable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websocket messages pass through untouched
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        head = read_head(scope)
        # Appended as bytes to the answer's headers: no endpoint sets this header itself.
        id_header = (b"x-request-id", start_request(head.request_id).encode("latin-1"))
        status: int | None = None  # the answer's, once it has started
        body_read = 0
        body_too_large = False

        async def receive_counted() -> Message:
            nonlocal body_read, body_too_large
            message = await receive()
            if message["type"] == "http.request":
                body_read += len(message.get("body", b""))
                if body_read > self.max_body_bytes:
                    body_too_large = True
                    raise RequestBodyTooLargeError
            return message

        async def send_answer(message: Message) -> None:
            nonlocal status
            if body_too_large and status is None:
                # Whatever the app answers to a body past the limit (a 400 for a body it could
                # not parse, say) gives way to the 413 below.
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            problem = self._refusal(head)
            if problem is None:
                # A body of a declared length within the limit is read no further than that
                # length by the server: only a chunked one is counted.
                app_receive = receive_counted if head.chunked else receive
                try:
                    await self.app(scope, app_receive, send_answer)
                except Exception as exc:
                    if status is not None:
                        raise  # too late for a problem: the client sees the answer cut short
                    problem = self._body_too_large() if body_too_large else unhandled_error(exc)
                else:
                    if body_too_large and status is None:
                        problem = self._body_too_large()
            if problem is not None:
                problem.raw_headers.append(id_header)
                status = problem.status_code
                await problem(scope, receive, send)
        finally:
            # An exception or a client gone before any answer counts as a 500.
            self._duration(scope, status or 500).observe(perf_counter() - started)

    def _refusal(self, head: Head) -> ProblemResponse | None:
        """The answer to a request over the limits before any byte of its body is read."""
        if head.size > self.max_header_bytes:
            detail = f"The request headers must not exceed {self.max_header_bytes} bytes."
            return refusal(431, detail)
        if head.declared_length is not None and head.declared_length > self.max_body_bytes:
            return self._body_too_large()
        return None

    def _body_too_large(self) -> ProblemResponse:
        return refusal(413, f"The request body must not exceed {self.max_body_bytes} bytes.")

    def _duration(self, scope: Scope, status: int) -> Histogram:
        """The histogram child of the request's method, route template and status: made once per
        label set, so a request costs a dictionary lookup and one observation."""
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "_OTHER"
        key = (method, self._template(scope), status)
        child = self._durations.get(key)
        if child is None:
            child = self._durations[key] = REQUEST_DURATION.labels(*key[:2], str(status))
        return child

    def _template(self, scope: Scope) -> str:
        """The template of the route the app matched (`scope["route"]`, set by routing), prefix
        included, never the raw path: the label sets stay bounded."""
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        if self._templates is None:
            # FastAPI keeps an included router's routes as written, without the prefix they are
            # included under: the full path comes from the app's route contexts.
            self._templates = {
                id(context.original_route): context.path_format
                for context in iter_route_contexts(scope["app"].routes)
                if context.path_format is not None
            }
        template = self._templates.get(id(route)) or getattr(route, "path_format", None)
        return template if isinstance(template, str) else UNMATCHED


def read_head(scope: Scope) -> Head:
    size = 0
    declared_length: int | None = None
    chunked = False
    request_id: bytes | None = None
    for name, value in scope["headers"]:
        size += len(name) + len(value)
        if name == b"content-length":
            # A malformed length is refused by the server itself.
            with contextlib.suppress(ValueError):
                declared_length = int(value)
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"x-request-id" and request_id is None:
            request_id = value
    return Head(size, declared_length, chunked, request_id)


def refusal(status: int, detail: str) -> ProblemResponse:
    # The unread rest of the body would otherwise be parsed as the next request.
    return problem_response(None, status=status, detail=detail, headers={"Connection": "close"})
