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
    READ_ONLY,
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
    "POST /api/v1/auth/refresh",
    "POST /api/v1/auth/logout",
    "GET /.well-known/jwks.json",
}
# A refresh token of a session nobody has: refused (401) or ignored (logout), never a 5xx.
UNKNOWN_REFRESH_TOKEN = f"{uuid.UUID(int=0).hex}.not-a-secret"
# A valid body for each operation that takes a JSON one, by operationId.
BODIES: dict[str, dict[str, Any]] = {
    "sign_up": {
        "email": "new@example.com",
        "full_name": "New",
        "password": PASSWORD,
    },
    "update_me": {"full_name": "Renamed"},
    "change_my_password": {
        "current_password": PASSWORD,
        "new_password": "another password",
    },
    "erase_me": {"password": PASSWORD},
    "log_in": {"email": "ada@example.com", "password": PASSWORD},
    "refresh": {"refresh_token": UNKNOWN_REFRESH_TOKEN},
    "log_out": {"refresh_token": UNKNOWN_REFRESH_TOKEN},
    "look_up_user": {"email": "ada@example.com"},
}
# Operations for other services, with their own token and its scopes, not for users.
FOR_SERVICES = {"look_up_user": ["users:lookup"]}

# Fields no client may set: each one added to a valid body must answer 422.
MASS_ASSIGNED: dict[str, Any] = {
    **READ_ONLY,
    "is_superuser": True,
    "is_active": False,
    "hashed_password": "$argon2id$forged",
}


def on_an_account(op: Operation) -> bool:
    """An administrator's operation on someone's account: `/api/v1/users/{user_id}...`."""
    return op.path.startswith("/api/v1/users/{")


def on_one_of_mine(op: Operation) -> bool:
    """An operation on one item of the caller's own: `/api/v1/users/me/sessions/{session_id}`."""
    return bool(op.path_params) and not on_an_account(op)


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
        body = BODIES.get(op.operation_id)
        if op.operation_id in FOR_SERVICES:
            auth = token_factory.service_auth("a-svc", scopes=FOR_SERVICES[op.operation_id])
            body = {"email": admin.email}
        target: object = None
        if on_an_account(op):
            target = (await accounts.create(f"target-{op.operation_id}@example.com")).id
        elif op.path_params:
            target = await make_item_for(client, op, headers=auth, bodies=BODIES)
        response = await call(client, op, path_value=target, headers=auth, body=body)
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


async def test_ownership_matrix_another_users_item_is_404_and_unchanged(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts
) -> None:
    alice = await accounts.create("alice@example.com")
    bob = await accounts.create("bob@example.com")
    mine = [op for op in await app_operations(client) if on_one_of_mine(op)]
    assert mine

    for op in mine:
        alices = await make_item_for(client, op, headers=alice.auth, bodies=BODIES)
        before = await every_row(db_session)
        body = BODIES.get(op.operation_id)
        theirs = await call(client, op, path_value=alices, headers=bob.auth, body=body)
        missing = await call(client, op, path_value=uuid.uuid4(), headers=bob.auth, body=body)

        assert (theirs.status_code, missing.status_code) == (404, 404), op
        assert theirs.json()["detail"] == missing.json()["detail"], op
        assert await every_row(db_session) == before, op


async def test_mass_assignment_is_422_and_changes_nothing(
    client: AsyncClient, db_session: AsyncSession, accounts: Accounts, token_factory: TokenFactory
) -> None:
    ada = await accounts.create("ada@example.com")
    before = await every_row(db_session)
    services = {
        operation: token_factory.service_auth("a-svc", scopes=scopes)
        for operation, scopes in FOR_SERVICES.items()
    }

    failures = await mass_assignment_failures(
        client,
        headers=ada.auth,
        path_value=ada.id,
        bodies=BODIES,
        fields=MASS_ASSIGNED,
        headers_by_operation=services,
    )

    assert failures == []
    assert await every_row(db_session) == before
