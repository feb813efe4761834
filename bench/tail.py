"""Tail latency: open-loop runs at half each endpoint's own maximum, alternating between the
targets, under the host's default scheduling and, where this process may, at real-time priority
(bench/realtime.py)."""

import argparse
import contextlib
import os
import statistics

import psutil
import realtime
import report
from measure import Measurement
from openloop import OpenLoopResult, http_request, open_loop
from seed import Seed
from targets import Endpoint, Target

from devstack.postgres import EmbeddedPostgres


async def tail_latency(
    args: argparse.Namespace,
    postgres: EmbeddedPostgres,
    targets: list[Target],
    endpoints: list[Endpoint],
    results: list[Measurement],
    *,
    token: str,
    seed: Seed,
) -> None:
    """Open-loop runs at half each endpoint's own maximum, alternating between the targets, each
    under the host's default scheduling and (where this process may) at real-time priority."""
    schedulings = [False, True] if realtime.allowed() else [False]
    runs: dict[bool, dict[tuple[str, str], list[OpenLoopResult]]] = {s: {} for s in schedulings}
    for endpoint in endpoints:
        served = [t for t in targets if endpoint.served_by(t)]
        for _ in range(args.open_loop_rounds):
            for target in served:
                maximum = statistics.mean(
                    m.rps for m in results if (m.endpoint, m.target) == (endpoint.name, target.name)
                )
                for isolated in schedulings:
                    result = await open_loop_run(
                        endpoint,
                        target,
                        args,
                        postgres,
                        request=request_for(endpoint, target, token=token, seed=seed),
                        rate=maximum / 2,
                        isolated=isolated,
                    )
                    runs[isolated].setdefault((endpoint.name, target.name), []).append(result)
    print(
        f"\nTail latency, open loop at half each endpoint's own maximum ({args.connections} "
        f"connections, {args.open_loop_seconds:g}s, {args.open_loop_rounds} alternating rounds; "
        "medians, p99/p50 with its range; 'late' is how late the generator woke to send, the "
        "worst round's p99)"
    )
    names = [e.name for e in endpoints]
    report.print_tail(
        "with the host's default scheduling (what this machine gives):", runs[False], names
    )
    if True in runs:
        report.print_tail(
            "with generator, server and Postgres at real-time priority (bench/realtime.py):",
            runs[True],
            names,
        )
    else:
        print("  (not at real-time priority: that needs root or CAP_SYS_NICE, on Linux)")


def request_for(endpoint: Endpoint, target: Target, *, token: str, seed: Seed) -> bytes:
    server = target.servers[endpoint.service]
    headers = {"Authorization": f"Bearer {token}"}
    if endpoint.body:
        headers["Content-Type"] = "application/json"
    path = endpoint.url(target, seed).removeprefix(server.url)
    return http_request(
        endpoint.method, path, host="127.0.0.1", headers=headers, body=endpoint.body
    )


async def open_loop_run(
    endpoint: Endpoint,
    target: Target,
    args: argparse.Namespace,
    postgres: EmbeddedPostgres,
    *,
    request: bytes,
    rate: float,
    isolated: bool,
) -> OpenLoopResult:
    server = target.servers[endpoint.service]
    pids = [os.getpid(), server.process.pid, *postgres_pids(postgres)]
    scheduling = realtime.realtime(pids) if isolated else contextlib.nullcontext()
    with scheduling:
        return await open_loop(
            "127.0.0.1",
            server.process.port,
            request,
            rate=rate,
            seconds=args.open_loop_seconds,
            connections=args.connections,
        )


def postgres_pids(postgres: EmbeddedPostgres) -> list[int]:
    """The postmaster and every process it started: the backends, the WAL writer and the like."""
    postmaster = postgres.pid()
    if postmaster is None:
        raise RuntimeError("the benchmark's Postgres is not running")
    return [postmaster, *(child.pid for child in psutil.Process(postmaster).children())]
