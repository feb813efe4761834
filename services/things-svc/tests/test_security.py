"""Who may do what, checked over every operation the OpenAPI schema lists.

New routes join these matrices without anyone editing them; a route that takes a JSON body must
add a valid example to BODIES, or the tests say so (`make new-domain` adds its domain's). An
operation on one item (`/widgets/{widget_id}`) gets an item made by its collection's POST.
"""

import uuid
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession
from users_provider import UsersProvider

from common.testing import (
    READ_ONLY,
    TokenFactory,
    app_operations,
    bad_token_failures,
    call,
    every_row,
    make_item_for,
    mass_assignment_failures,
)

PUBLIC = {"GET /health/live", "GET /health/ready"}
# A valid body for each operation that takes one, by operationId.
BODIES: dict[str, dict[str, Any]] = {
    "create_thing": {"name": "Lamp"},
    "update_thing": {"name": "Renamed"},
    "share_thing": {"email": "shared-with@example.com"},
}
# Sharing's operations that take a thing shared with the caller, or two ids: their matrix is
# tests/domains/shares/test_routes.py's.
SHARED = {"get_shared_thing", "unshare_thing"}

# Fields no client may set: each one added to a valid body must answer 422.
MASS_ASSIGNED: dict[str, Any] = {**READ_ONLY, "owner_id": str(uuid.uuid4())}


async def make_thing(client: AsyncClient, auth: dict[str, str]) -> str:
    response = await client.post("/api/v1/things", json={"name": "Lamp"}, headers=auth)
    assert response.status_code == 201
    return str(response.json()["id"])


async def test_every_operation_but_health_requires_a_token(client: AsyncClient) -> None:
    operations = await app_operations(client)

    assert {str(op) for op in operations if not op.secured} == PUBLIC
    assert {op.operation_id for op in operations if op.json_body} == set(BODIES)


async def test_token_matrix_every_bad_token_is_401(
    client: AsyncClient, token_factory: TokenFactory
) -> None:
    user = uuid.uuid4()
    thing_id = await make_thing(client, token_factory.auth(user))
    protected = [op for op in await app_operations(client) if op.secured]
    assert len(protected) >= 5

    failures = await bad_token_failures(
        client, token_factory, subject=user, path_value=thing_id, bodies=BODIES
    )

    assert failures == []


async def test_a_valid_token_passes_every_operation(
    client: AsyncClient, token_factory: TokenFactory, users_svc: UsersProvider
) -> None:
    # The control for the matrix above: the same requests with a good token are not refused.
    users_svc.add(BODIES["share_thing"]["email"])
    user = uuid.uuid4()
    auth = token_factory.auth(user)
    for op in await app_operations(client):
        if op.operation_id in SHARED:
            continue
        item_id = None
        if op.path_params:
            item_id = await make_item_for(client, op, headers=auth, bodies=BODIES)
        body = BODIES.get(op.operation_id)
        response = await call(client, op, path_value=item_id, headers=auth, body=body)
        assert response.status_code < 300, f"{op}: {response.status_code} {response.text}"


async def test_ownership_matrix_another_users_item_is_404_and_unchanged(
    client: AsyncClient, db_session: AsyncSession, token_factory: TokenFactory
) -> None:
    alice, bob = token_factory.auth(uuid.uuid4()), token_factory.auth(uuid.uuid4())
    with_ids = [
        op
        for op in await app_operations(client)
        if op.path_params and op.operation_id not in SHARED
    ]
    assert {op.method for op in with_ids} == {"get", "patch", "delete", "post"}

    for op in with_ids:
        alices = await make_item_for(client, op, headers=alice, bodies=BODIES)
        before = await every_row(db_session)
        body = BODIES.get(op.operation_id)
        theirs = await call(client, op, path_value=alices, headers=bob, body=body)
        missing = await call(client, op, path_value=uuid.uuid4(), headers=bob, body=body)

        assert theirs.status_code == 404, op
        assert strip_instance(theirs.json()) == strip_instance(missing.json()), op
        assert await every_row(db_session) == before, op


def strip_instance(problem: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in problem.items() if k not in {"instance", "request_id"}}


async def test_mass_assignment_is_422_and_changes_nothing(
    client: AsyncClient, db_session: AsyncSession, token_factory: TokenFactory
) -> None:
    auth = token_factory.auth(uuid.uuid4())
    thing_id = await make_thing(client, auth)
    before = await every_row(db_session)

    failures = await mass_assignment_failures(
        client, headers=auth, path_value=thing_id, bodies=BODIES, fields=MASS_ASSIGNED
    )

    assert failures == []
    assert await every_row(db_session) == before
