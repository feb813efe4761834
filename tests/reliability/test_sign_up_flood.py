"""A flood of sign-ups from one client against a users-svc process with production's password
hashing: past the per-client limit the flood is refused before any hash (429), and a sign-up
that is let through hashes before it takes a connection, so another user's logins and reads go
on answering. Its figures: the sign-ups' answers, the other user's, the longest request."""

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devstack.postgres import EmbeddedPostgres

from .conftest import Report
from .load import Call, Run, open_loop
from .users_stage import sign_up, users_processes

pytestmark = pytest.mark.reliability

PASSWORD = "correct horse battery"
FLOOD_SECONDS = 20.0
FLOOD_RATE = 20.0  # sign-ups per second: 400 in all, twice the rate tried on 2026-12-07
READS_PER_LOGIN = 5
# Production's argon2 costs (the suite's other scenarios hash cheaply).
HASHING = {"USERS_PASSWORD_TIME_COST": "3", "USERS_PASSWORD_MEMORY_KIB": "65536"}


@dataclass(frozen=True)
class Answer:
    kind: str  # "login" or "read"
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    seconds: float


async def timed(
    kind: str, request: Awaitable[httpx.Response]
) -> tuple[Answer, httpx.Response | None]:
    start = time.monotonic()
    try:
        response = await request
    except httpx.TransportError:
        return Answer(kind, None, time.monotonic() - start), None
    return Answer(kind, response.status_code, time.monotonic() - start), response


async def other_user(
    client: httpx.AsyncClient, email: str, flood: "asyncio.Task[Run]"
) -> list[Answer]:
    """While the flood lasts: log in, read the account a few times with the new token, again."""
    answers: list[Answer] = []
    while not flood.done():
        login, response = await timed(
            "login", client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        )
        answers.append(login)
        token = (
            response.json()["access_token"] if response is not None and login.status == 200 else ""
        )
        for _ in range(READS_PER_LOGIN):
            read, _ = await timed(
                "read", client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
            )
            answers.append(read)
    return answers


def flood_call(index: int) -> Call:
    body = {"email": f"flood-{index}@x.io", "full_name": "Flood", "password": PASSWORD}
    return Call("sign-up", "POST", "/api/v1/users", body)


async def test_a_sign_up_flood_from_one_client_leaves_other_users_answered(
    postgres: EmbeddedPostgres, workdir: Path, report: Report
) -> None:
    async with (
        users_processes(postgres, workdir, name="sign_up_flood", env=HASHING) as (
            (users,),
            database,
        ),
        httpx.AsyncClient(base_url=users.url, timeout=10) as client,
    ):
        await sign_up(users.url, "ada@x.io", PASSWORD, admin=False, database=database)
        flooding = asyncio.Event()
        flood = asyncio.create_task(
            open_loop(
                users.url, flood_call, rate=FLOOD_RATE, seconds=FLOOD_SECONDS, started=flooding
            )
        )
        await flooding.wait()
        answers = await other_user(client, "ada@x.io", flood)
        run = await flood

    sign_ups = run.statuses()
    failed = [answer for answer in answers if answer.status != 200]
    longest = max(answer.seconds for answer in answers)
    report(
        f"sign-up flood, {len(run.records)} in {FLOOD_SECONDS:.0f} s from one client: "
        f"201 x {sign_ups.get(201, 0)}, 429 x {sign_ups.get(429, 0)}, "
        f"503 x {sign_ups.get(503, 0)}, other {sorted(set(sign_ups) - {201, 429, 503}, key=str)}; "
        f"meanwhile another user's logins and reads: {len(answers) - len(failed)} ok, "
        f"{len(failed)} failed {[(a.kind, a.status, round(a.seconds, 1)) for a in failed]}, "
        f"longest {longest * 1000:.0f} ms"
    )
    assert failed == []
    assert sum(answer.kind == "login" for answer in answers) > 1
    # Refused before any hash once past the limit.
    assert sign_ups.get(429, 0) > FLOOD_RATE * FLOOD_SECONDS / 2
