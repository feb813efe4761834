"""things-svc and users-svc with the token check replaced by a fixed caller (`BENCH_SUBJECT`).

Everything else is the shipped app: the benchmark compares these with the real services to show
what verifying the token costs. Factories, so a process imports only the service it runs:

    uv run uvicorn unchecked:things_app --factory --app-dir bench
"""

import importlib
import os
import uuid
from datetime import UTC, datetime

from fastapi import FastAPI

from common.auth import AccessClaims, current_claims


async def fixed_caller() -> AccessClaims:
    now = datetime.now(UTC)
    subject = uuid.UUID(os.environ["BENCH_SUBJECT"])
    return AccessClaims(subject=subject, token_id="bench", issued_at=now, expires_at=now)


def _app(module: str) -> FastAPI:
    # Imported by name: the services ship no type information for scripts outside them.
    app = importlib.import_module(f"{module}.main").app
    assert isinstance(app, FastAPI)
    return app


def things_app() -> FastAPI:
    app = _app("things_svc")
    app.dependency_overrides[current_claims] = fixed_caller
    return app


def users_app() -> FastAPI:
    app = _app("users_svc")  # first: importing users_svc.security alone is circular
    security = importlib.import_module("users_svc.security")
    app.dependency_overrides[security.current_token_claims] = fixed_caller
    return app
