"""things-svc and users-svc whose token verifier accepts any token as `BENCH_SUBJECT`'s.

Everything else is the shipped app, the bearer-token dependencies included: only the signature
and claims checks are skipped, so the benchmark's difference from the real services is what
verifying a token costs. (A dependency override would not do: once an app has any, FastAPI
analyses every dependency's signature again on every request, which costs more than it saves.)

    uv run uvicorn unchecked:things_app --factory --app-dir bench
"""

import importlib
import os
import uuid
from datetime import UTC, datetime

from fastapi import FastAPI

from common.auth import AccessClaims, TokenVerifier


async def accept_any_token(_: TokenVerifier, token: str) -> AccessClaims:
    now = datetime.now(UTC)
    subject = uuid.UUID(os.environ["BENCH_SUBJECT"])
    return AccessClaims(subject=subject, token_id="bench", issued_at=now, expires_at=now)


def _app(module: str) -> FastAPI:
    TokenVerifier.verify = accept_any_token  # type: ignore[method-assign,assignment]
    # Imported by name: the services ship no type information for scripts outside them.
    app = importlib.import_module(f"{module}.main").app
    assert isinstance(app, FastAPI)
    return app


def things_app() -> FastAPI:
    return _app("things_svc")


def users_app() -> FastAPI:
    return _app("users_svc")
