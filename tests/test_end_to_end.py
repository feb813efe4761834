"""Both services as real processes: users-svc signs, things-svc verifies over HTTP.

Each runs under uvicorn on a free loopback port with its own database on the test server,
migrated first, in development mode in an empty folder (so users-svc makes its own key).
"""

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL

from common.testing.plugin import worker_id
from common.testing.postgres import drop_database, recreate_database

ROOT = Path(__file__).parents[1]
AUDIENCE = "e2e-api"
START_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Running:
    url: str
    folder: Path
    log: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def migrated_database(server: URL, service_dir: Path, name: str) -> URL:
    url = recreate_database(server, name)
    config = Config(toml_file=str(service_dir / "pyproject.toml"))
    config.attributes["database_url"] = url.render_as_string(hide_password=False)
    command.upgrade(config, "head")
    return url


@contextmanager
def uvicorn_process(
    app: str, *, port: int, folder: Path, env: Mapping[str, str]
) -> Iterator[Running]:
    folder.mkdir(parents=True)
    log = folder / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)],
            cwd=folder,
            env={**os.environ, "ENVIRONMENT": "development", **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield Running(url=f"http://127.0.0.1:{port}", folder=folder, log=log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def wait_ready(client: httpx.AsyncClient, running: Running) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if (await client.get(f"{running.url}/health/ready")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    pytest.fail(f"{running.url} never became ready:\n{running.log.read_text()}")


@pytest.fixture
async def stack(postgres_server: URL, tmp_path: Path) -> AsyncIterator[tuple[Running, Running]]:
    names = {svc: f"test_e2e_{svc}_{worker_id()}" for svc in ("users", "things")}
    # One after the other: Alembic keeps its context in module globals.
    users_db = await asyncio.to_thread(
        migrated_database, postgres_server, ROOT / "services/users-svc", names["users"]
    )
    things_db = await asyncio.to_thread(
        migrated_database, postgres_server, ROOT / "services/things-svc", names["things"]
    )
    users_port, things_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{users_port}"
    users_env = {
        "USERS_DATABASE_URL": users_db.render_as_string(hide_password=False),
        "USERS_MIGRATIONS_DIR": str(ROOT / "services/users-svc/alembic"),
        "USERS_TOKEN_ISSUER": issuer,
        "USERS_TOKEN_AUDIENCE": AUDIENCE,
        "USERS_PASSWORD_TIME_COST": "1",
        "USERS_PASSWORD_MEMORY_KIB": "1024",
    }
    things_env = {
        "THINGS_DATABASE_URL": things_db.render_as_string(hide_password=False),
        "THINGS_MIGRATIONS_DIR": str(ROOT / "services/things-svc/alembic"),
        "THINGS_TOKEN_ISSUER": issuer,
        "THINGS_TOKEN_AUDIENCE": AUDIENCE,
        "THINGS_JWKS_URL": f"{issuer}/.well-known/jwks.json",
    }
    try:
        with (
            uvicorn_process(
                "users_svc.main:app", port=users_port, folder=tmp_path / "users", env=users_env
            ) as users,
            uvicorn_process(
                "things_svc.main:app", port=things_port, folder=tmp_path / "things", env=things_env
            ) as things,
        ):
            async with httpx.AsyncClient(timeout=10) as client:
                await asyncio.gather(wait_ready(client, users), wait_ready(client, things))
            yield users, things
    finally:
        for name in names.values():
            await asyncio.to_thread(drop_database, postgres_server, name)


async def sign_up_and_log_in(client: httpx.AsyncClient, users: Running, email: str) -> str:
    signup = {"email": email, "full_name": email.split("@")[0], "password": "correct horse"}
    assert (await client.post(f"{users.url}/api/v1/users", json=signup)).status_code == 201
    form = {"username": email, "password": "correct horse"}
    response = await client.post(f"{users.url}/api/v1/auth/token", data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def test_a_users_svc_token_works_on_things_svc_and_things_stay_their_owners(
    stack: tuple[Running, Running],
) -> None:
    users, things = stack
    async with httpx.AsyncClient(timeout=10) as client:
        alice = {"Authorization": f"Bearer {await sign_up_and_log_in(client, users, 'a@x.io')}"}
        bob = {"Authorization": f"Bearer {await sign_up_and_log_in(client, users, 'b@x.io')}"}
        me = (await client.get(f"{users.url}/api/v1/users/me", headers=alice)).json()

        created = await client.post(
            f"{things.url}/api/v1/things", json={"name": "Lamp"}, headers=alice
        )
        assert created.status_code == 201, created.text
        thing = created.json()
        assert thing["owner_id"] == me["id"]
        url = f"{things.url}/api/v1/things/{thing['id']}"

        assert (await client.get(url, headers=alice)).json() == thing
        assert (await client.get(url, headers=bob)).status_code == 404
        assert (await client.patch(url, json={"name": "Mine"}, headers=bob)).status_code == 404
        assert (await client.delete(url, headers=bob)).status_code == 404
        bobs_list = await client.get(f"{things.url}/api/v1/things", headers=bob)
        assert bobs_list.json()["items"] == []
        assert (await client.get(url)).status_code == 401
        assert (await client.get(url, headers=alice)).json() == thing

    # things-svc learnt the key over HTTP; users-svc made it on first start, outside the repo.
    assert "/.well-known/jwks.json" in users.log.read_text()
    assert (users.folder / ".local" / "signing-key.pem").exists()
