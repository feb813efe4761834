"""The tables `make bench` prints."""

import re
import statistics
from collections.abc import Sequence
from pathlib import Path

from measure import Measurement
from openloop import OpenLoopResult
from targets import Target

SPEED_DOC = Path(__file__).parents[1] / "docs" / "speed.md"
RELEASE_RSS = re.compile(r"RSS when ready at the last release \((?P<when>[^)]*)\): (?P<figures>.*)")


def print_throughput(
    results: Sequence[Measurement], endpoints: Sequence[str], targets: Sequence[Target]
) -> None:
    """Per endpoint and target: the closed-loop figures, and the ratio to the floor's requests/s
    in the same round."""
    print(
        f"\n{'endpoint':<22} {'target':<12} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'ratio':>6} {'CPU µs/req':>10} {'xact/req':>8} {'new sessions':>12}"
    )
    floor = targets[0].name
    for endpoint in endpoints:
        rows = [m for m in results if m.endpoint == endpoint]
        floor_by_round = [m.rps for m in rows if m.target == floor]
        for target in targets:
            mine = [m for m in rows if m.target == target.name]
            if not mine:
                continue
            ratios = [m.rps / base for m, base in zip(mine, floor_by_round, strict=True)]
            requests = sum(m.requests for m in mine)
            cpu = sum(m.cpu_seconds for m in mine) / requests
            transactions = sum(m.transactions or 0 for m in mine) / requests
            print(
                f"{endpoint:<22} {target.name:<12} {statistics.mean(m.rps for m in mine):>8.0f} "
                f"{statistics.mean(m.p50_ms for m in mine):>7.2f} "
                f"{statistics.mean(m.p99_ms for m in mine):>7.2f} "
                f"{statistics.mean(ratios):>6.2f} {cpu * 1e6:>10.0f} {transactions:>8.2f} "
                f"{sum(m.sessions or 0 for m in mine):>12}"
            )


def print_tail(
    title: str, runs: dict[tuple[str, str], list[OpenLoopResult]], endpoints: Sequence[str]
) -> None:
    print(f"  {title}")
    print(
        f"  {'endpoint':<22} {'target':<12} {'rate/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p99/p50':>8} {'range':>11} {'late ms':>8}"
    )
    for endpoint in endpoints:
        for (name, target), results in runs.items():
            if name != endpoint:
                continue
            ratios = sorted(run.p99_ms / run.p50_ms for run in results)
            errors = sum(run.errors for run in results)
            print(
                f"  {endpoint:<22} {target:<12} "
                f"{statistics.median(run.rate for run in results):>8.0f} "
                f"{statistics.median(run.p50_ms for run in results):>8.2f} "
                f"{statistics.median(run.p99_ms for run in results):>8.2f} "
                f"{statistics.median(ratios):>8.1f} {ratios[0]:>5.1f}-{ratios[-1]:<5.1f} "
                f"{max(run.late_p99_ms for run in results):>8.2f}"
                + ("" if errors == 0 else f"  ({errors} errors)")
            )


def release_rss(speed_doc: Path = SPEED_DOC) -> tuple[str, dict[str, float]]:
    """The RSS when ready at the last release, by service, from docs/speed.md's line
    `RSS when ready at the last release (<when>): things-svc 90.2 MiB, users-svc 94.0 MiB`."""
    found = RELEASE_RSS.search(speed_doc.read_text())
    if found is None:
        return "", {}
    figures = re.findall(r"([\w-]+) ([\d.]+) MiB", found["figures"])
    return found["when"], {service: float(mib) for service, mib in figures}


def print_processes(targets: Sequence[Target], *, starts: int) -> None:
    when, released = release_rss()
    print(f"\nProcesses (uvicorn, one worker; ready: median of {starts} starts, and range):")
    print(
        f"  {'process':<28} {'ready s':>8} {'range':>11} {'RSS ready MiB':>14} "
        f"{'RSS after MiB':>14} {'vs release MiB':>15}"
    )
    servers = {server.name: server for target in targets for server in target.servers.values()}
    for server in servers.values():
        fastest, slowest = min(server.ready_times), max(server.ready_times)
        after = server.process.running.memory_info().rss
        ready = server.rss_ready / 2**20
        then = next((mib for name, mib in released.items() if name in server.name), None)
        delta = "" if then is None else f"{ready - then:+.1f}"
        print(
            f"  {server.name:<28} {server.ready_seconds:>8.2f} {fastest:>5.2f}-{slowest:<5.2f} "
            f"{ready:>14.1f} {after / 2**20:>14.1f} {delta:>15}"
        )
    if released:
        print(f"  (release figures of {when}, docs/speed.md)")


def print_connections(
    idle: dict[tuple[str, str], int], results: Sequence[Measurement], targets: Sequence[Target]
) -> None:
    """Connections to Postgres per service process (one replica): after warm-up, and the most
    seen during any closed-loop run of its endpoints."""
    print("\nPostgres connections per service process (one replica):")
    print(f"  {'process':<28} {'idle':>6} {'peak under load':>16}")
    for target in targets[1:]:  # the floor is no service
        for service, server in target.servers.items():
            peaks = [
                m.peak_connections
                for m in results
                if m.target == target.name and m.service == service
            ]
            print(
                f"  {server.name:<28} {idle.get((target.name, service), 0):>6} "
                f"{max(peaks, default=0):>16}"
            )
