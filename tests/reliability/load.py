"""A small open-loop load generator, loopback only, bounded in count and time.

Open loop: request `i` is sent at `i / rate` seconds after the start, whether or not earlier
requests have been answered, so a slow or stuck server meets the same arrival rate a real one
would (a closed loop would slow down with it and hide the problem). Every request is recorded
with its start, its end and its status (None when no HTTP answer came: a refused or reset
connection, or the client's own timeout).
"""

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

MAX_REQUESTS = 10_000
MAX_SECONDS = 60.0


@dataclass(frozen=True)
class Call:
    """What to send: a method, a path (on the target), and a JSON body for writes."""

    kind: str  # a label for the summary: "read", "write", ...
    method: str
    path: str
    json: dict[str, Any] | None = None


@dataclass
class Record:
    call: Call
    start: float  # seconds since the run's start, as sent
    end: float
    status: int | None
    body: Any = None
    retry_after: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class Run:
    started_at: float  # time.monotonic() of the run's time zero
    records: list[Record] = field(default_factory=list)

    def at(self, monotonic: float) -> float:
        """A `time.monotonic()` reading on the run's clock."""
        return monotonic - self.started_at

    def statuses(self) -> dict[int | None, int]:
        counts: dict[int | None, int] = {}
        for record in self.records:
            counts[record.status] = counts.get(record.status, 0) + 1
        return counts


async def open_loop(
    base_url: str,
    calls: Callable[[int], Call],
    *,
    rate: float,
    seconds: float,
    headers: dict[str, str] | None = None,
    timeout_seconds: float = 10.0,
    started: asyncio.Event | None = None,
    run: Run | None = None,
    until: asyncio.Event | None = None,
) -> Run:
    """Send `calls(i)` at `rate` per second for `seconds`, or until `until` is set; return every
    request's record."""
    if urlsplit(base_url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the load generator only targets loopback")
    count = int(rate * seconds)
    if count > MAX_REQUESTS or seconds > MAX_SECONDS:
        raise ValueError(f"at most {MAX_REQUESTS} requests over {MAX_SECONDS} s")
    run = run or Run(started_at=time.monotonic())
    # aiohttp rather than httpx: at 100 requests/s httpx's pool costs more CPU than the server
    # under test, and on a small machine the client would become the bottleneck it measures.
    async with (
        aiohttp.ClientSession(
            base_url=base_url,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            connector=aiohttp.TCPConnector(limit=1000),
        ) as client,
        asyncio.TaskGroup() as group,
    ):
        if started is not None:
            started.set()
        for index in range(count):
            delay = run.started_at + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if until is not None and until.is_set():
                break
            group.create_task(_send(client, calls(index), run))
    return run


async def _send(client: aiohttp.ClientSession, call: Call, run: Run) -> None:
    start = time.monotonic()
    status: int | None = None
    body: Any = None
    retry_after: str | None = None
    try:
        async with client.request(call.method, call.path, json=call.json) as response:
            status = response.status
            retry_after = response.headers.get("Retry-After")
            if response.content_type.endswith("json"):
                body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError):
        pass
    end = run.at(time.monotonic())
    run.records.append(Record(call, run.at(start), end, status, body, retry_after))


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
