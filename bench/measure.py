"""The measurements: wrk's closed loop, Postgres's own counters, and the connections a process
holds."""

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psutil

from common.background import in_background

# An idle Postgres backend publishes its pending counters (pg_stat_database) within 10 s.
STATS_FLUSH_SECONDS = 11.0
CONNECTION_SAMPLE_SECONDS = 0.1


@dataclass
class Measurement:
    endpoint: str
    target: str
    service: str  # the database it served from: things, users
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    requests: int = 0
    cpu_seconds: float = 0.0
    transactions: int | None = None
    sessions: int | None = None
    peak_connections: int = 0


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int


def parse_duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[match.group(2)]
    return float(match.group(1)) * scale


async def wrk(
    url: str,
    *,
    token: str,
    seconds: float,
    connections: int,
    script: Path | None,
    timeout_seconds: float = 2,
) -> WrkResult:
    """One closed-loop run; any error response or socket error (a request that takes longer
    than `timeout_seconds` included) fails it."""
    arguments = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    arguments += [f"--timeout={timeout_seconds:g}s"]
    arguments += ["-H", f"Authorization: Bearer {token}"]
    arguments += ["-s", str(script)] if script else []
    process = await asyncio.create_subprocess_exec(
        *arguments, url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output = (await process.communicate())[0].decode()
    except BaseException:
        # Cancelled (the run is stopping): asyncio leaves the child running.
        with suppress(ProcessLookupError):
            process.kill()
        raise
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"\s50%\s+(\S+)", output)
    p99 = re.search(r"\s99%\s+(\S+)", output)
    count = re.search(r"(\d+) requests in", output)
    failed = re.search(r"Non-2xx or 3xx responses|Socket errors", output)
    if process.returncode or not (rps and p50 and p99 and count) or failed:
        raise RuntimeError(f"wrk on {url} failed or saw errors:\n{output}")
    return WrkResult(
        float(rps.group(1)),
        parse_duration_ms(p50.group(1)),
        parse_duration_ms(p99.group(1)),
        int(count.group(1)),
    )


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


class Counters:
    """pg_stat_database deltas per measurement, read once the backends have published them."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection
        self.quiet_since: dict[str, float] = {}
        self.open: dict[str, tuple[Measurement, tuple[int, int]]] = {}

    async def read(self, database: str) -> tuple[int, int]:
        quiet = self.quiet_since.get(database)
        if quiet is not None:
            await asyncio.sleep(max(0.0, quiet + STATS_FLUSH_SECONDS - time.monotonic()))
        row = await self.connection.fetchrow(
            "SELECT xact_commit + xact_rollback, sessions FROM pg_stat_database WHERE datname = $1",
            database,
        )
        assert row is not None
        return int(row[0]), int(row[1])

    async def begin(self, database: str, measurement: Measurement | None) -> None:
        now = await self.read(database)
        self.close(database, now)
        if measurement is not None:
            self.open[database] = (measurement, now)

    def end(self, database: str) -> None:
        self.quiet_since[database] = time.monotonic()

    def close(self, database: str, now: tuple[int, int]) -> None:
        if database in self.open:
            measurement, before = self.open.pop(database)
            measurement.transactions = now[0] - before[0]
            measurement.sessions = now[1] - before[1]

    async def close_all(self) -> None:
        for database in list(self.open):
            self.close(database, await self.read(database))


async def connections_to(admin: asyncpg.Connection, database: str) -> int:
    """The client connections Postgres has open to `database` right now."""
    count = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = "
        "'client backend'",
        database,
    )
    return int(count)


@asynccontextmanager
async def peak_connections(
    admin: asyncpg.Connection, database: str, measurement: Measurement
) -> AsyncIterator[None]:
    """Samples the connections to `database` while the block runs; keeps the highest."""

    async def sample() -> None:
        while True:
            count = await connections_to(admin, database)
            measurement.peak_connections = max(measurement.peak_connections, count)
            await asyncio.sleep(CONNECTION_SAMPLE_SECONDS)

    async with in_background(sample()):
        yield
