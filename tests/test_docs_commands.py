"""Every command the README and docs/ show, run as written on a fresh copy of the repository.

The commands are read from the fenced `sh` blocks of README.md and docs/*.md, in the order they
appear, and run one after the other in one copy (`make test-docs`, which `.ci/run` runs), as in
one shell that had no `uv` on its PATH: what a command exports (`export PATH=...`, the README's
set-up) or assigns from a command's output (`TOKEN=$(...)`) is there for the commands after it.
Each must exit 0. What `make new-service` and `make new-domain` print under "Next:" is run too,
as printed; every `make up` must list every service of the copy, each answering `/health/ready`.
A command that runs until Ctrl-C (`make logs`, `make dev`) is run until it shows what it is for,
then sent SIGINT; one that reads its standard input gets what a user would type. The copy's
stack runs on free ports, so the ports the docs show (8000, 8001) are replaced by its own.
Some are not run here, each said below with why: what `.ci/run` itself runs on its fresh clone
(the test suites), what needs a Docker engine, the benchmark, and what needs a history this copy
has not. The quick test keeps this list honest: a command shown in the docs that it cannot
account for fails it.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from commands import run_to_success

from devstack.postgres import scratch_dir
from devstack.processes import free_port
from devstack.repository import copy_repository

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Run by .ci/run itself, on its fresh clone: the suites (and the README's test command).
RUN_BY_CI = {
    "make test",
    "make test-processes",
    "make test-reliability",
    "make test-scaffold",
    "make test-browser",
    "make test-docs",
    "make lint typecheck hooks",
}
# The README's set-up: where the Makefile installs uv, on the PATH of the shell.
UV_SET_UP = 'export PATH="$PWD/.local/uv/bin:$PATH"'
# A command whose variables the commands after it see, as in one shell.
ASSIGNS = re.compile(r"^export [A-Za-z_]\w*=|^[A-Za-z_]\w*=\$\(")
# The ports the docs show, and the variable that moves each in the copy.
SHOWN_PORTS = {"8000": "STACK_THINGS_PORT", "8001": "STACK_USERS_PORT"}
# Not run here, and why: a command that starts with one of these.
NOT_HERE = {
    "docker ": "no Docker engine on this machine; tests/test_infra.py lints every Dockerfile",
    "kind ": "no Docker engine, so no kind cluster",
    "kubectl ": (
        "no Kubernetes cluster here; `make manifests-check` renders every overlay with "
        "`kubectl kustomize` and validates it offline"
    ),
    "helm ": "no Kubernetes cluster here, nor any chart repository to reach",
    "make bench-events": "a minute of its own; docs/events.md has its figures, dated",
    "make bench": "about 10 minutes on its own; docs/speed.md has its figures, dated",
    "make test-affected BASE=main HEAD=my-branch": (
        "names a branch of yours; `make test-affected BASE=main` runs here"
    ),
    "make test-compat SERVICE=things-svc BASE=v1.4.0": (
        "names a release of yours; `make test-compat SERVICE=things-svc` runs here"
    ),
    "uv run --no-sync copier update": (
        "needs a committed service and a later commit of the templates: the scaffold suite "
        "(`make test-scaffold`) runs these commands so, in a clone"
    ),
}
# Run until their output shows this, then stopped with Ctrl-C (SIGINT).
UNTIL = {
    "make logs": r"things-svc(\.\d+)?\s*\|",
    "make up ATTACH=1": r"things-svc(\.\d+)?\s*\|",
    "make dev SERVICE=things-svc": r"Application startup complete",
    "make dev SERVICE=things-svc PORT=9000": r"Application startup complete",
}
# What a user types at the command's prompt.
STDIN = {
    "make psql SERVICE=things-svc": "SELECT count(*) FROM things;\n",
    "make admin EMAIL=ada@example.com": "correct horse battery staple\n",
}


def shown_commands(document: Path) -> list[str]:
    """The commands of the document's `sh` blocks (a line ending in `\\` continued on the
    next), without their trailing comments."""
    commands, inside, pending = [], False, ""
    for line in document.read_text().splitlines():
        if line.lstrip().startswith("```"):  # a block may be indented, inside a list
            inside = line.strip() == "```sh"
            continue
        command = re.sub(r"\s+#\s.*$", "", line).strip() if inside else ""
        if command.endswith("\\"):
            pending += command[:-1].strip() + " "
            continue
        command, pending = pending + command, ""
        if command and not command.startswith("#"):
            commands.append(command)
    return commands


def every_command() -> list[tuple[str, str]]:
    return [
        (doc.relative_to(ROOT).as_posix(), cmd) for doc in DOCUMENTS for cmd in shown_commands(doc)
    ]


def kind(command: str) -> str:
    for prefix in NOT_HERE:
        if command == prefix or command.startswith(
            prefix if prefix.endswith(" ") else f"{prefix} "
        ):
            return "not here"
    return "by .ci/run" if command in RUN_BY_CI else "here"


def test_every_command_shown_is_accounted_for() -> None:
    commands = {command for _, command in every_command()}
    ci_run = (ROOT / ".ci" / "run").read_text()

    assert commands, "no `sh` block found"
    for command in RUN_BY_CI & commands:
        assert command in ci_run, f"{command!r} is said to run in .ci/run, which does not run it"
    stale = (set(UNTIL) | set(STDIN) | RUN_BY_CI) - commands
    stale |= {
        prefix
        for prefix in NOT_HERE
        if not any(kind(c) == "not here" and c.startswith(prefix.strip()) for c in commands)
    }
    assert not stale, f"listed here but shown nowhere: {sorted(stale)}"


def test_the_readme_puts_uv_on_the_path_before_any_command() -> None:
    assert every_command()[0] == ("README.md", UV_SET_UP)


def test_the_readme_shows_first_requests_on_both_services_in_ten_lines() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## First requests", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    requests = " ".join(block.replace("\\\n", " ").split())

    assert len(block.splitlines()) <= 10
    for call in (
        "127.0.0.1:8001/api/v1/users -H 'Content-Type: application/json' -d",  # sign up
        "127.0.0.1:8001/api/v1/auth/login",
        '127.0.0.1:8000/api/v1/things -H "Authorization: Bearer $TOKEN" -H',  # create
        '127.0.0.1:8000/api/v1/things -H "Authorization: Bearer $TOKEN" ',  # list
    ):
        assert call in requests + " ", call


def test_make_sync_prints_nothing_when_nothing_changed() -> None:
    # The repository's own environment is in sync: every target starts with this.
    result = subprocess.run(
        ["make", "--no-print-directory", "sync"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    assert result.stdout + result.stderr == ""


@pytest.fixture(scope="module")
def copy() -> Iterator[tuple[Path, dict[str, str]]]:
    # Not under pytest's tmp_path: another pytest session on the machine would make it 0700,
    # locking the embedded Postgres's unprivileged user out of the copy's binaries.
    with scratch_dir("docs-commands-") as folder:
        yield from in_a_copy(folder)


def in_a_copy(folder: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    root = copy_repository(ROOT, folder / "repo", commit=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTEST_ADDOPTS", "MODE", "UV"}
        and not key.startswith(("PYTEST_", "STACK_", "THINGS_", "USERS_", "ORDERS_"))
    }
    # A shell that never had uv: the Makefile installs it in the copy, the README's set-up line
    # puts it on the PATH.
    env["PATH"] = os.pathsep.join(
        folder for folder in env["PATH"].split(os.pathsep) if not (Path(folder) / "uv").is_file()
    )
    assert shutil.which("uv", path=env["PATH"]) is None
    # Free ports for everything the commands start: the defaults may be taken on this machine.
    for name in ("POSTGRES", "NATS", "THINGS", "USERS", "ORDERS"):
        env[f"STACK_{name}_PORT"] = str(free_port())
    # The commit the generators' next steps make.
    env |= {
        f"GIT_{who}_{what}": value
        for who in ("AUTHOR", "COMMITTER")
        for what, value in (("NAME", "Ada"), ("EMAIL", "ada@example.com"))
    }
    try:
        yield root, env
    finally:
        subprocess.run(["make", "down"], cwd=root, env=env, capture_output=True, check=False)


def stack_env(root: Path, env: dict[str, str], service: str) -> dict[str, str]:
    """What `make env SERVICE=...` prints: the plain `uv run ... alembic` commands use it."""
    printed = subprocess.run(
        ["make", "-s", "env", f"SERVICE={service}"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # Each line as the shell reads it: a value may be quoted (users-svc's JSON list of clients).
    return dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1)
        for line in printed.splitlines()
        if "=" in line
    )


def run_until(command: str, pattern: str, *, root: Path, env: dict[str, str]) -> str:
    """Run `command` until its output matches `pattern`, then Ctrl-C it (its whole group)."""
    log = root / ".local" / "docs-command.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # As a terminal starts it: Ctrl-C's default action, even when this run inherited
            # SIGINT ignored (a CI script started in the background, `cmd &`).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if re.search(pattern, log.read_text(errors="replace")):
            break
        time.sleep(0.2)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    seen = log.read_text(errors="replace")
    assert re.search(pattern, seen), f"{command}: never showed {pattern!r}:\n{seen[-3000:]}"
    return seen


def as_in_the_copy(command: str, env: dict[str, str]) -> str:
    """The command with the ports the docs show replaced by the copy's own."""
    for shown, variable in SHOWN_PORTS.items():
        command = command.replace(f"127.0.0.1:{shown}", f"127.0.0.1:{env[variable]}")
    return command


def run_in_shell(
    command: str, *, root: Path, env: dict[str, str], what: str
) -> tuple[str, dict[str, str]]:
    """Run `command` to success; its output, and the environment the next command has."""
    if not ASSIGNS.match(command):
        output = run_to_success(
            ["bash", "-c", command], cwd=root, env=env, stdin=STDIN.get(command, ""), what=what
        )
        return output, env
    saved = root / ".local" / "docs-command.env"
    saved.parent.mkdir(parents=True, exist_ok=True)
    # `set -a`: what the command assigns reaches the environment, read back from `env`.
    script = f"set -a\n{command}\nstatus=$?\nenv -0 > {saved}\nexit $status"
    output = run_to_success(["bash", "-c", script], cwd=root, env=env, what=what)
    after = dict(item.split("=", 1) for item in saved.read_text().split("\0") if "=" in item)
    return output, {k: v for k, v in after.items() if k not in {"_", "SHLVL", "PWD", "OLDPWD"}}


def next_steps(output: str) -> list[str]:
    """The commands a generator prints under "Next:", without their comments."""
    lines = output.splitlines()
    assert "Next:" in lines, output
    steps = []
    for line in lines[lines.index("Next:") + 1 :]:
        if not line.startswith("  "):
            break
        steps.append(re.sub(r"\s+#\s.*$", "", line).strip())
    assert steps, output
    return steps


def assert_every_service_listed_and_ready(output: str, root: Path) -> None:
    """What `make up` printed: every service of the copy, each answering `/health/ready`."""
    listed = dict(re.findall(r"^  (\S+-svc)\s+(http://127\.0\.0\.1:\d+)\s+docs:", output, re.M))
    services = sorted(path.parent.name for path in root.glob("services/*/pyproject.toml"))
    assert sorted(listed) == services, output
    for name, url in listed.items():
        ready = httpx.get(f"{url}/health/ready", timeout=10)
        assert ready.status_code == 200, f"{name} listed, not ready: {ready.text}\n{output}"


@pytest.mark.docs
def test_the_docs_commands_run_on_a_fresh_copy(copy: tuple[Path, dict[str, str]]) -> None:
    root, env = copy
    ran = []
    pending = [(document, command) for document, command in every_command()]
    while pending:
        document, command = pending.pop(0)
        if kind(command) != "here":
            continue
        started = time.monotonic()
        typed = as_in_the_copy(command, env)
        if command in UNTIL:
            output = run_until(typed, UNTIL[command], root=root, env=env)
        elif "alembic" in command and "make" not in command:
            # Plain alembic reads the service's settings: pointed at the copy's stack, whose
            # Postgres is on a port of its own.
            shown_env = env | stack_env(root, env, "things-svc")
            output, _ = run_in_shell(typed, root=root, env=shown_env, what=f"{document}: {command}")
        else:
            output, env = run_in_shell(typed, root=root, env=env, what=f"{document}: {command}")
        if command.startswith(("make new-service", "make new-domain")):
            steps = [(f"{document}, {command}: next", step) for step in next_steps(output)]
            pending[:0] = steps
        if re.fullmatch(r"make up( MODE=native| POOLER=1 REPLICAS=3| OBSERVABILITY=1)?", command):
            assert_every_service_listed_and_ready(output, root)
        ran.append(f"{time.monotonic() - started:6.1f}s  {document}: {command}")
    print("\n" + "\n".join(ran))
