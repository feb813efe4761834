"""Contract tests: a consumer's calls checked against its provider's committed OpenAPI document.

The consumer's tests meet the provider as a stand-in that answers as the document says; these
checks keep both honest: what the consumer sends is a request the document accepts, what the
stand-in answers is an answer the document promises, and every field the consumer reads is one
the provider must send. A change of the provider's document that breaks a call fails the
consumer's tests, naming the operation and the field.
"""

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel


class Contract:
    """A provider's OpenAPI document (its `openapi.json`, as committed)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    @classmethod
    def read(cls, path: Path) -> "Contract":
        return cls(json.loads(path.read_text()))

    def operation(self, method: str, path: str) -> dict[str, Any]:
        operation = self.document["paths"].get(path, {}).get(method.lower())
        assert operation is not None, f"the provider has no {method.upper()} {path}"
        found: dict[str, Any] = operation
        return found

    def request_problems(
        self, method: str, path: str, body: Any, *, media_type: str = "application/json"
    ) -> list[str]:
        """Where `body` is not a request the operation accepts."""
        content = self.operation(method, path).get("requestBody", {}).get("content", {})
        if media_type not in content:
            return [f"{method.upper()} {path} takes no {media_type} body"]
        return self._problems(content[media_type]["schema"], body)

    def response_problems(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """Where `body` is not an answer the operation promises with `status`."""
        response = self.operation(method, path)["responses"].get(str(status))
        if response is None:
            return [f"{method.upper()} {path} never answers {status}"]
        (media,) = response.get("content", {}).values()
        return self._problems(media["schema"], body)

    def read_problems(
        self, method: str, path: str, status: int, model: type[BaseModel]
    ) -> list[str]:
        """The fields the consumer's `model` requires that the answer does not promise: each
        one the document's schema lists as required, with the same JSON type."""
        response = self.operation(method, path)["responses"].get(str(status))
        if response is None:
            return [f"{method.upper()} {path} never answers {status}"]
        (media,) = response.get("content", {}).values()
        promised = self._resolved(media["schema"])
        properties, required = promised.get("properties", {}), set(promised.get("required", ()))
        expected = model.model_json_schema()["properties"]
        problems = []
        for name, field in model.model_fields.items():
            if not field.is_required():
                continue
            if name not in required:
                problems.append(f"{name}: read by the consumer, not required in the answer")
            elif properties[name].get("type") != expected[name].get("type"):
                problems.append(
                    f"{name}: {properties[name].get('type')} in the answer, "
                    f"{expected[name].get('type')} for the consumer"
                )
        return problems

    def _resolved(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            *_, name = schema["$ref"].split("/")
            schema = self.document["components"]["schemas"][name]
        return schema

    def _problems(self, schema: dict[str, Any], value: Any) -> list[str]:
        # The document's components beside the schema, so its `#/components/...` refs resolve.
        validator = Draft202012Validator({**schema, "components": self.document["components"]})
        return [
            f"{'/'.join(map(str, error.absolute_path)) or '(the body)'}: {error.message}"
            for error in validator.iter_errors(value)
        ]
