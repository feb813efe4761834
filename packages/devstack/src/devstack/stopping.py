"""Stopping on a signal: Ctrl-C, SIGTERM and SIGHUP stop a program once, and cleanly.

Python's default action for SIGTERM (what `kill`, a CI runner's timeout, systemd and Docker send)
and SIGHUP (a closed terminal) ends the process at once: no `finally` block, no `with` exit. A tool
stopped that way leaves running what it started: an embedded Postgres (pg_ctl gives it a session
of its own), NATS, service processes. Ctrl-C does run the clean-up, but a second SIGINT cuts it
short, and one Ctrl-C often arrives twice: `uv run` passes on to its child the SIGINT the
terminal has sent to both.

Inside `stopping_on_signals()`, the first of those signals raises `Stopped`, a
`KeyboardInterrupt`, wherever the program is, so the clean-up written for Ctrl-C runs (`with`
exits, `finally` blocks, the cancellation of the tasks `asyncio.run` leaves); the ones after it
are ignored while it runs (each server's stop has a deadline of its own). SIGTERM and SIGHUP are
first passed on to the processes this one started, as SIGTERM: a terminal's Ctrl-C reaches them
itself. Then any child process the clean-up missed is stopped, and a program the signal ends
exits with the status a shell gives that signal (128 + its number). A signal the program
inherited ignored (`nohup`, a background job) stays ignored.

`uninterrupted()` shields a clean-up from those signals.
"""

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import psutil

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# How long a child the clean-up missed gets to exit on SIGTERM before SIGKILL.
CHILD_STOP_SECONDS = 5.0


class Stopped(KeyboardInterrupt):
    """A stop signal arrived (Ctrl-C's included): raised as Ctrl-C's KeyboardInterrupt is."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class _Stopping:
    def __init__(self) -> None:
        self.received: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        # Once: the clean-up this starts must not be cut short by the next one.
        for number in STOP_SIGNALS:
            signal.signal(number, _ignore)
        self.received = signum
        if signum != signal.SIGINT:
            # Before raising: subprocess.run answers a KeyboardInterrupt by killing its child
            # with SIGKILL a moment later, which would orphan that child's own children.
            for child in psutil.Process().children():
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.terminate()
        raise Stopped(signum)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """Ignore a signal in this process only: unlike SIG_IGN, a program started meanwhile (pg_ctl
    stopping Postgres) does not inherit it."""


@contextlib.contextmanager
def stopping_on_signals() -> Iterator[None]:
    """The first stop signal raises `Stopped` inside the block; the handlers it replaced come back
    after it. Only the main thread receives signals: elsewhere the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = _Stopping()
    previous = {
        number: signal.signal(number, stopping.handle)
        for number in STOP_SIGNALS
        if signal.getsignal(number) is not signal.SIG_IGN
    }
    try:
        yield
    except Stopped as stopped:
        raise SystemExit(stopped.exit_status) from None
    finally:
        if stopping.received is not None:
            stop_children()
        for number, handler in previous.items():
            signal.signal(number, handler)


def stop_children(*, timeout_seconds: float = CHILD_STOP_SECONDS) -> None:
    """SIGTERM to every process this one started (and theirs), SIGKILL to those left after
    `timeout_seconds`. A daemon that left its parent (Postgres under pg_ctl) is not a child."""
    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=timeout_seconds)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(alive, timeout=timeout_seconds)


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP ignored inside the block: a stop that must not stop halfway."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _ignore) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
