"""`make up` natively, end to end: real processes on free ports, a journey, restarts, faults."""

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.postgres import asyncpg_dsn
from devstack.processes import free_port, port_is_free
from stack_runner import STACK_SCRIPT, StackRunner

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[1]
API = "/api/v1"
PASSWORD = "correct horse battery"


class Journey:
    """What a person does across the services, over HTTP, as one client: sign up and log in on
    users-svc, then use the access token on things-svc (which fetches users-svc's JWKS)."""

    def __init__(self, runner: StackRunner) -> None:
        self.users = runner.service("users-svc").base_url + API
        self.things = runner.service("things-svc").base_url + API
        self.client = httpx.Client(timeout=10)

    def __enter__(self) -> "Journey":
        return self

    def __exit__(self, *_: object) -> None:
        self.client.close()

    def sign_up(self, email: str) -> dict[str, Any]:
        response = self.client.post(
            f"{self.users}/users",
            json={"email": email, "full_name": "Ada Lovelace", "password": PASSWORD},
        )
        assert response.status_code == 201, response.text
        user: dict[str, Any] = response.json()
        return {**user, **self.log_in(email)}

    def log_in(self, email: str) -> dict[str, Any]:
        response = self.client.post(
            f"{self.users}/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return {"access_token": response.json()["access_token"]}

    def add_thing(self, user: dict[str, Any], name: str) -> dict[str, Any]:
        response = self.client.post(
            f"{self.things}/things", json={"name": name}, headers=self._as(user)
        )
        assert response.status_code == 201, response.text
        thing: dict[str, Any] = response.json()
        return thing

    def things_of(self, user: dict[str, Any]) -> list[str]:
        response = self.client.get(f"{self.things}/things", headers=self._as(user))
        assert response.status_code == 200, response.text
        return [thing["name"] for thing in response.json()["items"]]

    def _as(self, user: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {user['access_token']}"}


def assert_nothing_left(runner: StackRunner) -> None:
    assert runner.processes() == []
    for service in runner.services.values():
        assert port_is_free("127.0.0.1", service.port), service.name
    assert port_is_free("127.0.0.1", int(runner.env["STACK_POSTGRES_PORT"]))
    assert port_is_free("127.0.0.1", int(runner.env["STACK_NATS_PORT"]))


def test_stack_serves_every_service_keeps_data_and_stops_cleanly(
    stack_runner: StackRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    printed = stack_runner.up()

    assert "mode: native" in printed
    for service in stack_runner.services.values():
        assert f"{service.base_url}/docs" in printed
        assert httpx.get(f"{service.base_url}/health/ready").status_code == 200
    with Journey(stack_runner) as journey:
        ada = journey.sign_up("ada@example.com")
        journey.add_thing(ada, "loom")
        journey.add_thing(ada, "engine")
        assert journey.things_of(ada) == ["loom", "engine"]
        grace = journey.sign_up("grace@example.com")
        assert journey.things_of(grace) == []
    assert_each_role_reaches_only_its_own_database(stack_runner)
    # `ps` reads the ports from what `up` wrote, not from this shell's variables.
    ports = {
        key: stack_runner.env.pop(key) for key in list(stack_runner.env) if key.endswith("_PORT")
    }
    assert stack_runner.main("ps") == 0
    status = capsys.readouterr().out
    assert "postgres   up" in status
    assert "nats       up" in status
    assert status.count(" ready ") == len(stack_runner.services)
    for service in stack_runner.services.values():
        assert f"{service.base_url}/docs" in status
    stack_runner.env.update(ports)
    # `make events`: users-svc relayed everything (no event yet, here), things-svc lags nothing.
    events = stack_runner.run("events")
    assert events.returncode == 0, events.stderr
    figures = {line.split()[0]: line.split()[1:] for line in events.stdout.splitlines()[1:]}
    assert figures["users-svc"][0] == "0"
    assert figures["things-svc"][1:] == ["0", "0"]

    stopped = stack_runner.run("down")

    assert stopped.returncode == 0
    assert_nothing_left(stack_runner)

    # Postgres keeps the port it had, without being told again.
    postgres_port = stack_runner.env.pop("STACK_POSTGRES_PORT")
    stack_runner.up()
    assert f"127.0.0.1:{postgres_port}" in "\n".join(stack_runner.stack.status_lines())
    stack_runner.env["STACK_POSTGRES_PORT"] = postgres_port

    with Journey(stack_runner) as journey:
        # The token from before the restart still works: the signing key was kept.
        assert journey.things_of(ada) == ["loom", "engine"]
        assert journey.things_of(journey.log_in("ada@example.com")) == ["loom", "engine"]
    assert stack_runner.main("down") == 0
    assert_nothing_left(stack_runner)


def assert_each_role_reaches_only_its_own_database(runner: StackRunner) -> None:
    """Each role owns its own database and reaches no other, and every login's password is
    checked, the superuser's too, as production checks them."""
    server = runner.postgres()

    async def owner_of(database: str, *, user: str, password: str | None = None) -> str:
        url = server.url(user=user, password=password or user, database=database)
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            assert (
                await connection.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = $1", user)
                is False
            )
            return str(
                await connection.fetchval(
                    "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", database
                )
            )
        finally:
            await connection.close()

    for service in runner.services.values():
        assert asyncio.run(owner_of(service.database, user=service.database)) == service.database
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        asyncio.run(owner_of("things", user="users"))
    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(owner_of("users", user="users", password="any password"))
    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(owner_of("postgres", user="postgres", password="any password"))


def test_a_failed_migration_stops_everything_with_its_error(stack_runner: StackRunner) -> None:
    # The users database says it is at a revision this code does not know (another branch's).
    server = stack_runner.postgres()
    server.start()

    async def seed_unknown_revision() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(server.url()))
        await connection.execute("CREATE ROLE users LOGIN PASSWORD 'users'")
        await connection.execute("CREATE DATABASE users OWNER users")
        await connection.close()
        url = server.url(user="users", password="users", database="users")
        connection = await asyncpg.connect(asyncpg_dsn(url))
        await connection.execute(
            "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);"
            "INSERT INTO alembic_version VALUES ('f00dcafe0000')"
        )
        await connection.close()

    asyncio.run(seed_unknown_revision())
    server.stop()

    result = stack_runner.run("up", "--mode", "native")

    assert result.returncode == 1
    assert "migrations of users-svc failed" in result.stderr
    assert "f00dcafe0000" in result.stderr
    assert_nothing_left(stack_runner)


def test_a_port_in_use_is_refused_before_anything_starts(
    stack_runner: StackRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    users = stack_runner.service("users-svc")
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", users.port))
        taken.listen()

        code = stack_runner.main("up", "--mode", "native")

    assert code == 1
    assert f"port {users.port} (users-svc) already in use" in capsys.readouterr().err
    assert_nothing_left(stack_runner)
    assert stack_runner.main("ps") == 0
    assert "not running" in capsys.readouterr().out


def test_a_stale_postgres_lock_is_reported_not_overridden(
    stack_runner: StackRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    lock_file = stack_runner.postgres().lock_file
    lock_file.parent.mkdir(parents=True)
    lock_file.write_text(f"{os.getpid()}\n")  # a live process that is no Postgres

    code = stack_runner.main("up", "--mode", "native")

    assert code == 1
    error = capsys.readouterr().err
    assert "stale lock file" in error
    assert str(lock_file) in error
    assert lock_file.read_text() == f"{os.getpid()}\n"
    assert_nothing_left(stack_runner)


def test_docker_mode_without_an_engine_says_so(
    stack_runner: StackRunner, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stack_runner.env["PATH"] = str(tmp_path)  # no `docker` command at all

    code = stack_runner.main("up", "--mode", "docker")

    assert code == 1
    assert "no Docker engine" in capsys.readouterr().err
    assert_nothing_left(stack_runner)


def test_make_dev_reloads_one_service_when_common_changes(stack_runner: StackRunner) -> None:
    stack_runner.up()
    port = free_port()
    log = stack_runner.stack.state_dir / "dev.log"
    with log.open("w") as output:
        dev = subprocess.Popen(
            [sys.executable, str(STACK_SCRIPT), "dev", "--service", "things-svc", f"--port={port}"],
            env=stack_runner.env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}/health/ready"
        wait_for(lambda: ready(url), what=f"make dev on {port}", log=log)
        reloads = log.read_text().count("Reloading")

        # A file of `common` changes (its modification time is enough).
        os.utime(ROOT / "packages" / "common" / "src" / "common" / "errors.py")

        wait_for(lambda: log.read_text().count("Reloading") > reloads, what="a reload", log=log)
        wait_for(lambda: ready(url), what="ready again after the reload", log=log)
    finally:
        dev.terminate()
        dev.wait(timeout=30)


def ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def wait_for(condition: Callable[[], bool], *, what: str, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {seconds:.0f} s:\n{log.read_text()[-3000:]}")


def test_make_seed_adds_users_and_things_once(running_stack: StackRunner) -> None:
    def seed() -> str:
        result = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "seed_stack.py")],
            env=running_stack.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    first, second = seed(), seed()

    assert "ada@example.com: signed up; 2 of 2 things made" in first
    assert "ada@example.com: already there; 0 of 2 things made" in second
    with Journey(running_stack) as journey:
        login = {"email": "ada@example.com", "password": "correct horse battery staple"}
        token = journey.client.post(f"{journey.users}/auth/login", json=login).json()
        ada = {"access_token": token["access_token"]}
        assert sorted(journey.things_of(ada)) == ["Analytical engine", "Notes on the engine"]


def test_make_migrate_of_one_service_touches_and_reports_that_one(
    running_stack: StackRunner,
) -> None:
    result = running_stack.run("migrate", "--service", "things-svc")

    assert result.returncode == 0, result.stderr
    assert "== things-svc" in result.stdout
    assert "users" not in result.stdout + result.stderr


def test_a_refused_login_stops_make_dev_in_one_line_naming_the_role_and_database(
    running_stack: StackRunner,
) -> None:
    postgres = running_stack.postgres()
    wrong = postgres.url(user="things", password="wrong", database="things")
    running_stack.env["THINGS_DATABASE_URL"] = wrong.render_as_string(hide_password=False)
    try:
        result = running_stack.run("dev", "--service", "things-svc", f"--port={free_port()}")
    finally:
        del running_stack.env["THINGS_DATABASE_URL"]

    assert result.returncode == 1
    assert result.stderr == (
        f"error: things-svc cannot log in to database things on 127.0.0.1:{postgres.port} as "
        'role things: password authentication failed for user "things" '
        "(THINGS_DATABASE_URL in your environment)\n"
    )


def test_make_up_says_which_service_is_not_ready_and_why_then_starts_it_again(
    running_stack: StackRunner,
) -> None:
    things = running_stack.service("things-svc")
    refused = "The database refused the login: authentication failed for role things."

    async def change_things_password() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(running_stack.postgres().url()))
        try:
            await connection.execute("ALTER ROLE things PASSWORD 'changed by someone'")
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'things'"
            )
        finally:
            await connection.close()

    def detail() -> str:
        answer = httpx.get(f"{things.base_url}/health/ready", timeout=5)
        return str(answer.json().get("detail")) if answer.status_code == 503 else "ready"

    asyncio.run(change_things_password())
    wait_for(lambda: detail() == refused, what="things-svc refused", log=running_stack.log())

    result = running_stack.run("up", "--mode", "native")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"stack: things-svc is not ready ({refused})" in result.stdout
    assert "stack: starting the services again" in result.stdout
    # The stack set the role's password again, and lists what answers.
    for service in running_stack.services.values():
        assert f"{service.base_url}/docs" in result.stdout
        assert httpx.get(f"{service.base_url}/health/ready").status_code == 200


def test_make_rollout_of_a_single_process_refuses_and_leaves_it_serving(
    running_stack: StackRunner,
) -> None:
    result = running_stack.run("rollout", "--service", "things-svc")

    assert result.returncode == 1
    assert result.stderr == (
        "error: things-svc runs as one process on its port, with no balancer to move its "
        "requests to a new one: make up REPLICAS=2 (or more) first\n"
    )
    things = running_stack.service("things-svc")
    assert httpx.get(f"{things.base_url}/health/ready").status_code == 200


def test_a_database_url_of_another_scheme_stops_make_dev_in_one_line(
    running_stack: StackRunner,
) -> None:
    running_stack.env["THINGS_DATABASE_URL"] = "mysql://things:s3cret@127.0.0.1/things"
    try:
        result = running_stack.run("dev", "--service", "things-svc", f"--port={free_port()}")
    finally:
        del running_stack.env["THINGS_DATABASE_URL"]

    assert result.returncode == 1
    assert result.stderr == (
        "error: THINGS_DATABASE_URL is mysql://: give a Postgres URL, postgresql+asyncpg://, "
        "postgresql:// or postgres://\n"
    )
