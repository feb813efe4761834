"""What an operator sees of logins: refused ones counted on users-svc's metrics."""

from httpx import AsyncClient
from prometheus_client import REGISTRY
from users_factories import Accounts

LOGIN = "/api/v1/auth/login"


def refused() -> float:
    labels = {"reason": "invalid_credentials"}
    return REGISTRY.get_sample_value("auth_login_failures_total", labels) or 0.0


async def test_a_wrong_password_and_an_unknown_email_are_counted_as_failed_logins(
    client: AsyncClient, accounts: Accounts
) -> None:
    await accounts.create("ada@example.com")
    before = refused()

    wrong = await client.post(LOGIN, json={"email": "ada@example.com", "password": "not hers!"})
    unknown = await client.post(LOGIN, json={"email": "bob@example.com", "password": "whatever"})

    assert (wrong.status_code, unknown.status_code) == (401, 401)
    assert refused() == before + 2
