"""The shape of `common`'s middlewares: pure ASGI, acting on HTTP requests only.

Pure ASGI rather than Starlette's `BaseHTTPMiddleware`: no task or stream per request, and the
request's context variables (its ID, its trace) stay visible to the endpoint.
"""

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware:
    """Hands HTTP requests to `handle`; lifespan and websocket messages pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError
