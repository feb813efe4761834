"""users-svc's app. Its lifespan loads the signing keys and makes the password hasher; tokens are
verified with the public half of those same keys."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from opentelemetry.trace import TracerProvider

from common.app import create_app
from common.auth import TokenVerifier
from common.db import Database
from common.events import Events
from users_svc.passwords import PasswordHasher
from users_svc.settings import Settings, get_settings
from users_svc.signing import KeyRing


class UsersState(TypedDict):
    """What users-svc's lifespan adds to the request state."""

    key_ring: KeyRing
    password_hasher: PasswordHasher


def build_app(
    settings: Settings,
    *,
    database: Database | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """users-svc's app; on `database` when given (tests), else on engines of its own."""
    ring = KeyRing.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[UsersState]:
        await ring.load()
        yield {"key_ring": ring, "password_hasher": PasswordHasher.from_settings(settings)}

    return create_app(
        settings,
        domains="users_svc.domains",
        database=database,
        token_verifier=TokenVerifier.from_settings(ring, settings),
        lifespan=lifespan,
        events=Events(relay=True),
        tracer_provider=tracer_provider,
    )


app = build_app(get_settings())
