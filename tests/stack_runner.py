"""`tools/stack.py` driven by the tests: its own state folder, free ports, its processes."""

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

import stack
from devstack.postgres import EmbeddedPostgres
from devstack.processes import free_port, is_alive
from native_stack import Stack
from stack_services import Service, discover_services

STACK_SCRIPT = Path(stack.__file__).resolve()


class StackRunner:
    """`tools/stack.py` run as a user runs it, on its own folder and free ports."""

    def __init__(self, state_dir: Path) -> None:
        names = [service.database for service in discover_services({})]
        self.env = {
            **os.environ,
            "STACK_DIR": str(state_dir),
            "STACK_POSTGRES_PORT": str(free_port()),
            "STACK_NATS_PORT": str(free_port()),
            "STACK_PROMETHEUS_PORT": str(free_port()),
            **{f"STACK_{name.upper()}_PORT": str(free_port()) for name in names},
            **{f"STACK_{name.upper()}_METRICS_PORT": str(free_port()) for name in names},
        }
        self.env.pop("MODE", None)
        self.services = {service.name: service for service in discover_services(self.env)}
        self.stack = Stack(state_dir, list(self.services.values()))

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(STACK_SCRIPT), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def up(self) -> str:
        """Start the stack natively; return what it printed."""
        result = self.run("up", "--mode", "native")
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def main(self, *args: str) -> int:
        """The same command line, in this process: for what fails before anything starts."""
        with pytest.MonkeyPatch.context() as patch:
            for key in set(os.environ) - set(self.env):
                patch.delenv(key)
            for key, value in self.env.items():
                patch.setenv(key, value)
            return stack.main(args)

    def postgres(self) -> EmbeddedPostgres:
        """The stack's Postgres, for a test to start, stop or query on its own."""
        return self.stack.postgres(int(self.env["STACK_POSTGRES_PORT"]))

    def log(self) -> Path:
        """The services' log, whose end a failed wait shows."""
        return self.stack.log_file

    def service(self, name: str) -> Service:
        return self.services[name]

    def processes(self) -> list[psutil.Process]:
        """Every live process of this stack: Postgres on its data, the supervisor, the services."""
        markers = [str(self.stack.state_dir), *(f"--port={s.port}" for s in self.services.values())]
        found = []
        for process in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if any(marker in cmdline for marker in markers) and is_alive(process.pid):
                found.append(process)
        return found
