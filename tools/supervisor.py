"""What the native stack runs under honcho, in the background, logs prefixed by name: a uvicorn
per service, or per replica (`make up REPLICAS=3`, behind HAProxy), and Debian's Prometheus
(`make up OBSERVABILITY=1`) scraping each one's metrics.

A Procfile and an env file in the stack's folder say what runs, so it can be read, and run by
hand (`honcho start --procfile .local/stack/Procfile --env .local/stack/services.env`). Each
replica `make rollout` starts has a honcho and a Procfile of its own, in `replicas/`.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil
import yaml

from devstack.processes import HOST, is_alive, port_is_free, wait_gone
from stack_services import Service, StackError, port_setting

# uvicorn's own grace period for open requests on SIGTERM; honcho kills after 5 s anyway.
GRACEFUL_SHUTDOWN_SECONDS = 3
STOP_TIMEOUT_SECONDS = 15.0
# Natively, a service (or a replica) serves its metrics at its API port plus this; in Compose,
# on the production port (9000) of its container.
METRICS_PORT_OFFSET = 1000
# Short enough that a request shows on the dashboard within seconds.
SCRAPE_INTERVAL = "5s"


def metrics_port(service: Service) -> int:
    return port_setting(f"{service.database}_metrics", service.port + METRICS_PORT_OFFSET)


def line(name: str, directory: Path, command: Sequence[str]) -> str:
    """One line of the Procfile: a named process, the folder it runs in, its command."""
    return f"{name}: cd {shlex.quote(str(directory))} && exec {shlex.join(command)}\n"


def serve(app: str, port: int) -> list[str]:
    """A service as the images run it: uvicorn under common.serve, exiting 0 after a clean stop."""
    return [
        *(sys.executable, "-m", "common.serve", app, f"--host={HOST}", f"--port={port}"),
        f"--timeout-graceful-shutdown={GRACEFUL_SHUTDOWN_SECONDS}",
    ]


def service_lines(
    services: Sequence[Service], replica_ports: Mapping[str, list[int]], *, folder: Path
) -> list[str]:
    """A uvicorn per service or, given ports, per replica (`replica_line`)."""
    if not replica_ports:
        return [line(s.name, s.directory, serve(s.app, s.port)) for s in services]
    return [
        replica_line(s, number, port, folder=folder, keep=True)
        for s in services
        for number, port in enumerate(replica_ports[s.name], start=1)
    ]


def replica_line(service: Service, number: int, port: int, *, folder: Path, keep: bool) -> str:
    """A replica, started again a second after it exits, as a pod would be, until `retire`
    leaves a file for its port in `folder`. With `keep` its line then waits: honcho would stop
    the whole stack when one process ends. On `make down` honcho signals each program's process
    group, the shell and uvicorn alike. It serves its metrics on its port + METRICS_PORT_OFFSET."""
    metrics = f"{service.env_prefix}METRICS_PORT={port + METRICS_PORT_OFFSET}"
    retired = shlex.quote(str(retired_file(folder, port)))
    command = f"{metrics} {shlex.join(serve(service.app, port))}"
    loop = f"while [ ! -e {retired} ]; do {command}; sleep 1; done"
    loop += "; exec sleep infinity" if keep else ""
    return line(f"{service.name}-{number}", service.directory, ["bash", "-c", loop])


def retired_file(folder: Path, port: int) -> Path:
    return folder / "replicas" / f"{port}.retired"


def prometheus_port() -> int:
    return port_setting("prometheus", 9090)


def prometheus_line(
    state_dir: Path, services: Sequence[Service], replica_ports: Mapping[str, list[int]]
) -> str:
    """Debian's Prometheus scraping each service's metrics port (each replica's, given their
    ports) on loopback: its configuration written, its Procfile line."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise StackError(
            "OBSERVABILITY=1 needs Prometheus: install Debian's (apt-get install prometheus)"
        )
    port = prometheus_port()
    if not port_is_free(HOST, port):
        raise StackError(
            f"port {port} on {HOST} is already in use: Prometheus cannot listen there; "
            "choose another with STACK_PROMETHEUS_PORT"
        )
    metrics = {
        s.name: [p + METRICS_PORT_OFFSET for p in replica_ports[s.name]]
        if replica_ports
        else [metrics_port(s)]
        for s in services
    }
    folder = state_dir / "prometheus"
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [
        {
            "job_name": name,
            "metrics_path": "/metrics",
            "static_configs": [{"targets": [f"{HOST}:{port}" for port in ports]}],
        }
        for name, ports in sorted(metrics.items())
    ]
    interval = {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL}
    config = folder / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": interval, "scrape_configs": jobs}, sort_keys=False))
    command = [
        *(binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}"),
        *(f"--web.listen-address={HOST}:{port}", "--log.level=warn"),
    ]
    return line("prometheus", folder, command)


def start(
    lines: Sequence[str], env: Mapping[str, str], *, folder: Path, log_file: Path, root: Path
) -> psutil.Process:
    """Write the Procfile and env file, start honcho on them with an empty log; its process."""
    procfile, env_file = folder / "Procfile", folder / "services.env"
    procfile.write_text("".join(lines))
    env_file.touch(mode=0o600)
    # Quoted as a shell would read them: honcho parses each line with shlex (a JSON value, such
    # as users-svc's list of service clients, keeps its quotes and spaces).
    env_file.write_text("".join(f"{key}={shlex.quote(value)}\n" for key, value in env.items()))
    shutil.rmtree(folder / "replicas", ignore_errors=True)
    (folder / "replicas").mkdir()
    log_file.write_text("")
    return honcho(procfile, env_file, log_file=log_file, root=root)


def honcho(procfile: Path, env_file: Path, *, log_file: Path, root: Path) -> psutil.Process:
    """honcho on `procfile` in a session of its own, so Ctrl-C in the terminal that ran `up`
    does not reach it; appending to `log_file`, which `make rollout`'s honchos share."""
    command = [sys.executable, "-m", "honcho", "start", f"--procfile={procfile}"]
    with log_file.open("a") as log:
        process = subprocess.Popen(
            [*command, f"--env={env_file}", f"--app-root={root}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return psutil.Process(process.pid)


def ours(processes: Sequence[tuple[int, float]]) -> list[psutil.Process]:
    """The processes still running of those recorded: a pid reused since is never taken."""
    found = []
    for pid, started in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(pid)
            if process.create_time() == started and is_alive(pid):
                found.append(process)
    return found


def stop(processes: Sequence[tuple[int, float]]) -> None:
    """SIGTERM to each supervisor (`make up`'s honcho, and those `make rollout` started: those
    of ours that none of ours started), which pass it on and wait 5 s at most, then SIGKILL to
    whatever of ours outlives the timeout."""
    running = ours(processes)
    pids = {process.pid for process in running}
    for process in running:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.ppid() not in pids:
                process.terminate()
    for pid in wait_gone(pids, timeout_seconds=STOP_TIMEOUT_SECONDS):
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()


def retire(processes: Sequence[tuple[int, float]], port: int, *, folder: Path) -> None:
    """Stop the replica on `port` for good: its loop told not to start it again, SIGTERM, and
    wait until it exited (uvicorn answers what it has in flight first)."""
    retired_file(folder, port).touch()
    serving = []
    for process in ours(processes):
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in [process, *process.children(recursive=True)]:
                if f"--port={port}" in child.cmdline():
                    child.terminate()
                    serving.append(child)
    if wait_gone([p.pid for p in serving], timeout_seconds=STOP_TIMEOUT_SECONDS):
        raise StackError(
            f"the replica on port {port} did not exit {STOP_TIMEOUT_SECONDS:.0f}s after SIGTERM"
        )
