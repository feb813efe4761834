"""Who may do what, checked over every operation the OpenAPI schema lists.

New routes join these matrices without anyone editing them; a route that takes a JSON body must
add a valid example to BODIES, or the tests say so (`make new-domain` adds its domain's). An
operation on one item of another domain gets an item made by its collection's POST.
"""

import uuid
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession
from users_factories import PASSWORD, Accounts

from common.testing import (
    Operation,
    TokenFactory,
    app_operations,
    bad_token_failures,
    call,
    every_row,
    make_item_for,
    mass_assignment_failures,
)

PUBLIC = {
    "GET /health/live",
    "GET /health/ready",
    "POST /api/v1/users",
    "POST /api/v1/auth/login",
    "POST /api/v1/auth/token",
    "GET /.well-known/jwks.json",
}
# A valid body for each operation that takes a JSON one, by operationId.
BODIES: dict[str, dict[str, Any]] = {
    "sign_up_api_v1_users_post": {
        "email": "new@example.com",
        "full_name": "New",
        "password": PASSWORD,
    },
    "update_me_api_v1_users_me_patch": {"full_name": "Renamed"},
    "change_my_password_api_v1_users_me_password_post": {
        "current_password": PASSWORD,
        "new_password": "another password",
    },
    "log_in_api_v1_auth_login_post": {"email": "ada@example.com", "password": PASSWORD},
}


def on_an_account(op: Operation) -> bool:
    """An administrator's operation on someone's account: `/api/v1/users/{user_id}...`."""
    return op.path.startswith("/api/v1/users/{")


async def test_every_operation_but_the_public_ones_requires_a_token(client: AsyncClient) -> None:
    operations = await app_operations(client)

    assert {str(op) for op in operations if not op.secured} == PUBLIC
    assert {op.operation_id for op in operations if op.json_body} == set(BODIES)


async def test_token_matrix_every_bad_token_is_401(
    client: AsyncClient, accounts: Accounts, token_factory: TokenFactory
) -> None:
    ada = await accounts.create(admin=True)
    protected = [op for op in await app_operations(client) if op.secured]
    assert len(protected) >= 8

    failures = await bad_token_failures(
        client, token_factory, subject=ada.id, path_value=ada.id, bodies=BODIES
    )

    assert failures == []


async def test_a_valid_token_passes_every_operation(
    client: AsyncClient, accounts: Accounts, token_factory: TokenFactory
) -> None:
    # The control for the matrix above: an administrator's good token is refused nowhere.
    for op in await app_operations(client):
        if not op.secured:
            continue
        # A fresh administrator each time: one of the operations deactivates its caller.
        admin = await accounts.create(f"admin-{op.operation_id}@example.com", admin=True)
        auth = token_factory.auth(admin.id)
        target: object = None
        if on_an_account(op):
            target = (await accounts.create(f"target-{op.operation_id}@example.com")).id
        elif op.path_params:
            target = await make_item_for(client, op, headers=auth, bodies=BODIES)
        response = await call(
            client, op, path_value=target, headers=auth, body=BODIES.get(op.operation_id)
        )
        assert response.status_code < 300, f"{op}: {response.status_code} {response.text}"


async def test_operations_on_another_account_are_for_admins_only(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    # users-svc's only operations that take an id act on someone else's account: an ordinary
    # user gets 403 whether the id exists or not, and nothing changes.
    alice = await accounts.create("alice@example.com")
    bob = await accounts.create("bob@example.com")
    before = await every_row(db_session)
    with_ids = [op for op in await app_operations(client) if on_an_account(op)]
    assert len(with_ids) >= 3

    for op in with_ids:
        body = BODIES.get(op.operation_id)
        theirs = await call(client, op, path_value=alice.id, headers=bob.auth, body=body)
        missing = await call(client, op, path_value=uuid.uuid4(), headers=bob.auth, body=body)

        assert (theirs.status_code, missing.status_code) == (403, 403), op
        assert theirs.json()["detail"] == missing.json()["detail"], op
        assert await every_row(db_session) == before, op


async def test_mass_assignment_is_422_and_changes_nothing(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    ada = await accounts.create("ada@example.com")
    before = await every_row(db_session)

    failures = await mass_assignment_failures(
        client, headers=ada.auth, path_value=ada.id, bodies=BODIES
    )

    assert failures == []
    assert await every_row(db_session) == before
