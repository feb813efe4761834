"""An OTLP/HTTP receiver that accepts every export and keeps nothing: where the "traced" target's
services send their spans, so the benchmark measures making, batching, encoding and sending them
(a collector's own work happens elsewhere in production). Run it under uvicorn:

    uv run uvicorn otlp_sink:app --app-dir bench
"""

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    # An empty ExportTraceServiceResponse: everything accepted.
    headers = [(b"content-type", b"application/x-protobuf"), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
