"""Calls to another service, served for real on a loopback port that the tests stop and start."""

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from common.handlers import install_error_handlers
from common.request_id import start_request
from common.service_client import CallPolicy, DependencyUnavailableError, ServiceClient
from common.testing.plugin import tracing_into

POLICY = CallPolicy(
    timeout_seconds=0.3,
    attempts=3,
    first_backoff_seconds=0.01,
    failures_to_open=3,
    open_seconds=0.5,
)


class Target:
    """Another service, counting the requests it answers by path; stopped and started again on
    the same port."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.app = FastAPI()

        @self.app.get("/echo")
        async def echo(request: Request) -> dict[str, str | None]:
            return {name: request.headers.get(name) for name in ("x-request-id", "traceparent")} | {
                "authorization": request.headers.get("authorization")
            }

        @self.app.api_route("/status/{code}", methods=["GET", "POST"])
        async def status(code: int, request: Request) -> Response:
            self.hits[request.url.path] += 1
            return Response(status_code=code)

        @self.app.get("/slow")
        async def slow() -> Response:
            self.hits["/slow"] += 1
            await asyncio.sleep(2)
            return Response()

        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, lifespan="off", log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the target did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=10)


class CountingTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, counting the requests it tries to send (answered or not)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return await super().handle_async_request(request)


@pytest.fixture
def target() -> Iterator[Target]:
    served = Target()
    served.start()
    yield served
    if served._server is not None and not served._server.should_exit:
        served.stop()


@pytest.fixture
async def transport() -> CountingTransport:
    return CountingTransport()


@pytest.fixture
async def client(target: Target, transport: CountingTransport) -> AsyncIterator[ServiceClient]:
    async def token() -> str:
        return "service-token"

    async with ServiceClient(
        "target-svc", target.url, policy=POLICY, token=token, transport=transport
    ) as calls:
        yield calls


async def test_a_call_carries_the_request_id_the_trace_context_and_the_token(
    client: ServiceClient,
) -> None:
    start_request(b"req-42")
    exporter = InMemorySpanExporter()
    with tracing_into(exporter):
        answer = (await client.get("/echo")).json()

    # The target, in this process, traces its side too.
    (span,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert (span.name, span.kind) == ("GET target-svc", SpanKind.CLIENT)
    assert answer["x-request-id"] == "req-42"
    assert answer["authorization"] == "Bearer service-token"
    assert answer["traceparent"].split("-")[1] == format(span.context.trace_id, "032x")


async def test_a_get_is_tried_again_on_503_and_a_post_is_not(
    client: ServiceClient, target: Target
) -> None:
    with pytest.raises(DependencyUnavailableError):
        await client.get("/status/503")
    with pytest.raises(DependencyUnavailableError):
        await client.post("/status/503")

    assert target.hits == {"/status/503": POLICY.attempts + 1}


async def test_a_4xx_is_the_targets_answer_not_a_failure(
    client: ServiceClient, target: Target
) -> None:
    statuses = [(await client.get("/status/404")).status_code for _ in range(POLICY.attempts * 3)]

    assert set(statuses) == {404}
    assert (await client.get("/echo")).status_code == 200  # the breaker stayed closed
    assert target.hits["/status/404"] == POLICY.attempts * 3


async def test_a_call_that_times_out_fails_within_its_attempts(
    client: ServiceClient, target: Target
) -> None:
    started = time.monotonic()
    with pytest.raises(DependencyUnavailableError):
        await client.get("/slow")

    assert time.monotonic() - started < POLICY.timeout_seconds * POLICY.attempts + 1
    assert target.hits["/slow"] == POLICY.attempts


async def test_a_stopped_target_fails_fast_opens_the_breaker_and_its_return_closes_it(
    client: ServiceClient, target: Target, transport: CountingTransport
) -> None:
    target.stop()
    for _ in range(POLICY.failures_to_open):
        started = time.monotonic()
        with pytest.raises(DependencyUnavailableError) as failed:
            await client.get("/echo")
        assert time.monotonic() - started < 1
        assert failed.value.retry_after_seconds >= 1
    tried = transport.sent

    # Open: refused at once, nothing sent.
    with pytest.raises(DependencyUnavailableError, match="target-svc"):
        await client.get("/echo")
    assert transport.sent == tried

    target.start()
    await asyncio.sleep(POLICY.open_seconds)
    assert (await client.get("/echo")).status_code == 200
    assert (await client.get("/echo")).status_code == 200


async def test_a_route_whose_dependency_is_down_answers_503_problem_with_retry_after(
    target: Target,
) -> None:
    target.stop()
    app = FastAPI()
    install_error_handlers(app)
    dependency = ServiceClient("users-svc", target.url, policy=POLICY)

    @app.get("/shares")
    async def shares() -> dict[str, str]:
        await dependency.get("/echo")
        return {}

    async with (
        dependency,
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as caller,
    ):
        response = await caller.get("/shares")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert "users-svc" in response.json()["detail"]
