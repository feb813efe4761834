"""Every command the README and docs/ show, run as written on a fresh copy of the repository.

The commands are read from the fenced `sh` blocks of README.md and docs/*.md, in the order they
appear, and run one after the other in one copy (`make test-docs`, which `.ci/run` runs): each
must exit 0. A command that runs until Ctrl-C (`make logs`, `make dev`) is run until it shows
what it is for, then sent SIGINT; one that reads its standard input gets what a user would type.
Some are not run here, each said below with why: what `.ci/run` itself runs on its fresh clone
(the test suites), what needs a Docker engine, the benchmark, and what needs a history this copy
has not. The quick test keeps this list honest: a command shown in the docs that it cannot
account for fails it.
"""

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

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
    "make lint typecheck hooks",
}
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
        if line.startswith("```"):
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
        if key not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTEST_ADDOPTS", "MODE"}
        and not key.startswith(("PYTEST_", "STACK_", "THINGS_", "USERS_", "ORDERS_"))
    }
    # Free ports for everything the commands start: the defaults may be taken on this machine.
    env |= {f"STACK_{name}_PORT": str(free_port()) for name in ("POSTGRES", "THINGS", "USERS")}
    env["STACK_ORDERS_PORT"] = str(free_port())
    subprocess.run(["make", "sync"], cwd=root, env=env, check=True, capture_output=True)
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
    return dict(
        line.removeprefix("export ").split("=", 1) for line in printed.splitlines() if "=" in line
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


@pytest.mark.docs
def test_the_docs_commands_run_on_a_fresh_copy(copy: tuple[Path, dict[str, str]]) -> None:
    root, env = copy
    ran = []
    for document, command in every_command():
        if kind(command) != "here":
            continue
        if "alembic" in command and "make" not in command:
            env = env | stack_env(root, env, "things-svc")
        started = time.monotonic()
        if command in UNTIL:
            run_until(command, UNTIL[command], root=root, env=env)
        else:
            run_to_success(
                ["bash", "-c", command],
                cwd=root,
                env=env,
                stdin=STDIN.get(command, ""),
                what=f"{document}: {command}",
            )
        ran.append(f"{time.monotonic() - started:6.1f}s  {document}: {command}")
    print("\n" + "\n".join(ran))
