"""Both services as real processes: users-svc signs, things-svc verifies over HTTP.

Each runs under uvicorn on a free loopback port with its own database on the test server,
migrated first, in development mode in an empty folder (so users-svc makes its own key).
"""

import importlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from reliability.processes import users_and_things
from sqlalchemy.engine import URL

from common.logs import mask_secrets
from common.testing.plugin import worker_id
from devstack.processes import ServiceProcess

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[1]
AUDIENCE = "e2e-api"


@pytest.fixture
async def stack(
    postgres_server: URL, tmp_path: Path
) -> AsyncIterator[tuple[ServiceProcess, ServiceProcess]]:
    # The access log shows users-svc's JWKS being fetched by things-svc.
    name = f"test_e2e_{worker_id()}"
    async with users_and_things(
        postgres_server, tmp_path, name=name, audience=AUDIENCE, access_log=True
    ) as services:
        yield services.users, services.things


async def sign_up_and_log_in(client: httpx.AsyncClient, users: ServiceProcess, email: str) -> str:
    signup = {"email": email, "full_name": email.split("@")[0], "password": "correct horse"}
    assert (await client.post(f"{users.url}/api/v1/users", json=signup)).status_code == 201
    form = {"username": email, "password": "correct horse"}
    response = await client.post(f"{users.url}/api/v1/auth/token", data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def test_a_users_svc_token_works_on_things_svc_and_things_stay_their_owners(
    stack: tuple[ServiceProcess, ServiceProcess],
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
    assert (users.cwd / ".local" / "signing-key.pem").exists()
    # Passwords and tokens went through both: neither wrote one to its log.
    for process in (users, things):
        log = process.log.read_text()
        assert mask_secrets(log) == log, process.name


async def test_a_thing_shared_by_email_is_read_by_the_account_users_svc_finds(
    stack: tuple[ServiceProcess, ServiceProcess],
) -> None:
    """things-svc asks users-svc for the account, with a token of its own (client credentials)."""
    users, things = stack
    async with httpx.AsyncClient(timeout=10) as client:
        alice = {"Authorization": f"Bearer {await sign_up_and_log_in(client, users, 'a@x.io')}"}
        bob = {"Authorization": f"Bearer {await sign_up_and_log_in(client, users, 'b@x.io')}"}
        bob_id = (await client.get(f"{users.url}/api/v1/users/me", headers=bob)).json()["id"]
        created = await client.post(
            f"{things.url}/api/v1/things", json={"name": "Lamp"}, headers=alice
        )
        thing_id = created.json()["id"]

        shared = await client.post(
            f"{things.url}/api/v1/things/{thing_id}/shares",
            json={"email": "B@x.io"},
            headers=alice,
        )
        unknown = await client.post(
            f"{things.url}/api/v1/things/{thing_id}/shares",
            json={"email": "nobody@x.io"},
            headers=alice,
        )
        read = await client.get(f"{things.url}/api/v1/shared-things/{thing_id}", headers=bob)

    assert shared.status_code == 201, shared.text
    assert shared.json()["user_id"] == bob_id
    assert unknown.status_code == 404
    assert (read.status_code, read.json()["name"]) == (200, "Lamp")


def generate_client(service: str, package: Path) -> None:
    """The client openapi-python-client makes of the service's committed OpenAPI document."""
    tools = Path(sys.executable).parent  # the generator, and the ruff it formats its code with
    command = [str(tools / "openapi-python-client"), "generate", "--meta", "none"]
    command += ["--path", f"services/{service}/openapi.json", "--output-path", str(package)]
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)


async def test_clients_generated_from_the_documents_sign_up_log_in_and_make_a_thing(
    stack: tuple[ServiceProcess, ServiceProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each call is named by its operation id: `sign_up`, `log_in`, `create_thing`."""
    users, things = stack
    generate_client("users-svc", tmp_path / "users_client")
    generate_client("things-svc", tmp_path / "things_client")
    monkeypatch.syspath_prepend(tmp_path)
    users_client = importlib.import_module("users_client")
    users_models = importlib.import_module("users_client.models")
    sign_up = importlib.import_module("users_client.api.users.sign_up")
    log_in = importlib.import_module("users_client.api.auth.log_in")
    things_client = importlib.import_module("things_client")
    things_models = importlib.import_module("things_client.models")
    create_thing = importlib.import_module("things_client.api.things.create_thing")

    async with users_client.Client(base_url=users.url) as client:
        account = users_models.UserCreate(
            email="gen@x.io", full_name="Gen", password="correct horse"
        )
        user = await sign_up.asyncio(client=client, body=account)
        login = users_models.Login(email="gen@x.io", password="correct horse")
        tokens = await log_in.asyncio(client=client, body=login)
    assert isinstance(user, users_models.UserRead), user
    assert isinstance(tokens, users_models.Tokens), tokens

    async with things_client.AuthenticatedClient(
        base_url=things.url, token=tokens.access_token
    ) as client:
        thing = await create_thing.asyncio(
            client=client, body=things_models.ThingCreate(name="Lamp")
        )
    assert isinstance(thing, things_models.ThingRead), thing
    assert (thing.name, thing.owner_id) == ("Lamp", user.id)
