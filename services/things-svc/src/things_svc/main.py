from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI

from common.app import create_app
from common.events import Events
from things_svc.events import HANDLERS
from things_svc.settings import Settings, get_settings
from things_svc.users import UsersClient, calling_users


class ThingsState(TypedDict):
    """What things-svc's lifespan adds to the request state."""

    users: UsersClient


def build_app(settings: Settings) -> FastAPI:
    """things-svc's app: tokens verified with users-svc's JWKS (`THINGS_JWKS_URL`), and refused
    for the users its account events revoked; users-svc called for sharing."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[ThingsState]:
        async with calling_users(settings) as users:
            yield {"users": users}

    return create_app(
        settings,
        domains="things_svc.domains",
        lifespan=lifespan,
        events=Events(handlers=HANDLERS, revocations=True),
    )


app = build_app(get_settings())
