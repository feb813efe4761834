"""Tracing: off unless the OTEL_* variables ask for it (and then not even loaded), and the trace
context an event carries from its producer to its consumer."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.engine import URL

from common.testing import ServiceUnderTest
from common.testing.plugin import tracing_into
from common.tracing import consuming, event_headers, tracing, tracing_configured

SAMPLE_DIR = Path(__file__).parent / "sample"


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, False),
    ],
)
def test_tracing_is_off_unless_the_otel_variables_configure_an_exporter(
    environ: dict[str, str], on: bool
) -> None:
    assert tracing_configured(environ) is on


def test_a_service_that_does_not_trace_never_loads_the_sdk_or_an_instrumentation() -> None:
    script = textwrap.dedent(
        """
        import asyncio, os, sys
        from asgi_lifespan import LifespanManager
        for name in [n for n in os.environ if n.startswith("OTEL_")]:
            del os.environ[name]
        sys.path.insert(0, SAMPLE_DIR)
        from common.app import create_app
        from sample_app.settings import SampleSettings

        settings = SampleSettings(migrations_dir=os.path.join(SAMPLE_DIR, "alembic"))
        app = create_app(settings, domains="sample_app.domains")

        async def main():
            async with LifespanManager(app):
                pass

        asyncio.run(main())
        traced = ("opentelemetry.sdk", "opentelemetry.instrumentation")
        print([name for name in sys.modules if name.startswith(traced)])
        """
    ).replace("SAMPLE_DIR", repr(str(SAMPLE_DIR)))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


async def test_an_event_carries_its_producers_trace_to_its_consumer(
    service: ServiceUnderTest, database_url: URL
) -> None:
    exporter = InMemorySpanExporter()
    settings = service.settings(database_url)

    with tracing_into(exporter):
        async with tracing(settings):
            tracer = trace.get_tracer("test")
            with tracer.start_as_current_span("POST /users/{id}/deactivate", kind=SpanKind.SERVER):
                headers = event_headers()  # stored in the envelope, in the producer's transaction
            # Later, in the consumer (another service): the envelope's headers, no current span.
            with consuming("apply user.deactivated", headers):
                pass

    producer, consumer = exporter.get_finished_spans()
    assert producer.context is not None
    assert consumer.context is not None
    assert consumer.kind is SpanKind.CONSUMER
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert set(headers) >= {"traceparent"}


def test_without_tracing_an_event_carries_no_context_and_consuming_still_works() -> None:
    assert event_headers() == {}
    with consuming("apply user.deactivated", {}) as span:
        assert not span.is_recording()
