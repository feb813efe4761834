"""The hashing limit: a bounded number of argon2 hashes at once, 503 beyond a short wait."""

import asyncio
import time

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from common.testing import ServiceUnderTest
from common.testing.plugin import empty_tables, open_client

PROBLEM = "application/problem+json"


async def test_hashes_beyond_the_limit_are_refused_with_503_not_queued(
    service: ServiceUnderTest, database_url: URL, engine: AsyncEngine
) -> None:
    # The default argon2 costs (tens of milliseconds a hash), one hash at a time, a short wait.
    settings = service.settings(
        database_url,
        password_time_cost=3,
        password_memory_kib=65_536,
        password_hash_concurrency=1,
        password_hash_wait_seconds=0.05,
    )
    bodies = [
        {"email": f"user-{n}@example.com", "full_name": "User", "password": "correct horse"}
        for n in range(6)
    ]
    try:
        async with open_client(service.app(settings)) as client:
            started = time.monotonic()
            responses = await asyncio.gather(
                *(client.post("/api/v1/users", json=body) for body in bodies)
            )
            elapsed = time.monotonic() - started
    finally:
        await empty_tables(engine)

    statuses = sorted(response.status_code for response in responses)
    refused = [response for response in responses if response.status_code == 503]
    assert statuses[0] == 201
    assert set(statuses) == {201, 503}, statuses
    assert {(r.headers["content-type"], r.headers["retry-after"]) for r in refused} == {
        (PROBLEM, "1")
    }
    # Refused at once, not after the others' hashes.
    assert elapsed < 5
