"""Traces of things-svc, as a collector would receive them (the OpenTelemetry SDK, its spans kept
in memory): the request's server span, its statements, and the fetch of users-svc's keys."""

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from httpx import AsyncClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind
from sqlalchemy.engine import URL

from common.auth import JWKS_PATH
from common.db import Database
from common.testing import ServiceUnderTest, TokenFactory
from common.testing.plugin import open_client, tracing_into
from common.testing.tokens import signing_key_for_tests

URL_THINGS = "/api/v1/things"
ALICE = uuid.uuid4()


def context_of(span: ReadableSpan) -> SpanContext:
    context: SpanContext | None = span.context
    assert context is not None
    return context


def descendants(spans: list[ReadableSpan], root: ReadableSpan) -> list[ReadableSpan]:
    """Every span under `root` in its trace, at any depth."""
    assert root.context is not None
    below, parents = [], {root.context.span_id}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        if span.parent is not None and span.parent.span_id in parents:
            assert span.context is not None
            below.append(span)
            parents.add(span.context.span_id)
    return below


def server_span(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    servers = [s for s in spans if s.kind is SpanKind.SERVER and s.name == name]
    assert len(servers) == 1, [s.name for s in spans]
    return servers[0]


async def test_one_request_is_a_server_span_named_by_its_route_with_its_statements_below(
    traced_client: AsyncClient, span_exporter: InMemorySpanExporter, token_factory: TokenFactory
) -> None:
    auth = token_factory.auth(ALICE)
    created = await traced_client.post(URL_THINGS, json={"name": "Lamp"}, headers=auth)
    assert created.status_code == 201
    span_exporter.clear()

    response = await traced_client.get(f"{URL_THINGS}/{created.json()['id']}", headers=auth)

    assert response.status_code == 200
    spans = list(span_exporter.get_finished_spans())
    server = server_span(spans, "GET /api/v1/things/{thing_id}")
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/api/v1/things/{thing_id}"
    assert server.attributes["http.response.status_code"] == 200
    statements = [s for s in descendants(spans, server) if s.kind is SpanKind.CLIENT]
    assert statements, "no database span under the request's span"
    for statement in statements:
        assert statement.attributes is not None
        assert statement.attributes.get("db.system.name", statement.attributes.get("db.system"))
        assert context_of(statement).trace_id == context_of(server).trace_id
    texts = " ".join(str(dict(s.attributes or {})) for s in statements)
    assert "things" in texts
    assert str(ALICE) not in texts  # statements, never their parameters


async def test_health_probes_are_not_traced(
    traced_client: AsyncClient, span_exporter: InMemorySpanExporter
) -> None:
    assert (await traced_client.get("/health/live")).status_code == 200

    assert span_exporter.get_finished_spans() == ()


class KeysServer:
    """users-svc's JWKS as a verifier sees it, noting the `traceparent` of each fetch."""

    def __init__(self) -> None:
        self.traceparents: list[str | None] = []
        body = json.dumps({"keys": [signing_key_for_tests().public_jwk]}).encode()
        seen = self.traceparents

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.headers.get("traceparent"))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{JWKS_PATH}"

    def __enter__(self) -> "KeysServer":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def keys_server() -> Iterator[KeysServer]:
    with KeysServer() as server:
        yield server


@pytest.fixture
async def client_fetching_keys(
    service: ServiceUnderTest,
    database_url: URL,
    test_database: Database,
    keys_server: KeysServer,
    span_exporter: InMemorySpanExporter,
) -> AsyncIterator[AsyncClient]:
    """things-svc traced, fetching its keys over HTTP as its main.py does in production."""
    settings = service.settings(database_url, jwks_url=keys_server.url)

    with tracing_into(span_exporter):
        async with open_client(service.app(settings, database=test_database)) as client:
            yield client


async def test_the_token_check_shows_the_jwks_fetch_and_sends_the_trace_along(
    client_fetching_keys: AsyncClient,
    span_exporter: InMemorySpanExporter,
    keys_server: KeysServer,
    token_factory: TokenFactory,
) -> None:
    response = await client_fetching_keys.get(URL_THINGS, headers=token_factory.auth(ALICE))

    assert response.status_code == 200
    spans = list(span_exporter.get_finished_spans())
    server = server_span(spans, "GET /api/v1/things")
    fetches = [
        s
        for s in descendants(spans, server)
        if s.kind is SpanKind.CLIENT
        and s.attributes is not None
        and str(s.attributes.get("url.full", s.attributes.get("http.url"))) == keys_server.url
    ]
    assert len(fetches) == 1, [(s.name, s.attributes) for s in spans]
    # users-svc receives the trace context, so its own span joins this trace.
    [traceparent] = keys_server.traceparents
    assert traceparent is not None
    _, trace_id, parent_id, flags = traceparent.split("-")
    assert (trace_id, parent_id) == (
        f"{context_of(server).trace_id:032x}",
        f"{context_of(fetches[0]).span_id:016x}",
    )
    assert int(flags, 16) & 1  # sampled: users-svc records its side too
