"""A Debian program the development stack runs as a daemon (PgBouncer, HAProxy): found on the
machine, followed through the pid file it writes, waited for, stopped."""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path

import psutil

from devstack.processes import is_alive, port_is_free


def system_binary(program: str) -> str | None:
    """Debian's `program`, also in /usr/sbin, which a user's PATH may lack."""
    return shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin")


class PidFileDaemon:
    """A daemon named `program` whose pid is in `pid_file`, listening on `host:port`."""

    program: str
    pid_file: Path
    host: str
    port: int

    def pid(self) -> int | None:
        """The daemon's process id while it runs, else None."""
        process = self._process()
        return process.pid if process is not None else None

    def is_running(self) -> bool:
        return self._process() is not None

    def listening_within(self, timeout_seconds: float) -> bool:
        """Wait until the daemon runs and its port is taken; False at the deadline."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.is_running() and not port_is_free(self.host, self.port):
                return True
            time.sleep(0.05)
        return False

    def stop(self, *, timeout_seconds: float = 10.0) -> None:
        """SIGTERM, then SIGKILL for what is left at the deadline."""
        process = self._process()
        if process is None:
            return
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
        _, alive = psutil.wait_procs([process], timeout=timeout_seconds)
        for left in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                left.kill()
        psutil.wait_procs(alive, timeout=timeout_seconds)

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown at all."""
        process = self._process()
        if process is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
            psutil.wait_procs([process], timeout=10)

    def _process(self) -> psutil.Process | None:
        try:
            pid = int(self.pid_file.read_text().split()[0])
            process = psutil.Process(pid)
            if is_alive(pid) and process.name() == self.program:
                return process
        except (OSError, ValueError, IndexError, psutil.Error):
            pass
        return None
