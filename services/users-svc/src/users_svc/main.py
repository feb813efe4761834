"""users-svc's app. Its lifespan loads the signing keys, makes the password hasher and prunes the
throttling counters; tokens are verified with the public half of those same keys."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI

from common.app import create_app
from common.background import in_background
from common.db import create_engine, create_sessionmaker
from common.events import Events
from users_svc.domains.auth.service import pruning_counters
from users_svc.passwords import PasswordHasher
from users_svc.settings import Settings, get_settings
from users_svc.signing import KeyRing


class UsersState(TypedDict):
    """What users-svc's lifespan adds to the request state."""

    key_ring: KeyRing
    password_hasher: PasswordHasher


def build_app(settings: Settings) -> FastAPI:
    """users-svc's app: it verifies tokens with the public half of its own signing keys."""
    ring = KeyRing.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[UsersState]:
        await ring.load()
        # The pruner's own engine: its one connection at a time is never one a request waits for.
        engine = create_engine(settings)
        pruning = pruning_counters(
            create_sessionmaker(engine), every_seconds=settings.counters_prune_seconds
        )
        try:
            async with in_background(pruning, name="pruning counters"):
                yield {"key_ring": ring, "password_hasher": PasswordHasher.from_settings(settings)}
        finally:
            await engine.dispose()

    return create_app(
        settings,
        domains="users_svc.domains",
        token_keys=ring,
        lifespan=lifespan,
        events=Events(relay=True),
    )


app = build_app(get_settings())
