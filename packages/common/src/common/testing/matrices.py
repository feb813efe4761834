"""Security matrices over every operation of an app, shared by every service's tests."""

import uuid
from collections.abc import Mapping
from typing import Any

from httpx import AsyncClient

from common.testing.openapi import app_operations, call
from common.testing.tokens import TokenFactory, forged_authorizations

PROBLEM = "application/problem+json"

# Fields no client may ever set, whatever the operation: each one in a body must answer 422.
MASS_ASSIGNED: dict[str, Any] = {
    "is_superuser": True,
    "is_active": False,
    "id": str(uuid.uuid4()),
    "hashed_password": "$argon2id$forged",
    "owner_id": str(uuid.uuid4()),
    "created_at": "2020-01-01T00:00:00Z",
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
) -> list[str]:
    """Each field of MASS_ASSIGNED added to a valid body of every JSON operation: what did
    not answer 422."""
    failures = []
    for op in await app_operations(client):
        if not op.json_body:
            continue
        for field, value in MASS_ASSIGNED.items():
            body = {**bodies[op.operation_id], field: value}
            response = await call(client, op, path_value=path_value, headers=headers, body=body)
            if response.status_code != 422:
                failures.append(f"{op} with {field} answered {response.status_code}")
    return failures
