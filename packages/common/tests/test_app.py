"""The app factory's behaviour as a client sees it: problem+json errors, request IDs, commits."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from common.app import create_app
from common.events import Events
from common.settings import AppBaseSettings, StartupError
from common.testing import ServiceUnderTest
from common.testing.plugin import open_client

PROBLEM = "application/problem+json"


async def test_unknown_route_is_a_404_problem(client: AsyncClient) -> None:
    response = await client.get("/api/v1/nowhere")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 404
    assert body["title"] == "Not Found"
    assert body["instance"] == "/api/v1/nowhere"


async def test_wrong_method_is_a_405_problem(client: AsyncClient) -> None:
    response = await client.put("/api/v1/widgets")

    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["title"] == "Method Not Allowed"
    assert "allow" in response.headers


async def test_domain_not_found_carries_its_detail(client: AsyncClient) -> None:
    response = await client.get(f"/api/v1/widgets/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.json()["detail"] == "No widget with this id."


async def test_validation_error_lists_fields_without_echoing_input(client: AsyncClient) -> None:
    response = await client.post("/api/v1/widgets", json={"code": 7, "secret": "hunter2"})

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert {tuple(error["loc"]) for error in body["errors"]} == {
        ("body", "code"),
        ("body", "secret"),
    }
    assert "hunter2" not in response.text


async def test_malformed_json_is_a_422_problem(client: AsyncClient) -> None:
    response = await client.post(
        "/api/v1/widgets", content=b"{not json", headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_limit_out_of_range_is_a_422(client: AsyncClient) -> None:
    for limit in (0, 101, -1):
        response = await client.get("/api/v1/widgets", params={"limit": limit})
        assert response.status_code == 422, limit


async def test_crash_is_a_500_without_internals(client: AsyncClient) -> None:
    response = await client.get("/api/v1/widgets/-/crash", headers={"X-Request-ID": "trace-1"})

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["x-request-id"] == "trace-1"
    assert response.json()["request_id"] == "trace-1"
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text


async def test_an_os_error_not_from_the_database_is_a_500_not_a_503(client: AsyncClient) -> None:
    response = await client.get("/api/v1/widgets/-/missing-file")

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "An unexpected error occurred. It has been logged."
    assert "retry-after" not in response.headers
    assert "nonexistent" not in response.text


async def test_request_id_is_echoed_or_generated(client: AsyncClient) -> None:
    echoed = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    generated = await client.get("/health/live")
    forged = await client.get("/health/live", headers={"X-Request-ID": "x\nINFO fake log line"})

    assert echoed.headers["x-request-id"] == "abc-123"
    assert len(generated.headers["x-request-id"]) == 32
    assert forged.headers["x-request-id"] != "x\nINFO fake log line"
    assert "\n" not in forged.headers["x-request-id"]


async def test_created_row_is_in_the_database(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    response = await client.post("/api/v1/widgets", json={"code": "w-1"})

    assert response.status_code == 201
    codes = (await db_session.scalars(text("SELECT code FROM widgets"))).all()
    assert codes == ["w-1"]


async def test_rejected_request_writes_nothing(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    response = await client.post("/api/v1/widgets", json={"code": "w-2", "extra": 1})

    assert response.status_code == 422
    assert await db_session.scalar(text("SELECT count(*) FROM widgets")) == 0


async def committed_widgets(engine: AsyncEngine, code: str) -> int:
    """The committed widgets with `code`, read on a connection of its own."""
    async with engine.connect() as connection:
        query = text("SELECT count(*) FROM widgets WHERE code = :code")
        count: int = await connection.scalar(query, {"code": code})
    return count


async def test_failed_commit_never_answers_2xx(
    committing_client: AsyncClient, engine: AsyncEngine
) -> None:
    # The deferred unique constraint passes the flush and fails only at COMMIT, after the
    # endpoint has returned its 201 body. The client must see the failure, and no row stays.
    response = await committing_client.post("/api/v1/widgets/twins", json={"code": "twin"})

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert await committed_widgets(engine, "twin") == 0


async def test_commit_is_real_with_committing_client(
    committing_client: AsyncClient, engine: AsyncEngine
) -> None:
    response = await committing_client.post("/api/v1/widgets", json={"code": "kept"})

    assert response.status_code == 201
    assert await committed_widgets(engine, "kept") == 1


async def test_log_lines_carry_the_request_id(
    service: ServiceUnderTest, settings: AppBaseSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(settings, domains=service.domains)  # logging goes to this test's stderr

    async with open_client(app) as client:
        await client.get("/api/v1/widgets/-/crash", headers={"X-Request-ID": "trace-log-9"})

    lines = [line for line in capsys.readouterr().err.splitlines() if "unhandled error" in line]
    assert lines
    assert all("[trace-log-9]" in line for line in lines)


async def test_a_value_postgres_cannot_store_is_a_422_not_a_500(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    # Valid JSON and a valid str to pydantic, but Postgres refuses NUL characters in text.
    response = await client.post("/api/v1/widgets", json={"code": "a\x00b"})

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert await db_session.scalar(text("SELECT count(*) FROM widgets")) == 0


async def test_debug_logs_every_statement(
    service: ServiceUnderTest, settings: AppBaseSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(settings.model_copy(update={"debug": True}), domains=service.domains)

    async with open_client(app) as client:
        await client.get("/api/v1/widgets", headers={"X-Request-ID": "sql-1"})

    lines = [line for line in capsys.readouterr().err.splitlines() if "[sql-1]" in line]
    assert any("sqlalchemy.engine" in line and "SELECT" in line for line in lines)


async def test_without_debug_no_statement_is_logged(
    service: ServiceUnderTest, settings: AppBaseSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(settings, domains=service.domains)

    async with open_client(app) as client:
        await client.get("/api/v1/widgets", headers={"X-Request-ID": "sql-2"})

    assert "sqlalchemy.engine" not in capsys.readouterr().err


ORIGIN = "https://app.example"


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_cors_preflight_from_an_allowed_origin_is_answered(
    service: ServiceUnderTest, settings: AppBaseSettings
) -> None:
    allowed = settings.model_copy(update={"cors_origins": [ORIGIN]})
    async with open_client(create_app(allowed, domains=service.domains)) as client:
        answer = await client.options("/api/v1/widgets", headers=preflight(ORIGIN))
        simple = await client.get(f"/api/v1/widgets/{uuid.uuid4()}", headers={"Origin": ORIGIN})

    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "authorization" in answer.headers["access-control-allow-headers"].lower()
    # An error too carries the headers a browser needs to read it.
    assert simple.status_code == 404
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


async def test_cors_preflight_from_another_origin_is_refused(
    service: ServiceUnderTest, settings: AppBaseSettings
) -> None:
    allowed = settings.model_copy(update={"cors_origins": [ORIGIN]})
    async with open_client(create_app(allowed, domains=service.domains)) as client:
        answer = await client.options("/api/v1/widgets", headers=preflight("https://evil.example"))
        simple = await client.get("/api/v1/widgets", headers={"Origin": "https://evil.example"})

    assert answer.status_code == 400
    assert "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-origin" not in simple.headers


async def test_no_cors_headers_without_allowed_origins(client: AsyncClient) -> None:
    answer = await client.options("/api/v1/widgets", headers=preflight(ORIGIN))

    assert "access-control-allow-origin" not in answer.headers


async def test_a_service_lifespan_adds_its_state_and_ends_after_the_requests(
    service: ServiceUnderTest, settings: AppBaseSettings
) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, str]]:
        events.append("started")
        yield {"greeting": "hello"}
        events.append("ended")

    app = create_app(settings, domains=service.domains, lifespan=lifespan)

    @app.get("/greeting")
    async def greeting(request: Request) -> dict[str, str]:
        return {"greeting": request.state.greeting}

    async with open_client(app) as client:
        response = await client.get("/greeting")
        assert events == ["started"]

    assert response.json() == {"greeting": "hello"}
    assert events == ["started", "ended"]


async def test_a_service_lifespan_may_not_replace_the_apps_state(
    service: ServiceUnderTest, settings: AppBaseSettings
) -> None:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, str]]:
        yield {"database": "mine"}

    app = create_app(settings, domains=service.domains, lifespan=lifespan)

    with pytest.raises(StartupError, match="may not replace"):
        async with open_client(app):
            pass


async def test_a_body_fastapi_cannot_parse_is_a_422_like_any_malformed_body(
    client: AsyncClient,
) -> None:
    # Invalid UTF-8 and nesting past the recursion limit: FastAPI itself would answer 400.
    for body in (b'{"code": "\xff\xfe"}', b"[" * 100_000 + b"]" * 100_000):
        response = await client.post(
            "/api/v1/widgets", content=body, headers={"content-type": "application/json"}
        )

        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"][0]["loc"][0] == "body"


async def test_openapi_documents_every_error_as_a_problem(client: AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            takes_body = "requestBody" in operation
            takes_input = takes_body or bool(operation.get("parameters"))
            expected = {"431", "500", "503"} | ({"422"} if takes_input else set())
            assert expected | ({"413"} if takes_body else set()) <= set(responses), path
            if not takes_input:
                assert "422" not in responses, (method, path)
            for status, response in responses.items():
                if int(status) >= 400:
                    assert set(response["content"]) == {PROBLEM}, (method, path, status)
                    assert response["content"][PROBLEM]["schema"] == {
                        "$ref": "#/components/schemas/Problem"
                    }
            retry_after = responses["503"]["headers"]["Retry-After"]
            assert retry_after["required"] is True
    assert "Problem" in schema["components"]["schemas"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_a_route_that_needs_a_token_in_an_app_that_verifies_none_stops_the_build(
    service: ServiceUnderTest,
    settings: AppBaseSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notes = tmp_path / "guarded" / "domains" / "notes"
    notes.mkdir(parents=True)
    for package in (tmp_path / "guarded", tmp_path / "guarded" / "domains", notes):
        (package / "__init__.py").write_text("")
    (notes / "__init__.py").write_text("from guarded.domains.notes.routes import router\n")
    (notes / "routes.py").write_text(
        "from fastapi import APIRouter\n"
        "from common.auth import CurrentUser\n"
        "router = APIRouter(prefix='/notes')\n"
        "@router.get('')\n"
        "async def my_notes(user_id: CurrentUser) -> list[str]:\n"
        "    return []\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(StartupError, match=r"verifies no access tokens, but GET /api/v1/notes"):
        create_app(settings, domains="guarded.domains")


def test_events_need_event_settings(service: ServiceUnderTest, settings: AppBaseSettings) -> None:
    with pytest.raises(StartupError, match="its settings must build on EventSettings"):
        create_app(settings, domains=service.domains, events=Events(relay=True))
