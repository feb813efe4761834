from fastapi import FastAPI
from opentelemetry.trace import TracerProvider

from common.app import create_app
from common.auth import KeySource, RemoteJwks, TokenVerifier
from common.db import Database
from common.events import Events
from things_svc.events import HANDLERS
from things_svc.settings import Settings, get_settings


def build_app(
    settings: Settings,
    *,
    database: Database | None = None,
    token_keys: KeySource | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """things-svc's app: tokens verified with users-svc's JWKS, or with `token_keys` (tests)."""
    keys = token_keys if token_keys is not None else RemoteJwks.from_settings(settings)
    return create_app(
        settings,
        domains="things_svc.domains",
        database=database,
        token_verifier=TokenVerifier.from_settings(keys, settings),
        events=Events(handlers=HANDLERS),
        revocations=True,
        tracer_provider=tracer_provider,
    )


app = build_app(get_settings())
