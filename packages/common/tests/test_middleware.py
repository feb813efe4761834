"""What every request goes through around the app: past the size limits, 413 or 431 problem+json,
the body left unread, nothing written; refused or not, its ID echoed and its duration counted."""

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Database
from common.settings import AppBaseSettings
from common.testing import ServiceUnderTest
from common.testing.plugin import open_client

LIMIT = 64
DURATION = "http_server_request_duration_seconds"


@pytest.fixture
async def small_limit_client(
    service: ServiceUnderTest,
    settings: AppBaseSettings,
    test_database: Database,
) -> AsyncIterator[AsyncClient]:
    limited = settings.model_copy(update={"max_request_body_bytes": LIMIT})
    app: FastAPI = service.app(limited, database=test_database)
    async with open_client(app) as client:
        yield client


class Chunks:
    """A request body sent in chunks (no Content-Length), counting what was read of it."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.read += 1
            yield chunk


async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    small_limit_client: AsyncClient, db_session: AsyncSession
) -> None:
    body = Chunks(b'{"code": "', b"x" * LIMIT, b'"}')
    length = str(sum(len(chunk) for chunk in body.chunks))

    response = await small_limit_client.post(
        "/api/v1/widgets",
        content=body,
        headers={"content-type": "application/json", "content-length": length},
    )

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Content Too Large"
    assert "x-request-id" in response.headers
    assert body.read == 0
    assert await db_session.scalar(text("SELECT count(*) FROM widgets")) == 0


async def test_a_chunked_body_growing_past_the_limit_is_refused(
    small_limit_client: AsyncClient, db_session: AsyncSession
) -> None:
    body = Chunks(b'{"code": "', b"x" * (LIMIT // 2), b"x" * LIMIT, b'"}', b" " * LIMIT)

    response = await small_limit_client.post(
        "/api/v1/widgets", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert body.read < len(body.chunks)  # stopped reading once past the limit
    assert await db_session.scalar(text("SELECT count(*) FROM widgets")) == 0


async def test_a_body_within_the_limit_passes_chunked_or_not(
    small_limit_client: AsyncClient, db_session: AsyncSession
) -> None:
    chunked = await small_limit_client.post(
        "/api/v1/widgets",
        content=Chunks(b'{"code": ', b'"a"}'),
        headers={"content-type": "application/json"},
    )
    whole = await small_limit_client.post("/api/v1/widgets", json={"code": "b" * (LIMIT - 20)})

    assert (chunked.status_code, whole.status_code) == (201, 201)
    assert await db_session.scalar(text("SELECT count(*) FROM widgets")) == 2


async def test_the_default_limit_is_one_mebibyte(client: AsyncClient) -> None:
    response = await client.post(
        "/api/v1/widgets",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": str(1024 * 1024 + 1)},
    )

    assert response.status_code == 413


async def test_headers_over_16_kib_are_refused_with_431(client: AsyncClient) -> None:
    refused = await client.get("/api/v1/widgets", headers={"X-Padding": "a" * 16 * 1024})
    accepted = await client.get("/api/v1/widgets", headers={"X-Padding": "a" * 8 * 1024})

    assert refused.status_code == 431
    assert refused.headers["content-type"] == "application/problem+json"
    assert accepted.status_code == 200


async def test_a_refused_request_carries_its_id_and_is_counted(client: AsyncClient) -> None:
    labels = {"method": "GET", "route": "unmatched", "status": "431"}
    before = REGISTRY.get_sample_value(f"{DURATION}_count", labels) or 0.0

    refused = await client.get(
        "/api/v1/widgets", headers={"X-Request-ID": "big-1", "X-Padding": "a" * 16 * 1024}
    )

    assert refused.status_code == 431
    assert refused.headers["x-request-id"] == "big-1"
    assert refused.headers["connection"] == "close"
    assert refused.json()["request_id"] == "big-1"
    assert REGISTRY.get_sample_value(f"{DURATION}_count", labels) == before + 1
