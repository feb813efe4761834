"""Stopping is clean: `make bench`, `make bench-events` and `make up ATTACH=1` stop every process
they started, promptly, on SIGTERM (`kill`, a CI job's timeout) and on Ctrl-C (devstack.stopping).

Each runs as a user runs it, through make, as a job of its own, on free ports and a scratch folder.
Once its servers are up, the signal goes where its sender sends it: SIGTERM to make alone, SIGINT
to the whole job, as a terminal's Ctrl-C does. Then make must exit, and every process the job had
started must be gone: those under make, and the servers that left it (Postgres daemonised by
pg_ctl), found by the folder they run in. How long each stop took is printed.
"""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import psutil
import pytest

from devstack.postgres import scratch_dir
from devstack.processes import is_alive, wait_gone
from stack_runner import StackRunner

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 300.0
# A stop that takes longer hangs.
STOP_SECONDS = 60.0
# The benchmark's shortest run: one endpoint, one round, each process started once.
BENCH_ARGS = (
    "--only /users/me --seconds 1 --rounds 1 --warmup 0.2 --starts 1 "
    "--open-loop-seconds 1 --open-loop-rounds 1"
)

Processes = list[psutil.Process]


def as_a_job() -> None:
    """The signals' actions a shell gives a job, whatever this run inherited (xdist's workers
    ignore Ctrl-C, a run under `nohup` ignores hangups)."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


class Job:
    """`make <arguments>` started as a shell starts a job: a process group of its own, with the
    default action for Ctrl-C. `folder` is in the command line of each server it starts."""

    def __init__(self, arguments: list[str], *, env: Mapping[str, str], folder: Path) -> None:
        self.folder = str(folder)
        self.log = folder / "job.log"
        self.seen: Processes = []
        with self.log.open("w") as output:
            self.make = psutil.Popen(
                ["make", "--no-print-directory", *arguments],
                cwd=ROOT,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=as_a_job,
            )

    def processes(self) -> Processes:
        """make, every process under it, and the servers that left it."""
        found: dict[int, psutil.Process] = {self.make.pid: self.make}
        with contextlib.suppress(psutil.NoSuchProcess):
            found |= {child.pid: child for child in self.make.children(recursive=True)}
        for process in psutil.process_iter(["cmdline"]):
            if any(self.folder in argument for argument in process.info["cmdline"] or []):
                found[process.pid] = process
                with contextlib.suppress(psutil.NoSuchProcess):  # Postgres's backends
                    found |= {child.pid: child for child in process.children(recursive=True)}
        return [process for process in found.values() if is_alive(process.pid)]

    def wait_for(self, what: str, ready: Callable[[Processes], bool]) -> Processes:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.make.poll() is not None:
                pytest.fail(f"make exited ({self.make.returncode}) before {what}:\n{self.tail()}")
            processes = self.processes()
            if ready(processes):
                return processes
            time.sleep(0.5)
        pytest.fail(f"no {what} after {START_SECONDS:.0f}s:\n{self.tail()}")

    def stop(self, signum: signal.Signals) -> None:
        """Send `signum` as its sender would; then make must exit and every process the job had
        started must be gone."""
        seen = self.seen = self.processes()
        started = time.monotonic()
        if signum == signal.SIGINT:
            os.killpg(self.make.pid, signum)
        else:
            self.make.send_signal(signum)
        try:
            self.make.wait(STOP_SECONDS)
        except psutil.TimeoutExpired:
            pytest.fail(f"make still runs {STOP_SECONDS:.0f}s after {signum.name}:\n{self.tail()}")
        exited = time.monotonic() - started
        left = wait_gone([p.pid for p in seen], timeout_seconds=STOP_SECONDS)
        gone = time.monotonic() - started
        assert not left, f"still running after {signum.name}: {describe(left)}\n{self.tail()}"
        assert not self.processes(), describe([p.pid for p in self.processes()])
        print(
            f"{signum.name}: make exited in {exited:.1f}s, its {len(seen)} processes gone in "
            f"{gone:.1f}s"
        )

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """After a failed test: nothing of the job may outlive it (psutil never signals a
        process whose id was reused since)."""
        for process in [*self.seen, *self.processes()]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def describe(pids: list[int]) -> str:
    lines = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            lines.append(f"  {pid} {' '.join(psutil.Process(pid).cmdline())[:160]}")
    return "\n" + "\n".join(lines)


def serving(count: int) -> Callable[[Processes], bool]:
    """At least `count` service processes (python -m common.serve), and a Postgres."""

    def ready(processes: Processes) -> bool:
        commands = [" ".join(p.cmdline()) for p in processes if is_alive(p.pid)]
        services = sum("common.serve" in command for command in commands)
        return services >= count and any("/postgres " in command for command in commands)

    return ready


@pytest.fixture
def folder() -> Iterator[Path]:
    with scratch_dir("stopping-test-") as path:
        yield path


@contextlib.contextmanager
def running(arguments: list[str], *, env: Mapping[str, str], folder: Path) -> Iterator[Job]:
    job = Job(arguments, env=env, folder=folder)
    try:
        yield job
    finally:
        job.kill()


def bench_env(folder: Path) -> dict[str, str]:
    # The benchmarks make their scratch folders with tempfile: in `folder`, where they are found.
    return {**os.environ, "TMPDIR": str(folder)}


def test_make_bench_stops_everything_it_started_on_sigterm(folder: Path) -> None:
    with running(
        ["bench", f"BENCH_ARGS={BENCH_ARGS}"], env=bench_env(folder), folder=folder
    ) as job:
        # The floor, its trace sink and users-svc: Postgres and NATS are up before them.
        job.wait_for("service processes", serving(3))

        job.stop(signal.SIGTERM)

    assert not list(folder.glob("bench-*")), "the scratch folder is left behind"


def test_make_bench_events_stops_everything_it_started_on_ctrl_c(folder: Path) -> None:
    # Events at a slow rate for ten minutes: it is still running when Ctrl-C comes.
    arguments = ["bench-events", "BENCH_ARGS=--backlog 10 --rounds 1 --rate 1 --seconds 600"]
    with running(arguments, env=bench_env(folder), folder=folder) as job:
        job.wait_for("users-svc and things-svc", serving(2))

        job.stop(signal.SIGINT)

    assert not list(folder.glob("bench-events-*")), "the scratch folder is left behind"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_make_up_attached_stops_the_stack(signum: signal.Signals, folder: Path) -> None:
    runner = StackRunner(folder / "stack")
    env = {**runner.env, "MODE": "native"}
    with running(["up", "ATTACH=1"], env=env, folder=folder) as job:
        job.wait_for("every service", serving(len(runner.services)))

        job.stop(signum)

    assert "stack: not running" in runner.run("ps").stdout
