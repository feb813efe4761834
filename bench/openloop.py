"""An open-loop HTTP/1.1 load generator: requests leave on a fixed schedule, answered or not.

wrk is closed loop (a connection sends its next request when the last one is answered), so a
slow response delays the requests behind it and hides them from the latency figures. Here each
request has a send time fixed in advance (`rate` per second) and leaves on whichever keep-alive
connection is idle. A request that finds every connection busy waits, and its latency runs from
its scheduled time, so waiting behind slow responses counts.

The generator shares the machine's cores with the server and Postgres, and its own delays are not
the server's, so:
- the schedule is kept by an interval timer (`setitimer`, microseconds), not by the event loop's
  timers: uvloop keeps those in whole milliseconds, which sent requests in bursts and late;
- a request that found a connection idle is timed from the moment it was written, not from when
  it was due: a client on another machine would not have been held back by this process;
- how late the generator woke up for its requests is reported (`late_p99_ms`): the precision of
  the schedule on this host, whatever the server does.
"""

import asyncio
import gc
import signal
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

# A request due sooner than this leaves at once: waking up on a signal costs about as much.
MIN_SLEEP_SECONDS = 50e-6
DRAIN_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class OpenLoopResult:
    sent: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    late_p99_ms: float

    @property
    def rate(self) -> float:
        return self.sent / self.seconds


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, on_answer: Callable[["_Connection", float, int], None]) -> None:
        self._on_answer = on_answer
        self._buffer = b""
        self._started = 0.0
        self._transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but are one.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True

    def send(self, request: bytes, started: float) -> None:
        assert self._transport is not None
        self._started = started
        self._transport.write(request)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self._buffer[:end].lower()
        if b"transfer-encoding: chunked" in head:
            raise RuntimeError("the generator reads Content-Length bodies only, not chunked ones")
        length = 0
        start = head.find(b"\r\ncontent-length:")
        if start >= 0:
            line_end = head.find(b"\r\n", start + 2)
            length = int(head[start + 17 : line_end if line_end >= 0 else None])
        if len(self._buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        self._buffer = self._buffer[end + 4 + length :]
        self._on_answer(self, time.perf_counter() - self._started, status)


class _Alarm:
    """Sleeps until an instant with microsecond precision (SIGALRM from `setitimer`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiter: asyncio.Future[None] | None = None

    def __enter__(self) -> "_Alarm":
        self._loop.add_signal_handler(signal.SIGALRM, self._ring)
        return self

    def __exit__(self, *_: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        self._loop.remove_signal_handler(signal.SIGALRM)

    def _ring(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def until(self, instant: float) -> None:
        delay = instant - time.perf_counter()
        if delay < MIN_SLEEP_SECONDS:
            return
        self._waiter = self._loop.create_future()
        signal.setitimer(signal.ITIMER_REAL, delay)
        await self._waiter


async def open_loop(
    host: str, port: int, request: bytes, *, rate: float, seconds: float, connections: int
) -> OpenLoopResult:
    loop = asyncio.get_running_loop()
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    latencies: list[float] = []
    statuses: list[int] = []

    def on_answer(connection: _Connection, latency: float, status: int) -> None:
        latencies.append(latency)
        statuses.append(status)
        idle.put_nowait(connection)

    opened = [
        (await loop.create_connection(lambda: _Connection(on_answer), host, port))[1]
        for _ in range(connections)
    ]
    for connection in opened:
        idle.put_nowait(connection)
    total = max(int(rate * seconds), connections)
    start = time.perf_counter() + 0.2
    times = [start + index / rate for index in range(total)]
    lateness: list[float] = []
    # A collection in this process would stall every answer in flight and count as the server's
    # latency: none while measuring (a few seconds of garbage is a few MiB).
    gc.disable()
    try:
        with _Alarm(loop) as alarm:
            for due in times:
                await alarm.until(due)
                lateness.append(time.perf_counter() - due)
                if idle.empty():
                    connection = await asyncio.wait_for(idle.get(), DRAIN_TIMEOUT_SECONDS)
                    started = due
                else:
                    connection = idle.get_nowait()
                    started = time.perf_counter()
                connection.send(request, started)
            deadline = time.perf_counter() + DRAIN_TIMEOUT_SECONDS
            while len(latencies) < total and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
        if any(connection.lost for connection in opened) or len(latencies) < total:
            raise RuntimeError(f"port {port} closed connections or left requests unanswered")
    finally:
        gc.enable()
        for connection in opened:
            connection.close()
    return OpenLoopResult(
        sent=total,
        errors=sum(not 200 <= status < 300 for status in statuses),
        seconds=times[-1] - times[0],
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=statistics.quantiles(latencies, n=100)[98] * 1000,
        late_p99_ms=statistics.quantiles(lateness, n=100)[98] * 1000,
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
