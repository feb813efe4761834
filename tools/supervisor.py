"""What the native stack runs under honcho, in the background, logs prefixed by name: a uvicorn
per service, or per replica (`make up REPLICAS=3`, behind HAProxy), and Debian's Prometheus
(`make up OBSERVABILITY=1`) scraping each one's metrics.

A Procfile and an env file in the stack's folder say what runs, so it can be read, and run by
hand (`honcho start --procfile .local/stack/Procfile --env .local/stack/services.env`).
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


def service_lines(services: Sequence[Service], replica_ports: Mapping[str, list[int]]) -> list[str]:
    """A uvicorn per service or, given ports, per replica. A replica is started again a second
    after it exits, as a pod would be: honcho would otherwise stop the whole stack when one
    process ends. On `make down` honcho signals each program's process group, the shell and
    uvicorn alike. Each replica serves its metrics on its own port plus METRICS_PORT_OFFSET."""
    if not replica_ports:
        return [line(s.name, s.directory, serve(s.app, s.port)) for s in services]
    lines = []
    for s in services:
        for number, port in enumerate(replica_ports[s.name], start=1):
            metrics = f"{s.env_prefix}METRICS_PORT={port + METRICS_PORT_OFFSET}"
            loop = f"while true; do {metrics} {shlex.join(serve(s.app, port))}; sleep 1; done"
            lines.append(line(f"{s.name}-{number}", s.directory, ["bash", "-c", loop]))
    return lines


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
    """Write the Procfile and env file, start honcho in a session of its own; its process."""
    procfile, env_file = folder / "Procfile", folder / "services.env"
    procfile.write_text("".join(lines))
    env_file.touch(mode=0o600)
    env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    honcho = [sys.executable, "-m", "honcho", "start", f"--procfile={procfile}"]
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [*honcho, f"--env={env_file}", f"--app-root={root}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C in the terminal that ran `up` does not reach it.
            start_new_session=True,
        )
    return psutil.Process(process.pid)


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
