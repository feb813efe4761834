"""The pool run dry, clients hanging up mid-request, and SIGTERM with requests in flight.

Requests hold pool connections for real: a session of the test locks a thing's row, so every
PATCH of that thing waits inside its transaction, holding its connection, until the lock goes
or `statement_timeout` cancels it.
"""

import asyncio
import random
import time
from collections.abc import Awaitable
from typing import Any

import aiohttp
import pytest

from common.settings import AppBaseSettings

from .conftest import Report, Things
from .load import Call, open_loop, percentile
from .processes import row_locked, sessions_of, wait_for_sessions

pytestmark = pytest.mark.reliability

SERVICE = "things-svc"  # its application_name in pg_stat_activity
DEFAULTS = AppBaseSettings.model_fields
POOL_SIZE: int = DEFAULTS["db_pool_size"].default
POOL_TIMEOUT: float = DEFAULTS["db_pool_timeout_seconds"].default


async def timed(request: Awaitable[tuple[int, Any]]) -> tuple[int, float]:
    start = time.monotonic()
    status, _ = await request
    return status, time.monotonic() - start


async def call(
    client: aiohttp.ClientSession, method: str, path: str, json: Any = None
) -> tuple[int, Any]:
    async with client.request(method, path, json=json) as response:
        return response.status, await response.read()


async def create_thing(client: aiohttp.ClientSession) -> str:
    async with client.post("/api/v1/things", json={"name": "contended"}) as response:
        assert response.status == 201
        return str((await response.json())["id"])


def busy(states: list[str]) -> list[str]:
    """Sessions doing something: anything but idle between requests."""
    return [state for state in states if state != "idle"]


async def assert_whole_pool_free(things: Things, client: aiohttp.ClientSession) -> None:
    """No connection is left checked out: as many requests as the pool holds get one at once."""
    states = await wait_for_sessions(
        things.database, SERVICE, lambda s: not busy(s), timeout_seconds=5, pooler=things.pooler
    )
    assert busy(states) == []
    thing = await create_thing(client)
    async with row_locked(things.database, "things", thing):
        holders = [
            asyncio.create_task(call(client, "PATCH", f"/api/v1/things/{thing}", {"name": "n"}))
            for _ in range(POOL_SIZE)
        ]
        states = await wait_for_sessions(
            things.database, SERVICE, lambda s: s.count("locked") == POOL_SIZE, pooler=things.pooler
        )
        assert states.count("locked") == POOL_SIZE
    assert [status for status, _ in await asyncio.gather(*holders)] == [200] * POOL_SIZE


async def test_pool_exhaustion_answers_503_within_the_pool_timeout(
    things: Things, report: Report
) -> None:
    async with aiohttp.ClientSession(things.url, headers=things.headers) as client:
        thing = await create_thing(client)
        async with row_locked(things.database, "things", thing):
            holders = [
                asyncio.create_task(
                    timed(call(client, "PATCH", f"/api/v1/things/{thing}", {"name": "held"}))
                )
                for _ in range(POOL_SIZE)
            ]
            await wait_for_sessions(
                things.database,
                SERVICE,
                lambda s: s.count("locked") == POOL_SIZE,
                pooler=things.pooler,
            )
            waiters = await asyncio.gather(
                *(timed(call(client, "POST", "/api/v1/things", {"name": "w"})) for _ in range(20))
            )
            # Reads have a pool of their own (autocommit): a full write pool does not stop them.
            readers = await asyncio.gather(
                *(timed(call(client, "GET", "/api/v1/things")) for _ in range(20))
            )
            # The holders end when statement_timeout cancels their UPDATE.
            held = await asyncio.gather(*holders)
        await assert_whole_pool_free(things, client)

    slowest_waiter = max(duration for _, duration in waiters)
    report(
        f"pool exhaustion: {len(waiters)} writes past a full pool of {POOL_SIZE}: statuses "
        f"{sorted({status for status, _ in waiters})}, slowest {slowest_waiter:.2f} s "
        f"(limit {POOL_TIMEOUT + 0.5} s); {len(readers)} reads meanwhile: statuses "
        f"{sorted({status for status, _ in readers})}; the {POOL_SIZE} lock-bound holders: "
        f"statuses {sorted({status for status, _ in held})} after "
        f"{max(d for _, d in held):.1f} s (statement_timeout); afterwards 0 connections checked "
        "out, whole pool usable"
    )
    assert {status for status, _ in waiters} == {503}
    assert {status for status, _ in readers} == {200}
    assert slowest_waiter <= POOL_TIMEOUT + 0.5
    assert {status for status, _ in held} == {503}


async def hang_up(port: int, request: bytes, *, wait_seconds: float) -> None:
    """Send (part of) a request, wait, and reset the connection without reading the answer."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        await asyncio.sleep(wait_seconds)
    finally:
        writer.transport.abort()


def raw_request(method: str, path: str, token: str, body: bytes, *, declared: int) -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    )
    return head.encode() + body


async def test_1000_requests_cancelled_by_the_client(things: Things, report: Report) -> None:
    rng = random.Random(7)
    token = things.headers["Authorization"]
    async with aiohttp.ClientSession(things.url, headers=things.headers) as client:
        ids = [await create_thing(client) for _ in range(10)]

    def one(index: int) -> bytes:
        thing = ids[index % len(ids)]
        method, path, body = rng.choice(
            [
                ("GET", "/api/v1/things", b""),
                ("GET", f"/api/v1/things/{thing}", b""),
                ("POST", "/api/v1/things", b'{"name": "cancelled"}'),
                ("PATCH", f"/api/v1/things/{thing}", b'{"name": "cancelled"}'),
            ]
        )
        # A third hang up halfway through the body, the others after sending all of it.
        if body and index % 3 == 0:
            return raw_request(method, path, token, body[: len(body) // 2], declared=len(body))
        return raw_request(method, path, token, body, declared=len(body))

    async def cancel_all() -> None:
        async with asyncio.TaskGroup() as group:
            for index in range(1000):
                group.create_task(
                    hang_up(things.process.port, one(index), wait_seconds=rng.uniform(0, 0.05))
                )
                await asyncio.sleep(0.004)  # about 250 a second

    await cancel_all()
    async with aiohttp.ClientSession(things.url, headers=things.headers) as client:
        await assert_whole_pool_free(things, client)
    idle_in_transaction = (await sessions_of(things.database, SERVICE, things.pooler)).count(
        "idle in transaction"
    )
    after = await open_loop(
        things.url,
        lambda i: Call("read", "GET", f"/api/v1/things/{ids[i % len(ids)]}"),
        rate=100,
        seconds=2,
        headers=things.headers,
    )
    statuses = after.statuses()
    report(
        f"1000 client-cancelled requests: afterwards {idle_in_transaction} sessions idle in "
        f"transaction, 0 connections checked out (whole pool of {POOL_SIZE} usable); next "
        f"{len(after.records)} requests: {statuses}, p99 "
        f"{percentile([r.duration for r in after.records], 0.99):.3f} s"
    )
    assert idle_in_transaction == 0
    assert statuses == {200: 200}


async def test_sigterm_with_50_requests_in_flight(things: Things, report: Report) -> None:
    async with aiohttp.ClientSession(things.url, headers=things.headers) as client:
        thing = await create_thing(client)
        async with row_locked(things.database, "things", thing):
            in_flight = [
                asyncio.create_task(
                    call(client, "PATCH", f"/api/v1/things/{thing}", {"name": f"n{index}"})
                )
                for index in range(50)
            ]
            await wait_for_sessions(
                things.database,
                SERVICE,
                lambda s: s.count("locked") == POOL_SIZE,
                pooler=things.pooler,
            )
            await asyncio.sleep(0.5)  # the other 40 reach the pool's queue
            things.process.terminate()
            await asyncio.sleep(1)
        statuses = [status for status, _ in await asyncio.gather(*in_flight)]
    exit_code = await things.process.wait_exit(30)
    left = await wait_for_sessions(
        things.database, SERVICE, lambda s: not s, timeout_seconds=5, pooler=things.pooler
    )
    report(
        f"SIGTERM with 50 requests in flight: statuses {sorted(set(statuses))} "
        f"({statuses.count(200)}/50 completed), exit code {exit_code}, "
        f"{len(left)} database sessions left"
    )
    assert statuses == [200] * 50
    assert exit_code == 0
    assert left == []
