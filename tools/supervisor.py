"""The services of the native stack under honcho, in the background, logs prefixed by service.

A Procfile and an env file in the stack's folder say what runs, so it can be read, and run by
hand (`honcho start --procfile .local/stack/Procfile --env .local/stack/services.env`).
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from devstack.processes import HOST, is_alive, wait_gone

# uvicorn's own grace period for open requests on SIGTERM; honcho kills after 5 s anyway.
GRACEFUL_SHUTDOWN_SECONDS = 3
STOP_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Program:
    """One line of the Procfile: a named process, the folder it runs in, its command."""

    name: str
    directory: Path
    command: Sequence[str]

    def line(self) -> str:
        return (
            f"{self.name}: cd {shlex.quote(str(self.directory))} && exec {shlex.join(self.command)}"
        )


def service_command(app: str, port: int) -> list[str]:
    """A service as the images run it: uvicorn under common.serve, exiting 0 after a clean stop."""
    return [
        sys.executable,
        "-m",
        "common.serve",
        app,
        f"--host={HOST}",
        f"--port={port}",
        f"--timeout-graceful-shutdown={GRACEFUL_SHUTDOWN_SECONDS}",
    ]


def start(
    programs: Iterable[Program],
    env: Mapping[str, str],
    *,
    folder: Path,
    log_file: Path,
    root: Path,
) -> psutil.Process:
    """Write the Procfile and env file, start honcho in a session of its own; its process."""
    procfile, env_file = folder / "Procfile", folder / "services.env"
    procfile.write_text("".join(program.line() + "\n" for program in programs))
    env_file.touch(mode=0o600)
    env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    with log_file.open("w") as log:
        supervisor = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "honcho",
                "start",
                f"--procfile={procfile}",
                f"--env={env_file}",
                f"--app-root={root}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C in the terminal that ran `up` does not reach it.
            start_new_session=True,
        )
    return psutil.Process(supervisor.pid)


def stop(processes: Sequence[tuple[int, float]], *, supervisor_pid: int | None) -> None:
    """SIGTERM to the supervisor (honcho passes it on and waits 5 s at most), then SIGKILL to
    whatever of ours outlives the timeout. A pid reused since is never touched."""
    ours = []
    for pid, started in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(pid)
            if process.create_time() == started and is_alive(pid):
                ours.append(process)
    if ours and ours[0].pid == supervisor_pid:
        ours[0].terminate()
    for pid in wait_gone([p.pid for p in ours], timeout_seconds=STOP_TIMEOUT_SECONDS):
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()
