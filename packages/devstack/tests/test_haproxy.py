"""Debian's HAProxy in front of three uvicorn replicas: requests spread over them, a replica
killed with SIGKILL costs no request sent after it died, and replicas join and leave at run time
without a request lost."""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from devstack.haproxy import LoadBalancer, LoadBalancerError
from devstack.postgres import scratch_dir
from devstack.processes import ServiceProcess, port_is_free, started

# Debian's binaries: `make test-pgbouncer` installs them and runs these.
pytestmark = pytest.mark.pooler

TESTS = Path(__file__).resolve().parent
REPLICAS = 3


@pytest.fixture
def folder() -> Iterator[Path]:
    with scratch_dir("haproxy-") as path:
        yield path


@pytest.fixture
async def replicas(folder: Path) -> AsyncIterator[list[ServiceProcess]]:
    processes = [
        ServiceProcess(
            f"replica-{index}",
            ["replica:app", f"--app-dir={TESTS}", "--no-access-log"],
            cwd=folder,
            env={"REPLICA": f"replica-{index}"},
            log=folder / f"replica-{index}.log",
        )
        for index in range(1, REPLICAS + 1)
    ]
    try:
        await asyncio.gather(*(process.started() for process in processes))
        yield processes
    finally:
        for process in processes:
            process.stop()


async def answers(url: str, count: int) -> Counter[str]:
    """Who answered each of `count` requests (one connection each), and the failures."""
    seen: Counter[str] = Counter()
    for _ in range(count):
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{url}/api/v1/anything")
        seen[response.text if response.status_code == 200 else str(response.status_code)] += 1
    return seen


async def test_requests_spread_over_every_replica(
    folder: Path, replicas: list[ServiceProcess]
) -> None:
    balancer = LoadBalancer(folder / "lb", name="svc", backends=[r.port for r in replicas])
    with started(balancer):
        seen = await answers(balancer.url, 30)

    assert seen == {f"replica-{index}": 10 for index in range(1, REPLICAS + 1)}
    assert not balancer.is_running()
    assert port_is_free(balancer.host, balancer.port)


async def test_a_killed_replica_costs_no_request_sent_after_it(
    folder: Path, replicas: list[ServiceProcess]
) -> None:
    balancer = LoadBalancer(folder / "lb", name="svc", backends=[r.port for r in replicas])
    with started(balancer):
        await answers(balancer.url, 6)
        replicas[0].kill()
        await replicas[0].wait_exit(5)

        # At once, before a health check has seen it: the refused connections go elsewhere.
        seen = await answers(balancer.url, 30)

    assert set(seen) == {"replica-2", "replica-3"}  # every request answered 200
    assert sum(seen.values()) == 30


async def test_replicas_join_and_leave_at_run_time(
    folder: Path, replicas: list[ServiceProcess]
) -> None:
    """As `make rollout` uses it: a replica added takes requests once its check passed; one
    drained takes no new request and answers those it had; once stopped it is forgotten."""
    first, second, third = replicas
    balancer = LoadBalancer(folder / "lb", name="svc", backends=[first.port, second.port])
    with started(balancer):
        await asyncio.to_thread(balancer.add, "svc-3", third.port)
        assert set(await answers(balancer.url, 6)) == {"replica-1", "replica-2", "replica-3"}

        async with httpx.AsyncClient(base_url=balancer.url, timeout=5) as client:
            slow = [asyncio.create_task(client.get("/slow?sleep=1")) for _ in replicas]
            await asyncio.sleep(0.3)
            draining = time.monotonic()
            await asyncio.to_thread(balancer.drain, "svc-1")
            drained_after = time.monotonic() - draining
            answered = [response.text for response in await asyncio.gather(*slow)]
        assert sorted(answered) == ["replica-1", "replica-2", "replica-3"]
        assert drained_after > 0.4  # it waited for replica-1's slow answer
        assert set(await answers(balancer.url, 6)) == {"replica-2", "replica-3"}

        first.stop()
        await asyncio.to_thread(balancer.delete, "svc-1")
        assert sorted(balancer.servers()) == ["svc-2", "svc-3"]


def test_a_port_in_use_is_refused_with_a_message(folder: Path) -> None:
    first = LoadBalancer(folder / "first", name="svc", backends=[1])
    with started(first):
        second = LoadBalancer(folder / "second", name="svc", backends=[1], port=first.port)
        with pytest.raises(LoadBalancerError, match=f"port {first.port} .* already in use"):
            second.start()
