"""A program under `stopping_on_signals()` stops once and cleanly on SIGTERM, Ctrl-C and SIGHUP:
its clean-up runs to its end, what it started stops, and its exit status says which signal ended
it."""

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from devstack.processes import is_alive, wait_gone

# Starts a child that never stops by itself, then waits; its clean-up takes a moment and leaves a
# note. It prints the child's pid once its handlers are in place.
PROGRAM = """
import subprocess, sys, time
from pathlib import Path
from devstack.stopping import stopping_on_signals

with stopping_on_signals():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        print(child.pid, flush=True)
        time.sleep(600)
    finally:
        time.sleep(0.5)
        Path(sys.argv[1]).write_text("cleaned up")
"""


def as_a_job(*, ignoring_hangups: bool) -> None:
    """The signals' actions a shell gives a job it starts, whatever this run inherited (xdist's
    workers ignore Ctrl-C; a run under `nohup` ignores hangups); with `ignoring_hangups`, as
    `nohup` starts it."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)
    if ignoring_hangups:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


class Program:
    def __init__(self, note: Path, *, ignoring_hangups: bool = False) -> None:
        self.stderr = ""
        self.process = subprocess.Popen(
            [sys.executable, "-c", PROGRAM, str(note)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: as_a_job(ignoring_hangups=ignoring_hangups),
        )
        assert self.process.stdout is not None
        self.child = int(self.process.stdout.readline())

    def send(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def exit_status(self) -> int:
        _, self.stderr = self.process.communicate(timeout=30)
        return self.process.returncode


@pytest.fixture
def programs() -> Iterator[list[Program]]:
    started: list[Program] = []
    yield started
    for program in started:
        for pid in (program.process.pid, program.child):
            if is_alive(pid):
                psutil.Process(pid).kill()
        program.process.communicate()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_the_clean_up_runs_what_it_started_stops_and_the_status_names_the_signal(
    signum: signal.Signals, tmp_path: Path, programs: list[Program]
) -> None:
    note = tmp_path / "note"
    program = Program(note)
    programs.append(program)

    program.send(signum)

    assert program.exit_status() == 128 + signum
    assert note.read_text() == "cleaned up"
    assert not wait_gone([program.child], timeout_seconds=10)
    assert "Traceback" not in program.stderr


# A Ctrl-C arrives twice under `uv run`: from the terminal, and passed on by uv.
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_second_signal_does_not_cut_the_clean_up_short(
    signum: signal.Signals, tmp_path: Path, programs: list[Program]
) -> None:
    note = tmp_path / "note"
    program = Program(note)
    programs.append(program)

    program.send(signum)
    time.sleep(0.2)  # inside the clean-up
    program.send(signum)

    assert program.exit_status() == 128 + signum
    assert note.read_text() == "cleaned up"


def test_a_hangup_stops_it_unless_it_was_started_ignoring_hangups(
    tmp_path: Path, programs: list[Program]
) -> None:
    attached = Program(tmp_path / "attached")
    under_nohup = Program(tmp_path / "under-nohup", ignoring_hangups=True)
    programs += [attached, under_nohup]

    attached.send(signal.SIGHUP)
    under_nohup.send(signal.SIGHUP)

    assert attached.exit_status() == 128 + signal.SIGHUP
    time.sleep(0.5)
    assert under_nohup.process.poll() is None
    under_nohup.send(signal.SIGTERM)
    assert under_nohup.exit_status() == 128 + signal.SIGTERM
