"""Operations read from a running app's OpenAPI schema, so matrices cover new routes unasked;
and the text of the document each service commits beside its code."""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response

HTTP_METHODS = ("get", "put", "post", "patch", "delete")
# Each service's committed OpenAPI document, in its folder (`make openapi` writes it).
OPENAPI_FILE = "openapi.json"


def openapi_document(app: FastAPI) -> str:
    """The app's OpenAPI document as committed: indented, in FastAPI's order, one final newline."""
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    operation_id: str
    path_params: tuple[str, ...]
    secured: bool
    json_body: bool

    def url(self, value: object = None) -> str:
        """The path with every path parameter set to `value`."""
        return re.sub(r"\{[^}]+\}", str(value), self.path)

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


def operations(schema: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in schema["paths"].items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            parameters = operation.get("parameters", [])
            content = operation.get("requestBody", {}).get("content", {})
            found.append(
                Operation(
                    method=method,
                    path=path,
                    operation_id=operation["operationId"],
                    path_params=tuple(p["name"] for p in parameters if p["in"] == "path"),
                    secured=bool(operation.get("security")),
                    json_body="application/json" in content,
                )
            )
    return found


async def call(
    client: AsyncClient,
    operation: Operation,
    *,
    path_value: object,
    headers: Mapping[str, str],
    body: Any = None,
) -> Response:
    """Send `operation` with every path parameter set to `path_value`, and `body` as JSON."""
    return await client.request(
        operation.method,
        operation.url(path_value),
        headers=dict(headers),
        json=body if body is not None or not operation.json_body else {},
    )


async def app_operations(client: AsyncClient) -> list[Operation]:
    response = await client.get("/openapi.json")
    response.raise_for_status()
    return operations(response.json())
