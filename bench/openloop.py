"""An open-loop HTTP/1.1 load generator: requests leave on a fixed schedule, answered or not.

wrk is closed loop (a connection sends its next request when the last one is answered), so a
slow response delays the requests behind it and hides them from the latency figures. Here each
request has a send time fixed in advance (`rate` per second, spread over keep-alive
connections), and its latency runs from that time, so waiting behind a slow response counts.
"""

import asyncio
import gc
import statistics
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class OpenLoopResult:
    sent: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.sent / self.seconds


async def _connection(
    host: str, port: int, request: bytes, schedule: list[float], latencies: list[float]
) -> int:
    """Send `request` at each time of `schedule`; return how many answers were not 2xx."""
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    try:
        for due in schedule:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - due)
            errors += not 200 <= status < 300
    finally:
        writer.close()
    return errors


async def open_loop(
    host: str, port: int, request: bytes, *, rate: float, seconds: float, connections: int
) -> OpenLoopResult:
    total = max(int(rate * seconds), connections)
    start = time.perf_counter() + 0.2
    times = [start + index / rate for index in range(total)]
    latencies: list[float] = []
    # A collection in this process would stall every answer in flight and count as the server's
    # latency: none while measuring (a few seconds of garbage is a few MiB).
    gc.disable()
    try:
        errors = await asyncio.gather(
            *(
                _connection(host, port, request, times[offset::connections], latencies)
                for offset in range(connections)
            )
        )
    finally:
        gc.enable()
    cuts = statistics.quantiles(latencies, n=100)
    return OpenLoopResult(
        sent=len(latencies),
        errors=sum(errors),
        seconds=times[-1] - times[0],
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=cuts[98] * 1000,
    )


def http_request(
    method: str, path: str, *, host: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    """The bytes of one keep-alive HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
