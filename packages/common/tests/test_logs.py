"""Log lines as a log pipeline reads them: JSON with the request and trace IDs, secrets masked,
and a test that logs a secret failing."""

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.engine import URL

from common.db import Database
from common.logs import mask_secrets
from common.testing import ServiceUnderTest
from common.testing.plugin import open_client, tracing_into

JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_json_lines_carry_the_request_id_and_the_trace_and_span_ids(
    service: ServiceUnderTest,
    database_url: URL,
    test_database: Database,
    capsys: pytest.CaptureFixture[str],
) -> None:
    exporter = InMemorySpanExporter()
    settings = service.settings(database_url, log_format="json")

    with tracing_into(exporter):
        async with open_client(service.app(settings, database=test_database)) as client:
            response = await client.get(
                "/api/v1/widgets/-/crash", headers={"X-Request-ID": "json-7"}
            )

    assert response.status_code == 500
    [line] = [
        line
        for line in json_lines(capsys.readouterr().err)
        if (line["request_id"], line["logger"]) == ("json-7", "common.errors")
    ]
    [server] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.context is not None
    assert line["level"] == "ERROR"
    assert line["message"] == "unhandled error"
    assert line["trace_id"] == f"{server.context.trace_id:032x}"
    assert line["span_id"]  # the span the line was written in: the request's or one inside it
    assert "RuntimeError" in line["exc_info"]
    assert "time" in line


async def test_without_tracing_json_lines_say_so_and_text_lines_stay_as_they_were(
    service: ServiceUnderTest,
    database_url: URL,
    test_database: Database,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for log_format in ("json", "text"):
        settings = service.settings(database_url, log_format=log_format)
        app = service.app(settings, database=test_database)
        async with open_client(app) as client:
            await client.get("/api/v1/widgets/-/crash", headers={"X-Request-ID": f"{log_format}-8"})

    err = capsys.readouterr().err
    [line] = [
        line
        for line in json_lines(err)
        if (line["request_id"], line["logger"]) == ("json-8", "common.errors")
    ]
    assert (line["trace_id"], line["span_id"]) == (None, None)
    assert any(
        " ERROR [text-8] common.errors: unhandled error" in text for text in err.splitlines()
    )


@pytest.mark.parametrize(
    ("logged", "shown"),
    [
        (f"Authorization: Bearer {JWT}", "Authorization: ***"),
        (f"token {JWT} refused", "token *** refused"),
        ("GET /callback?code=1&access_token=abc.def-ghi&x=2", "code=1&access_token=***&x=2"),
        ('{"email": "a@x.io", "password": "hunter2 horse"}', '"password": "*** horse"}'),
        ("password=hunter2", "password=***"),
        ("hash $argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA was rehashed", "hash *** was"),
        ("key -----BEGIN PRIVATE KEY-----\nMC4CAQ\n-----END PRIVATE KEY----- loaded", "key *** "),
    ],
)
def test_secrets_are_masked_whoever_logs_them(logged: str, shown: str) -> None:
    masked = mask_secrets(logged)

    assert shown in masked
    for secret in (JWT, "abc.def-ghi", "hunter2", "aGFzaA", "MC4CAQ"):
        assert secret not in masked


@pytest.mark.parametrize(
    "harmless",
    [
        'WWW-Authenticate: Bearer error="invalid_token"',
        "token_type bearer, expires_in 900",
        "invalid token: the signature does not match",
        "password too short",
    ],
)
def test_ordinary_words_are_left_alone(harmless: str) -> None:
    assert mask_secrets(harmless) == harmless


LEAKY_TESTS = f"""
import logging
import pytest

def test_leaks():
    logging.getLogger("leaky").warning("sent Authorization: Bearer {JWT}")

def test_quiet():
    logging.getLogger("quiet").warning("nothing to hide")

@pytest.fixture
def leaks_later():
    yield
    logging.getLogger("leaky").error("password=hunter2")

def test_leaks_in_teardown(leaks_later):
    pass
"""


def test_a_test_that_logs_a_secret_fails_and_shows_it_masked(tmp_path: Path) -> None:
    (tmp_path / "test_leaky.py").write_text(LEAKY_TESTS)

    # A pytest run of its own (this test's scan would see its lines), without pytest's own log
    # capture, which prints the raw record in its report.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:logging", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    output = result.stdout
    assert "1 failed, 2 passed, 1 error" in output, output
    assert "a secret was logged during the test or its set-up" in output
    assert "  WARNING leaky: sent Authorization: ***" in output
    assert "a secret was logged during teardown" in output
    assert "  ERROR leaky: password=***" in output
    assert JWT not in output
    assert "hunter2" not in output


def test_the_handler_writes_where_stderr_is_now(capsys: pytest.CaptureFixture[str]) -> None:
    # A runner swaps stderr for each test: lines go to the current one, never a closed one.
    from common.logs import configure_logging

    configure_logging("INFO")
    logging.getLogger("here").info("to this test's stderr")

    assert "to this test's stderr" in capsys.readouterr().err
