"""users-svc as a real process under `python -m common.serve`: what uvicorn itself would have
believed of X-Forwarded-For (from loopback, by default) no longer chooses a client's key."""

from pathlib import Path

import httpx
import pytest
from reliability.processes import users_and_things
from sqlalchemy.engine import URL

from common.testing.plugin import worker_id

pytestmark = pytest.mark.processes

PER_CLIENT = 3


async def test_failed_logins_with_a_new_forwarded_for_each_reach_the_client_limit(
    postgres_server: URL, tmp_path: Path
) -> None:
    # The attack of issue #29 on the native stack: from 127.0.0.1, a new X-Forwarded-For on every
    # failed login, each for another email (the per-account limit never applies).
    async with (
        users_and_things(
            postgres_server,
            tmp_path,
            name=f"test_forwarded_{worker_id()}",
            audience="api",
            users_settings={"login_failures_per_client": str(PER_CLIENT)},
        ) as services,
        httpx.AsyncClient(base_url=services.users.url) as client,
    ):
        statuses = [
            (
                await client.post(
                    "/api/v1/auth/login",
                    json={"email": f"guess-{n}@example.com", "password": "wrong"},
                    headers={"X-Forwarded-For": f"198.51.100.{n}"},
                )
            ).status_code
            for n in range(PER_CLIENT + 1)
        ]

    assert statuses == [401] * PER_CLIENT + [429]
