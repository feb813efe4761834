from fastapi import FastAPI

from common.app import create_app
from common.events import Events
from things_svc.events import HANDLERS
from things_svc.settings import Settings, get_settings


def build_app(settings: Settings) -> FastAPI:
    """things-svc's app: tokens verified with users-svc's JWKS (`THINGS_JWKS_URL`), and refused
    for the users its account events revoked."""
    return create_app(
        settings,
        domains="things_svc.domains",
        events=Events(handlers=HANDLERS, revocations=True),
    )


app = build_app(get_settings())
