"""What the OpenAPI document says about errors: every error response is the `Problem` the app
answers, and every operation lists the errors any request can get. Each operation's id is its
route's name.

Installed as FastAPI's docs show ("Extending OpenAPI"): `app.openapi` builds the document once
with `get_openapi`, adds the problems, and keeps it in `app.openapi_schema`.
"""

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from common.errors import PROBLEM_MEDIA_TYPE, Problem


def operation_id(route: APIRoute) -> str:
    """The route's function name, `log_in` or `create_thing`: what a client generated from the
    document names its calls. FastAPI's own (`log_in_api_v1_auth_login_post`) repeats the path.
    Names are unique in a service: FastAPI warns of a duplicate, and the tests fail on warnings."""
    return route.name


PROBLEM_REF = "#/components/schemas/Problem"
OPENAPI_METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}
# Statuses every operation can answer, whatever its route declares: the middleware's limits,
# the unexpected error, and the database (or another limit) being unavailable for a moment.
EVERY_OPERATION = {
    "431": "The request's headers are too large",
    "500": "Unexpected error",
    "503": "Unavailable for a moment (the database, or the service, is too busy or unreachable)",
}
WITH_INPUT = {"422": "Invalid request: a parameter or the body is missing, malformed or invalid"}
WITH_BODY = {"413": "The request body is too large"}
# Headers an error response always carries, by status.
ERROR_HEADERS = {"429": RETRY_AFTER_HEADER, "503": RETRY_AFTER_HEADER}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """The app's OpenAPI document made to say what the app answers on errors, in place.

    Every error response is `application/problem+json` with the `Problem` schema (FastAPI would
    document `application/json`), every operation lists the errors any request can get (and 422
    when it takes input, 413 when it takes a body), and `Retry-After` is documented where it is
    always sent. FastAPI's own validation-error schemas, which no answer uses, are left out.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for path_item in schema.get("paths", {}).values():
        for method in OPENAPI_METHODS:
            if method in path_item:
                _document_operation(path_item[method])
    # In this order: HTTPValidationError refers to ValidationError.
    for unused in ("HTTPValidationError", "ValidationError"):
        if f'"#/components/schemas/{unused}"' not in json.dumps(schema):
            components.pop(unused, None)
    return schema


def _document_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    added = dict(EVERY_OPERATION)
    if operation.get("parameters") or "requestBody" in operation:
        added |= WITH_INPUT
    if "requestBody" in operation:
        added |= WITH_BODY
    for status, description in added.items():
        responses.setdefault(status, {"description": description})
    if responses.get("422", {}).get("description") == "Validation Error":  # FastAPI's own
        responses["422"]["description"] = WITH_INPUT["422"]
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400:
            response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}}
            if status in ERROR_HEADERS:
                response["headers"] = {**ERROR_HEADERS[status], **response.get("headers", {})}
    operation["responses"] = dict(sorted(responses.items()))


def install_openapi(app: FastAPI) -> None:
    """`app.openapi` made to document every error response as the app answers it."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                summary=app.summary,
                description=app.description,
                terms_of_service=app.terms_of_service,
                contact=app.contact,
                license_info=app.license_info,
                routes=app.routes,
                webhooks=app.webhooks.routes,
                tags=app.openapi_tags,
                servers=app.servers,
                separate_input_output_schemas=app.separate_input_output_schemas,
                external_docs=app.openapi_external_docs,
            )
            app.openapi_schema = document_problems(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
