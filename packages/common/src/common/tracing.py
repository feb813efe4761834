"""OpenTelemetry traces: off unless configured by the standard `OTEL_*` variables.

Tracing is on when an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), or `OTEL_TRACES_EXPORTER=console`, unless
`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. Then, in the app's lifespan, the SDK's
tracer provider becomes the global one (resource `service.name` from the service's settings,
sampler from `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG`, batched OTLP/HTTP export) and:

- FastAPI's own telemetry (FastAPI >= 0.160, `FastAPI(telemetry=...)`) makes the server span of
  each request, named by its route template, and continues a caller's W3C `traceparent`;
- asyncpg's instrumentation makes a client span per statement (its text, never its parameters);
- urllib's makes a client span per outbound call (the JWKS fetch, whether `common.auth` or
  PyJWT's `PyJWKClient` makes it) and sends `traceparent`, so users-svc's span joins the trace.

Off, none of the SDK is imported and nothing is instrumented: a request pays FastAPI's check of
whether a tracer provider is set, as it did before.

For events (common.events): `event_headers()` is what a producer stores in an envelope, and
`consuming()` the span a consumer applies the event in, joined to the producer's trace.
"""

import os
from collections.abc import AsyncIterator, Iterator, Mapping, MutableMapping
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import context, propagate, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import Span, SpanKind, TracerProvider

from common.settings import AppBaseSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

TRACING_EXPORTERS = frozenset({"otlp", "console"})
# Probes every few seconds would fill the traces with nothing to look at.
UNTRACED_PREFIXES = ("/health/",)


def tracing_configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the `OTEL_*` variables ask for traces to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter in TRACING_EXPORTERS
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def provider_from_environment(service_name: str) -> "SdkTracerProvider":
    """The SDK's tracer provider, exporting as the `OTEL_*` variables say."""
    # Imported here: a service that does not trace never loads the SDK.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    provider = SdkTracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    exporter: SpanExporter
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        exporter = ConsoleSpanExporter(service_name=service_name)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # endpoint, headers, timeout: from OTEL_EXPORTER_OTLP_*
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def fastapi_telemetry() -> TelemetryConfig:
    """FastAPI's telemetry: server spans only (metrics are Prometheus's, logs go through
    logging), with the global tracer provider of the moment (none: no span)."""
    return {
        "tracer_provider": None,
        "metrics": False,
        "logs": False,
        "auto_configure": False,
        "exclude": _untraced,
    }


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    path: str = scope.get("path", "")
    return path.startswith(UNTRACED_PREFIXES)


@asynccontextmanager
async def tracing(settings: AppBaseSettings) -> AsyncIterator[None]:
    """Tracing for the app's lifespan. When the `OTEL_*` variables ask for it, the SDK's provider
    becomes the global one, and is shut down at the end (which exports what is left). Whatever
    set the global provider (that, or a test), asyncpg and urllib are traced with it."""
    owned: SdkTracerProvider | None = None
    if tracing_configured():
        owned = provider_from_environment(settings.service_name)
        trace.set_tracer_provider(owned)
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        yield
        return
    instrument(provider)
    try:
        yield
    finally:
        uninstrument()
        if owned is not None:
            owned.shutdown()


def instrument(provider: TracerProvider) -> None:
    """asyncpg's and urllib's instrumentations (process-wide: one traced app per process)."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.urllib import URLLibInstrumentor

    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    URLLibInstrumentor().instrument(tracer_provider=provider)


def uninstrument() -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.urllib import URLLibInstrumentor

    AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    URLLibInstrumentor().uninstrument()


def event_headers() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`, `tracestate`): what a producer
    stores in an event's envelope, inside the transaction that writes the event. Empty when
    nothing is traced."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


@contextmanager
def consuming(name: str, headers: Mapping[str, str]) -> Iterator[Span]:
    """A consumer span for applying one event, a child of the producer's span whose context
    `headers` carry (`event_headers()`), so both share one trace id."""
    parent = propagate.extract(dict(headers))
    tracer = trace.get_tracer("common.events")
    with tracer.start_as_current_span(name, context=parent, kind=SpanKind.CONSUMER) as span:
        yield span


@contextmanager
def untraced() -> Iterator[None]:
    """No span inside: for background polls (the events relay, the revocations reload), which
    are nobody's request and would otherwise add a trace every second."""
    token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        context.detach(token)
