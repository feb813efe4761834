"""What every server of the development stack has in common (Postgres, NATS, PgBouncer, HAProxy):
an address on loopback, a process found again by another command (`make down`), a port it
refuses to share, and a log whose end explains a failure.

`LocalServer` is that much; `DataDirServer` adds the data folder the embedded Postgres and NATS
keep between runs; `PidFileDaemon` is a Debian program that daemonises and writes a pid file
(PgBouncer, HAProxy).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import ClassVar

import psutil

from devstack.processes import HOST, free_port, is_alive, port_is_free


def log_tail(log_file: Path, lines: int = 10) -> str:
    """The last `lines` of `log_file`, or nothing when it cannot be read."""
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class LocalServer:
    """A server on `host:port`; `label` names it in messages, which raise as `error`."""

    label: ClassVar[str]
    error: ClassVar[type[RuntimeError]]
    host: str
    port: int
    log_file: Path

    def pid(self) -> int | None:
        """The server's process id while it runs, else None."""
        process = self._process()
        return process.pid if process is not None else None

    def is_running(self) -> bool:
        return self._process() is not None

    def _process(self) -> psutil.Process | None:
        raise NotImplementedError

    def _refuse_a_taken_port(self) -> None:
        if not port_is_free(self.host, self.port):
            raise self.error(
                f"port {self.port} on {self.host} is already in use: "
                f"{self.label} cannot listen there"
            )

    def _log_tail(self, lines: int = 10) -> str:
        return log_tail(self.log_file, lines)


class DataDirServer(LocalServer):
    """A server whose data lives in `data_dir`; its log beside it unless `log_file` says."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        host: str = HOST,
        log_file: Path | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.log_file = (
            log_file.resolve()
            if log_file is not None
            else self.data_dir.with_name(f"{self.data_dir.name}.log")
        )


class PidFileDaemon(LocalServer):
    """A Debian program named `program` that daemonises, its pid in `pid_file`."""

    program: ClassVar[str]
    pid_file: Path

    @classmethod
    def binary(cls) -> str:
        """The program, also in /usr/sbin, which a user's PATH may lack."""
        found = shutil.which(cls.program) or shutil.which(cls.program, path="/usr/sbin:/usr/bin")
        if found is None:
            raise cls.error(f"{cls.program} is not installed: apt-get install {cls.program}")
        return found

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
