"""`create_app`: one FastAPI app wired the same way for every service."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NotRequired, TypedDict

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from opentelemetry.trace import TracerProvider

from common import health
from common.auth import KeySource, TokenVerifier, open_token_verifier
from common.body_limit import BodyLimitMiddleware
from common.db import Database
from common.discovery import discover_root_routers, discover_routers
from common.docs import install_offline_docs
from common.errors import Problem, UnhandledErrorMiddleware, install_error_handlers
from common.logs import configure_logging
from common.metrics import MetricsMiddleware
from common.observability import observing
from common.request_id import RequestIdMiddleware
from common.revisions import expected_heads
from common.settings import AppBaseSettings
from common.tracing import fastapi_telemetry


class AppState(TypedDict):
    settings: AppBaseSettings
    database: Database
    migration_heads: frozenset[str]
    readiness: health.ReadinessCheck
    # Present when the settings are `TokenSettings`: what `CurrentUser` verifies tokens with.
    token_verifier: NotRequired[TokenVerifier]


def create_app(
    settings: AppBaseSettings,
    *,
    domains: str,
    database: Database | None = None,
    token_keys: KeySource | None = None,
    tracer_provider: TracerProvider | None = None,
    version: str = "0.1.0",
) -> FastAPI:
    """Build a service's app.

    `domains` names the package whose sub-packages are the service's domains. `database` lets
    the caller (tests) provide the engines and session factories; otherwise the lifespan makes
    them from `settings` and disposes of them on shutdown. `token_keys` replaces the public keys
    the settings name (tests trust a test key this way). `tracer_provider` traces the app with
    that provider whatever the environment says (tests give the SDK's in-memory one).
    """
    configure_logging(
        settings.effective_log_level, sql=settings.debug, log_format=settings.log_format
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[AppState]:
        heads = expected_heads(settings.migrations_dir)
        owned = database is None
        active = Database.from_settings(settings) if database is None else database
        readiness = health.ReadinessCheck()
        try:
            async with (
                observing(settings, active, tracer_provider=tracer_provider),
                open_token_verifier(settings, keys=token_keys) as verifier,
            ):
                state: AppState = {
                    "settings": settings,
                    "database": active,
                    "migration_heads": heads,
                    "readiness": readiness,
                }
                if verifier is not None:
                    state["token_verifier"] = verifier
                yield state
        finally:
            readiness.cancel()
            if owned:
                await active.dispose()

    docs = settings.docs_enabled
    app = FastAPI(
        title=settings.service_name,
        version=version,
        lifespan=lifespan,
        telemetry=fastapi_telemetry(tracer_provider),
        docs_url=None,  # install_offline_docs serves it, without a CDN
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        responses={
            422: {"model": Problem, "description": "Invalid request"},
            500: {"model": Problem, "description": "Unexpected error"},
        },
    )
    if docs:
        install_offline_docs(app)
    install_error_handlers(app)
    for router in discover_routers(domains):
        app.include_router(router, prefix=settings.api_prefix)
    for router in discover_root_routers(domains):
        app.include_router(router)
    # Last: FastAPI tries the routers in order, and every API request would first try these.
    app.include_router(health.router)
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_request_body_bytes,
        max_header_bytes=settings.max_request_header_bytes,
    )
    app.add_middleware(RequestIdMiddleware)
    # Outside the others (CORS aside): it times the whole stack, and counts a request refused
    # before routing (413, 431) too.
    app.add_middleware(MetricsMiddleware)
    if settings.cors_origins:
        # Outermost: a preflight is answered before anything else runs, and every answer (an
        # error too) carries the headers a browser needs to read it.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After", "Location"],
            max_age=600,
        )
    return app
