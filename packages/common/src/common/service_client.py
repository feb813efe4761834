"""`ServiceClient`: calls from one service to another that fail fast and say so.

- Each call has a timeout (the policy's, or the call's own).
- A call that may be repeated (GET, HEAD, PUT, DELETE, OPTIONS) is tried again, with backoff and
  jitter (stamina), when the connection failed or timed out, or the target answered 502, 503 or
  504. Any other call is tried again only when it never reached the target (connection refused).
- A circuit breaker per target (purgatory) opens after consecutive failed calls: calls are then
  refused at once, without touching the network, until a cool-down has passed; then one call at
  a time is let through, and its success closes the breaker (purgatory alone would let through
  every call that arrives while the first one is still failing).
- A failed or refused call raises `DependencyUnavailableError`: the caller's client gets 503 with
  `Retry-After`, as problem+json naming the target; never a 500, never a hang.
- Every call carries the request's `X-Request-ID`, the trace context (`traceparent`, inside a
  client span), and the calling service's token when it has one.
- Metrics: `service_calls_total{target, outcome}` and `service_call_duration_seconds{target}`.

Made in the app's lifespan and closed with it, like an engine: `async with ServiceClient(...)`.
`ClientCredentials` is the calling service's token: asked of users-svc's token endpoint with the
client credentials grant, and kept until shortly before it expires.
"""

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
import stamina
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import CLOSED, OpenedState

from common.errors import RetryLaterError
from common.metrics import SERVICE_CALL_DURATION, SERVICE_CALLS
from common.request_id import current_request_id

logger = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# Answers that say "not now" rather than "not this": tried again when the call may be repeated.
RETRIED_STATUSES = frozenset({502, 503, 504})


class DependencyUnavailableError(RetryLaterError):
    """A service this one needs did not answer, or answered that it is failing."""

    status_code = 503

    def __init__(self, target: str, *, retry_after_seconds: int) -> None:
        super().__init__(
            f"{target}, which this service needs to answer, is unavailable. Retry later.",
            retry_after_seconds=retry_after_seconds,
        )
        self.target = target


class TargetFailedError(Exception):
    """The target answered a server error: a failure for the breaker, like a refused connection."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(
            f"{response.request.method} {response.request.url}: {response.status_code}"
        )
        self.response = response


@dataclass(frozen=True, kw_only=True, slots=True)
class CallPolicy:
    """How long a call may take, how often it is tried, and when the breaker opens."""

    timeout_seconds: float = 2.0
    attempts: int = 3
    # The backoff before the second attempt; doubled each time, with jitter, up to a second.
    first_backoff_seconds: float = 0.05
    failures_to_open: int = 5
    open_seconds: float = 2.0


def _retryable_for(method: str) -> Callable[[BaseException], bool]:
    if method in IDEMPOTENT_METHODS:
        return lambda error: (
            isinstance(error, httpx.TransportError | TargetFailedError)
            and (
                not isinstance(error, TargetFailedError)
                or error.response.status_code in RETRIED_STATUSES
            )
        )
    # The request was never sent: trying again cannot do it twice.
    return lambda error: isinstance(error, httpx.ConnectError)


class ServiceClient:
    """Calls to one target service at `base_url`: `await users.get("/api/v1/users/lookup")`.

    `token` returns the calling service's access token for each call (a cached one); `transport`
    is httpx's, for a test that serves the target in-process.
    """

    def __init__(
        self,
        target: str,
        base_url: str,
        *,
        policy: CallPolicy | None = None,
        token: Callable[[], Awaitable[str]] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.target = target
        self.policy = policy or CallPolicy()
        self._token = token
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=self.policy.timeout_seconds, transport=transport
        )
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=self.policy.failures_to_open, default_ttl=self.policy.open_seconds
        )
        self._tracer = trace.get_tracer("common.service_client")
        # Held by the one call that tries the target while the breaker is not closed.
        self._probe = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def get(self, url: str, *, params: Mapping[str, str] | None = None) -> httpx.Response:
        return await self.request("GET", url, params=params)

    async def post(self, url: str, *, json: Any = None) -> httpx.Response:
        return await self.request("POST", url, json=json)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        timeout_seconds: float | None = None,
    ) -> httpx.Response:
        """The target's answer, 4xx included (the caller decides what those mean); a failure or
        an open breaker raises `DependencyUnavailableError`."""
        started = time.perf_counter()
        outcome = "failed"
        try:
            breaker = await self._breakers.get_breaker(self.target)
            if breaker.context.state == CLOSED:
                async with breaker:
                    response = await self._send(method, url, params, json, timeout_seconds)
            else:
                if self._probe.locked():
                    raise OpenedState(self.target)  # another call is trying the target
                async with self._probe, breaker:
                    response = await self._send(method, url, params, json, timeout_seconds)
            outcome = "answered"
            return response
        except OpenedState:
            outcome = "refused_open"
            opened_at = breaker.context.opened_at or time.time()
            wait = opened_at + self.policy.open_seconds - time.time()
            raise DependencyUnavailableError(
                self.target, retry_after_seconds=max(1, math.ceil(wait))
            ) from None
        except (httpx.TransportError, TargetFailedError) as error:
            raise DependencyUnavailableError(
                self.target, retry_after_seconds=max(1, math.ceil(self.policy.open_seconds))
            ) from error
        finally:
            SERVICE_CALLS.labels(self.target, outcome).inc()
            SERVICE_CALL_DURATION.labels(self.target).observe(time.perf_counter() - started)

    async def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        json: Any,
        timeout_seconds: float | None,
    ) -> httpx.Response:
        timeout = self.policy.timeout_seconds if timeout_seconds is None else timeout_seconds
        with self._tracer.start_as_current_span(
            f"{method} {self.target}", kind=SpanKind.CLIENT
        ) as span:
            headers = await self._headers()
            async for attempt in stamina.retry_context(
                on=_retryable_for(method),
                attempts=self.policy.attempts,
                wait_initial=self.policy.first_backoff_seconds,
                wait_max=1.0,
                wait_jitter=self.policy.first_backoff_seconds,
            ):
                with attempt:
                    response = await self._http.request(
                        method, url, params=params, json=json, headers=headers, timeout=timeout
                    )
                    if response.status_code >= 500:
                        raise TargetFailedError(response)
            span.set_attribute("http.response.status_code", response.status_code)
            return response

    async def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        propagate.inject(headers)
        if (request_id := current_request_id()) is not None:
            headers["X-Request-ID"] = request_id
        if self._token is not None:
            headers["Authorization"] = f"Bearer {await self._token()}"
        return headers


class ClientCredentials:
    """This service's access token from the client credentials grant (RFC 6749, 4.4) at
    `token_url`, authenticated by HTTP Basic; kept until `renew_before_seconds` before it
    expires (or half its life, when shorter), and asked again by one call at a time. Call it for
    the token: `ServiceClient(..., token=credentials)`.

    A token endpoint that is down or refuses the credentials raises
    `DependencyUnavailableError` naming `issuer`; a refusal is logged as an error, since it
    means the service's credentials are wrong.
    """

    def __init__(
        self,
        token_url: str,
        *,
        client_id: str,
        client_secret: str,
        scopes: Iterable[str] = (),
        issuer: str = "users-svc",
        timeout_seconds: float = 2.0,
        renew_before_seconds: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.client_id = client_id
        self._token_url = token_url
        self._secret = client_secret
        self._scope = " ".join(sorted(scopes))
        self._issuer = issuer
        self._renew_before = renew_before_seconds
        self._http = httpx.AsyncClient(timeout=timeout_seconds, transport=transport)
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def __call__(self) -> str:
        if self._token is None or time.monotonic() >= self._renew_at:
            async with self._lock:
                if self._token is None or time.monotonic() >= self._renew_at:
                    self._token, lifetime = await self._ask()
                    keep = max(lifetime - self._renew_before, lifetime / 2)
                    self._renew_at = time.monotonic() + keep
        return self._token

    async def _ask(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        try:
            response = await self._http.post(
                self._token_url, data=form, auth=(self.client_id, self._secret)
            )
        except httpx.TransportError as error:
            raise DependencyUnavailableError(self._issuer, retry_after_seconds=1) from error
        if response.status_code != 200:
            logger.error(
                "%s refused a token to client %s: %s %s",
                self._issuer,
                self.client_id,
                response.status_code,
                response.text[:300],
            )
            raise DependencyUnavailableError(self._issuer, retry_after_seconds=1)
        answer = response.json()
        return str(answer["access_token"]), float(answer["expires_in"])
