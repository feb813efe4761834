"""Security matrices over every operation of an app, shared by every service's tests."""

import uuid
from collections.abc import Mapping
from typing import Any

from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from common.testing.openapi import Operation, app_operations, call
from common.testing.tokens import TokenFactory, forged_authorizations

PROBLEM = "application/problem+json"

# What every model of `common.db` has and no client may set: a service's tests add their own
# fields (an owner, a role) to these for `mass_assignment_failures`.
READ_ONLY: dict[str, Any] = {
    "id": str(uuid.uuid4()),
    "created_at": "2020-01-01T00:00:00Z",
    "updated_at": "2020-01-01T00:00:00Z",
}


async def bad_token_failures(
    client: AsyncClient,
    factory: TokenFactory,
    *,
    subject: uuid.UUID,
    path_value: object,
    bodies: Mapping[str, Any],
) -> list[str]:
    """Every forged `Authorization` on every secured operation: what did not answer a 401
    problem with `WWW-Authenticate: Bearer`. `bodies` holds a valid body by operationId."""
    protected = [op for op in await app_operations(client) if op.secured]
    failures = []
    for case, headers in forged_authorizations(factory, subject).items():
        for op in protected:
            body = bodies.get(op.operation_id)
            response = await call(client, op, path_value=path_value, headers=headers, body=body)
            answered = (
                response.status_code,
                response.headers.get("content-type"),
                response.headers.get("www-authenticate", "").split(" ")[0],
            )
            if answered != (401, PROBLEM, "Bearer"):
                failures.append(f"{case}: {op} answered {answered}")
    return failures


async def mass_assignment_failures(
    client: AsyncClient,
    *,
    headers: Mapping[str, str],
    path_value: object,
    bodies: Mapping[str, Any],
    fields: Mapping[str, Any],
    headers_by_operation: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """Each of `fields` (what no client may set) added to a valid body of every JSON
    operation: what did not answer 422. An operation in `headers_by_operation` is called with
    its own headers (another service's token, say)."""
    failures = []
    for op in await app_operations(client):
        if not op.json_body:
            continue
        for field, value in fields.items():
            body = {**bodies[op.operation_id], field: value}
            own = (headers_by_operation or {}).get(op.operation_id, headers)
            response = await call(client, op, path_value=path_value, headers=own, body=body)
            if response.status_code != 422:
                failures.append(f"{op} with {field} answered {response.status_code}")
    return failures


async def make_item_for(
    client: AsyncClient, op: Operation, *, headers: Mapping[str, str], bodies: Mapping[str, Any]
) -> str:
    """An item of the collection `op` works on (`/widgets` for `/widgets/{widget_id}`), of the
    caller `headers` names: a new one made by the collection's POST with its body from `bodies`,
    or, for a collection the API fills itself (the sessions logins start), the first item its
    GET lists. Its id."""
    collection = op.path.split("/{")[0]
    listed = await app_operations(client)
    create = next((o for o in listed if o.method == "post" and o.path == collection), None)
    if create is None:
        found = next((o for o in listed if o.method == "get" and o.path == collection), None)
        assert found is not None, f"{op}: no POST or GET {collection} to find an item with"
        page = await client.get(collection, headers=dict(headers))
        assert page.status_code == 200, f"{found}: {page.status_code} {page.text}"
        items = page.json()["items"]
        assert items, f"{found}: the caller has no item to work on"
        return str(items[0]["id"])
    response = await client.post(
        collection, json=bodies[create.operation_id], headers=dict(headers)
    )
    assert response.status_code == 201, f"{create}: {response.status_code} {response.text}"
    return str(response.json()["id"])


async def every_row(session: AsyncSession) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of the database, row by row: what a refused request must leave unchanged."""
    tables = await session.scalars(
        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    )
    rows = {}
    for table in tables.all():
        result = await session.execute(text(f'SELECT * FROM "{table}" ORDER BY 1'))
        rows[table] = [tuple(row) for row in result]
    return rows
