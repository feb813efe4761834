"""users-svc stopped under load on things-svc's sharing endpoint, which calls it: things-svc
answers 503 with `Retry-After` at once, its circuit breaker keeps it from calling users-svc more
than once in a while, and sharing works again soon after users-svc is back. Its figures: the
answers before, during and after, the calls things-svc made while users-svc was down, and the
time to the first success after its return."""

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.postgres import EmbeddedPostgres
from devstack.processes import free_port

from .conftest import Report
from .load import Call, Run, open_loop
from .processes import users_and_things

pytestmark = pytest.mark.reliability

RATE = 50.0  # sharing requests per second
UP_SECONDS, DOWN_SECONDS, BACK_SECONDS = 3.0, 8.0, 8.0
PASSWORD = "correct horse battery"


async def signed_up(client: httpx.AsyncClient, users_url: str, email: str) -> str:
    body = {"email": email, "full_name": email.split("@")[0], "password": PASSWORD}
    assert (await client.post(f"{users_url}/api/v1/users", json=body)).status_code == 201
    login = {"email": email, "password": PASSWORD}
    response = await client.post(f"{users_url}/api/v1/auth/login", json=login)
    return str(response.json()["access_token"])


async def calls_made(client: httpx.AsyncClient, metrics_url: str) -> dict[str, float]:
    """things-svc's calls to users-svc so far, by outcome (service_calls_total)."""
    text = (await client.get(metrics_url)).text
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "service_calls"
        for sample in family.samples
        if sample.name == "service_calls_total" and sample.labels.get("target") == "users-svc"
    }


async def test_users_svc_stopped_under_load_gives_503s_then_sharing_recovers(
    postgres: EmbeddedPostgres, workdir: Path, report: Report
) -> None:
    metrics_port = free_port()
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    async with (
        users_and_things(
            postgres.url(),
            workdir / "sharing-fault",
            name="sharing_fault",
            audience="api",
            things_settings={"metrics_port": str(metrics_port)},
        ) as stack,
        httpx.AsyncClient(timeout=10) as client,
    ):
        alice = await signed_up(client, stack.users.url, "alice@x.io")
        await signed_up(client, stack.users.url, "bob@x.io")
        headers = {"Authorization": f"Bearer {alice}"}
        thing = await client.post(
            f"{stack.things.url}/api/v1/things", json={"name": "Lamp"}, headers=headers
        )
        share = Call(
            "share", "POST", f"/api/v1/things/{thing.json()['id']}/shares", {"email": "bob@x.io"}
        )
        run = Run(started_at=time.monotonic())
        load = asyncio.create_task(
            open_loop(
                stack.things.url,
                lambda _: share,
                rate=RATE,
                seconds=UP_SECONDS + DOWN_SECONDS + BACK_SECONDS,
                headers=headers,
                run=run,
            )
        )
        await asyncio.sleep(UP_SECONDS)
        stopped = run.at(time.monotonic())
        await asyncio.to_thread(stack.users.stop)
        await asyncio.sleep(1.0)
        before_open = await calls_made(client, metrics_url)
        opened = run.at(time.monotonic())
        await asyncio.sleep(DOWN_SECONDS - 1.0)
        during_open = await calls_made(client, metrics_url)
        back = run.at(time.monotonic())
        stack.users.start()
        await stack.users.wait_ready()
        await load

    before = [r for r in run.records if r.start < stopped]
    down = [r for r in run.records if stopped + 1.0 <= r.start < back]
    after = [r for r in run.records if r.start >= back]
    first_success = min((r.end for r in after if r.status == 201), default=float("inf"))
    tried_while_open = during_open.get("failed", 0) - before_open.get("failed", 0)
    open_for = back - opened
    report(
        f"sharing with users-svc stopped for {back - stopped:.1f} s under {RATE:.0f} requests/s: "
        f"before {Run(0, before).statuses()}, down (from 1 s after the stop) "
        f"{Run(0, down).statuses()}, after {Run(0, after).statuses()}; calls to users-svc "
        f"while its breaker was open: {tried_while_open:.0f} in {open_for:.1f} s "
        f"({during_open}); first success {first_success - back:.2f} s after its return; "
        f"longest request {max(r.duration for r in run.records):.2f} s"
    )
    assert {r.status for r in before} == {201}
    assert {r.status for r in down} == {503}
    assert all(r.retry_after is not None and int(r.retry_after) >= 1 for r in down)
    assert max(r.duration for r in down) < 1.0
    assert tried_while_open <= open_for + 1
    assert first_success - back <= 5.0
