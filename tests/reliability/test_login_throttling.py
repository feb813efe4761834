"""Password guessing against two users-svc processes on one database: the failures one process
counts, the other refuses on. Its figures: the answers, the Retry-After given, the wait."""

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.postgres import EmbeddedPostgres
from devstack.processes import ServiceProcess

from .conftest import Report
from .users_stage import users_processes

pytestmark = pytest.mark.reliability

PASSWORD = "correct horse battery"
LIMIT = 20
WINDOW_SECONDS = 8
LOGIN = "/api/v1/auth/login"


def answer(response: httpx.Response) -> tuple[int, dict[str, Any]]:
    body = {k: v for k, v in response.json().items() if k not in {"request_id", "instance"}}
    return response.status_code, body


async def guess(
    client: httpx.AsyncClient, processes: list[ServiceProcess], email: str, times: int
) -> list[int]:
    """`times` wrong passwords for `email`, sent to each process in turn."""
    statuses = []
    for attempt in range(times):
        url = processes[attempt % len(processes)].url + LOGIN
        response = await client.post(url, json={"email": email, "password": f"guess {attempt}"})
        statuses.append(response.status_code)
    return statuses


async def log_in_on_each(
    client: httpx.AsyncClient, processes: list[ServiceProcess], *logins: tuple[str, str]
) -> list[httpx.Response]:
    """Each (email, password) sent to each process."""
    return [
        await client.post(process.url + LOGIN, json={"email": email, "password": password})
        for process in processes
        for email, password in logins
    ]


LIMITED = (
    429,
    {
        "type": "about:blank",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "Too many wrong passwords for this account or from this address. Retry later.",
    },
)


async def test_twenty_wrong_passwords_lock_the_account_on_every_process_until_the_window_ends(
    postgres: EmbeddedPostgres, workdir: Path, report: Report
) -> None:
    settings = {"USERS_LOGIN_WINDOW_SECONDS": str(WINDOW_SECONDS)}
    async with (
        users_processes(postgres, workdir, name="throttled", count=2, env=settings) as (
            (first, second),
            _,
        ),
        httpx.AsyncClient(timeout=10) as client,
    ):
        signup = {"email": "ada@x.io", "full_name": "Ada", "password": PASSWORD}
        assert (await client.post(f"{first.url}/api/v1/users", json=signup)).status_code == 201
        started = time.monotonic()
        known = await guess(client, [first, second], "ada@x.io", LIMIT)
        unknown = await guess(client, [second, first], "nobody@x.io", LIMIT)
        limited = await log_in_on_each(
            client,
            [first, second],
            ("ada@x.io", "guess"),
            ("ada@x.io", PASSWORD),
            ("nobody@x.io", "guess"),
        )
        retry_after = {int(response.headers["retry-after"]) for response in limited}
        await asyncio.sleep(max(retry_after))
        after = await log_in_on_each(client, [second, first], ("ada@x.io", PASSWORD))
        waited = time.monotonic() - started

    report(
        f"login throttling, 2 users-svc processes on one database, limit {LIMIT} per account: "
        f"{LIMIT} wrong passwords split between them {sorted(set(known))}, an unknown email "
        f"{sorted(set(unknown))}, then {sorted({r.status_code for r in limited})} on "
        f"both for either email (right password too), Retry-After {sorted(retry_after)} s of a "
        f"{WINDOW_SECONDS} s window; after it {[r.status_code for r in after]} "
        f"({waited:.1f} s in all)"
    )
    assert known == unknown == [401] * LIMIT
    assert [answer(response) for response in limited] == [LIMITED] * len(limited)
    assert {r.headers["content-type"] for r in limited} == {"application/problem+json"}
    assert all(1 <= seconds <= WINDOW_SECONDS for seconds in retry_after)
    assert [response.status_code for response in after] == [200, 200]
