"""`make up POOLER=1 REPLICAS=3` under load: one replica of each service killed (SIGKILL), and
`make rollout` of each service.

The native stack as a deployment would run it: three processes per service behind HAProxy,
PgBouncer in transaction mode between them and Postgres. 100 requests/s (things-svc's writes and
reads, users-svc's `GET /users/me`). Killed: 10 s into 30 s of load, one replica of each service
is killed; what comes after the kill must succeed through the others, and Postgres must never
hold more server connections than PgBouncer's pool. Rolled out: every replica of both services
replaced, one after the other, and not one request may fail. What was acknowledged must be kept.
"""

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from devstack.postgres import asyncpg_dsn, scratch_dir
from native_stack import POOL_SIZE
from stack_runner import StackRunner

from .conftest import Report
from .load import Call, Record, Run, open_loop

pytestmark = [pytest.mark.reliability, pytest.mark.pooler]

PASSWORD = "correct horse battery"
RATE_EACH = 50  # requests/s on each service
SECONDS = 30
KILL_AT = 10
# A request in flight on the killed replica fails with it; HAProxy's checks (every 0.5 s) take
# the replica out, and a connection it refuses meanwhile is retried on another replica.
SETTLED_AFTER_KILL = 2.0
# Load before the first rollout starts and after the last one ends.
ROLLOUT_MARGIN = 2.0


@pytest.fixture
def scaled_stack() -> Iterator[StackRunner]:
    with scratch_dir("replicas-") as state_dir:
        runner = StackRunner(state_dir)
        started = runner.run("up", "--mode", "native", "--pooler", "--replicas", "3")
        assert started.returncode == 0, started.stdout + started.stderr
        try:
            yield runner
        finally:
            runner.run("down")


def token_for(users_url: str) -> str:
    with httpx.Client(base_url=f"{users_url}/api/v1", timeout=30) as client:
        body = {"email": "load@example.com", "full_name": "Load", "password": PASSWORD}
        assert client.post("/users", json=body).status_code == 201
        login = client.post("/auth/login", json={"email": body["email"], "password": PASSWORD})
        assert login.status_code == 200, login.text
        return str(login.json()["access_token"])


def replicas_of(runner: StackRunner, app: str) -> list[psutil.Process]:
    """The uvicorn processes of the stack serving `app`."""
    state_dir = str(runner.stack.state_dir)
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "common.serve" in cmdline and app in cmdline and process.info["name"] != "bash":
            with contextlib.suppress(psutil.Error):
                if process.environ().get("STACK_DIR") == state_dir:
                    found.append(process)
    return found


def kill_one_replica(runner: StackRunner, app: str) -> int:
    """SIGKILL one uvicorn process serving `app` (its loop starts it again a second later)."""
    process = replicas_of(runner, app)[0]
    process.kill()
    return process.pid


async def peak_server_connections(runner: StackRunner, stop: asyncio.Event) -> dict[str, int]:
    """The most client connections Postgres held for each service's database, sampled."""
    dsn = asyncpg_dsn(runner.postgres().url())
    peaks: dict[str, int] = {}
    connection = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            rows = await connection.fetch(
                "SELECT datname, count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND datname <> 'postgres' GROUP BY datname"
            )
            for database, count in rows:
                peaks[database] = max(peaks.get(database, 0), int(count))
            await asyncio.sleep(0.2)
    finally:
        await connection.close()
    return peaks


def summary(records: list[Record], kill: float) -> tuple[list[Record], list[Record]]:
    """The failures while the killed replica was being taken out, and those after."""
    failed = [r for r in records if r.status is None or r.status >= 400]
    during = [r for r in failed if kill <= r.start < kill + SETTLED_AFTER_KILL]
    after = [r for r in failed if r.start >= kill + SETTLED_AFTER_KILL]
    return during, after


def acknowledged_writes(run: Run) -> set[str]:
    return {str(r.body["id"]) for r in run.records if r.status == 201 and isinstance(r.body, dict)}


async def stored(runner: StackRunner, ids: set[str]) -> set[str]:
    dsn = asyncpg_dsn(runner.postgres().url(database="things"))
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT id::text FROM things WHERE id::text = ANY($1)", list(ids)
        )
        return {row[0] for row in rows}
    finally:
        await connection.close()


def loads_on(
    things_url: str,
    users_url: str,
    *,
    headers: dict[str, str],
    runs: dict[str, Run],
    seconds: float = SECONDS,
    until: asyncio.Event | None = None,
) -> list[Coroutine[Any, Any, Run]]:
    """Open-loop load on both services: things-svc's writes and reads, users-svc's `/me`."""

    def things(index: int) -> Call:
        if index % 2:
            return Call("read", "GET", "/api/v1/things?limit=5")
        return Call("write", "POST", "/api/v1/things", {"name": f"load-{index}"})

    return [
        open_loop(
            things_url,
            things,
            rate=RATE_EACH,
            seconds=seconds,
            headers=headers,
            run=runs["things-svc"],
            until=until,
        ),
        open_loop(
            users_url,
            lambda _: Call("read", "GET", "/api/v1/users/me"),
            rate=RATE_EACH,
            seconds=seconds,
            headers=headers,
            run=runs["users-svc"],
            until=until,
        ),
    ]


async def test_a_killed_replica_of_each_service_loses_nothing(
    scaled_stack: StackRunner, report: Report
) -> None:
    things_url = scaled_stack.service("things-svc").base_url
    users_url = scaled_stack.service("users-svc").base_url
    headers = {"Authorization": f"Bearer {await asyncio.to_thread(token_for, users_url)}"}

    runs = {name: Run(started_at=time.monotonic()) for name in ("things-svc", "users-svc")}
    stop = asyncio.Event()
    sampler = asyncio.create_task(peak_server_connections(scaled_stack, stop))
    loads = loads_on(things_url, users_url, headers=headers, runs=runs)
    load = asyncio.gather(*loads)
    await asyncio.sleep(KILL_AT)
    kill = runs["things-svc"].at(time.monotonic())
    killed = [kill_one_replica(scaled_stack, f"{p}.main:app") for p in ("things_svc", "users_svc")]
    await load
    stop.set()
    peaks = await sampler

    lines, failures_after = [], 0
    for name, run in runs.items():
        during, after = summary(run.records, kill)
        failures_after += len(after)
        statuses = Counter(r.status for r in after)
        lines.append(
            f"{name}: {len(run.records)} requests, {len(during)} failed while its killed "
            f"replica was taken out, {len(after)} after {dict(statuses)}"
        )
    acknowledged = acknowledged_writes(runs["things-svc"])
    lost = acknowledged - await stored(scaled_stack, acknowledged)
    report(
        f"REPLICAS=3 POOLER=1 @{2 * RATE_EACH} req/s for {SECONDS} s, replicas {killed} "
        f"killed at {KILL_AT} s: "
        + "; ".join(lines)
        + f"; writes acknowledged {len(acknowledged)}, lost {len(lost)}; "
        f"peak Postgres server connections {peaks} (PgBouncer pool {POOL_SIZE} per database)"
    )
    assert failures_after == 0
    assert lost == set()
    assert acknowledged
    assert all(peak <= POOL_SIZE for peak in peaks.values()), peaks


async def test_a_rollout_of_each_service_under_load_fails_no_request(
    scaled_stack: StackRunner, report: Report
) -> None:
    """`make rollout` of things-svc, then of users-svc, under 100 requests/s from before the
    first to after the second: every replica replaced, every request answered 2xx."""
    things_url = scaled_stack.service("things-svc").base_url
    users_url = scaled_stack.service("users-svc").base_url
    headers = {"Authorization": f"Bearer {await asyncio.to_thread(token_for, users_url)}"}

    runs = {name: Run(started_at=time.monotonic()) for name in ("things-svc", "users-svc")}
    done = asyncio.Event()
    loads = loads_on(things_url, users_url, headers=headers, runs=runs, seconds=60, until=done)
    load = asyncio.gather(*loads)
    await asyncio.sleep(ROLLOUT_MARGIN)
    rollouts: dict[str, float] = {}
    for name in runs:
        started = time.monotonic()
        rolled = await asyncio.to_thread(scaled_stack.run, "rollout", "--service", name)
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        assert rolled.stdout.count(f"{name}: ") == 3, rolled.stdout
        rollouts[name] = time.monotonic() - started
    rolled_out = runs["things-svc"].at(time.monotonic())
    await asyncio.sleep(ROLLOUT_MARGIN)
    done.set()
    await load

    lines, failed = [], 0
    for name, run in runs.items():
        failures = [r for r in run.records if r.status is None or not 200 <= r.status < 300]
        failed += len(failures)
        longest = max(r.duration for r in run.records)
        lines.append(
            f"{name}: rolled out in {rollouts[name]:.1f} s, {len(run.records)} requests, "
            f"{len(failures)} failed {dict(Counter(r.status for r in failures))}, "
            f"longest {longest:.2f} s"
        )
    acknowledged = acknowledged_writes(runs["things-svc"])
    lost = acknowledged - await stored(scaled_stack, acknowledged)
    apps = ("things_svc.main:app", "users_svc.main:app")
    served_by = {app: len(replicas_of(scaled_stack, app)) for app in apps}
    stopped = scaled_stack.run("down")
    loaded = max(r.start for run in runs.values() for r in run.records)
    report(
        f"REPLICAS=3 POOLER=1 @{2 * RATE_EACH} req/s for {loaded:.1f} s, make rollout of each "
        "service in turn: "
        + "; ".join(lines)
        + f"; writes acknowledged {len(acknowledged)}, lost {len(lost)}"
    )
    # The load ran from before the first rollout until after the last.
    assert all(max(r.start for r in run.records) > rolled_out for run in runs.values())
    assert failed == 0
    assert lost == set()
    assert acknowledged
    # The old replicas are gone, and `make down` finds and stops the new ones.
    assert served_by == dict.fromkeys(apps, 3)
    assert stopped.returncode == 0, stopped.stderr
    assert [replicas_of(scaled_stack, app) for app in apps] == [[], []]
