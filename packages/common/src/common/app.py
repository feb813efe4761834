"""`create_app`: one FastAPI app wired the same way for every service."""

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, NotRequired, TypedDict

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from opentelemetry.trace import TracerProvider

from common import health
from common.auth import TokenVerifier
from common.auth.revocations import RevokedSubjects, watching_revocations
from common.db import Database
from common.discovery import discover_root_routers, discover_routers
from common.docs import install_offline_docs
from common.events.lifespan import Events, running_events
from common.events.settings import EventSettings
from common.handlers import install_error_handlers
from common.logs import configure_logging
from common.middleware import EdgeMiddleware
from common.observability import observing
from common.openapi import install_openapi
from common.revisions import expected_heads
from common.settings import AppBaseSettings
from common.tracing import fastapi_telemetry


class AppState(TypedDict):
    settings: AppBaseSettings
    database: Database
    migration_heads: frozenset[str]
    readiness: health.ReadinessCheck
    # Present when the service gave `create_app` one: what `CurrentUser` verifies tokens with.
    token_verifier: NotRequired[TokenVerifier]
    # Present with `revocations=True`: the subjects whose tokens `CurrentUser` refuses.
    revoked_subjects: NotRequired[RevokedSubjects]


# A service's own lifespan: what it yields joins the request state (`request.state.<name>`).
ServiceLifespan = Callable[[FastAPI], AbstractAsyncContextManager[Mapping[str, Any]]]


def create_app(
    settings: AppBaseSettings,
    *,
    domains: str,
    database: Database | None = None,
    token_verifier: TokenVerifier | None = None,
    lifespan: ServiceLifespan | None = None,
    events: Events | None = None,
    revocations: bool = False,
    tracer_provider: TracerProvider | None = None,
    version: str = "0.1.0",
) -> FastAPI:
    """Build a service's app.

    `domains` names the package whose sub-packages are the service's domains. `database` lets
    the caller (tests) provide the engines and session factories; otherwise the lifespan makes
    them from `settings` and disposes of them on shutdown. `token_verifier` verifies the access
    tokens of `CurrentUser` and `CurrentClaims`; its key source is opened in the lifespan, after
    the service's own `lifespan` has started (users-svc loads its keys there) and closed before it
    ends. An app without one verifies no tokens. `events` runs the service's event relay and
    consumer in the lifespan (its settings are then `EventSettings`); with `revocations`,
    `CurrentUser` refuses the subjects of its `revoked_subjects` table. `tracer_provider` traces
    the app with that provider whatever the environment says (tests give the SDK's in-memory
    one).
    """
    configure_logging(
        settings.effective_log_level, sql=settings.debug, log_format=settings.log_format
    )
    docs = settings.docs_enabled
    app = FastAPI(
        title=settings.service_name,
        version=version,
        lifespan=_app_lifespan(
            settings,
            database=database,
            token_verifier=token_verifier,
            lifespan=lifespan,
            events=events,
            revocations=revocations,
            tracer_provider=tracer_provider,
        ),
        telemetry=fastapi_telemetry(tracer_provider),
        docs_url=None,  # install_offline_docs serves it, without a CDN
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    install_openapi(app)
    if docs:
        install_offline_docs(app)
    install_error_handlers(app)
    _include_routers(app, settings, domains)
    _add_middleware(app, settings)
    return app


def _include_routers(app: FastAPI, settings: AppBaseSettings, domains: str) -> None:
    for router in discover_routers(domains):
        app.include_router(router, prefix=settings.api_prefix)
    for router in discover_root_routers(domains):
        app.include_router(router)
    # Last: FastAPI tries the routers in order, and every API request would first try these.
    app.include_router(health.router)


def _add_middleware(app: FastAPI, settings: AppBaseSettings) -> None:
    """`EdgeMiddleware` (request IDs, size limits, timing, the unhandled error's problem) around
    the app, and CORS, when on, around it."""
    app.add_middleware(
        EdgeMiddleware,
        max_body_bytes=settings.max_request_body_bytes,
        max_header_bytes=settings.max_request_header_bytes,
    )
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


def _app_lifespan(
    settings: AppBaseSettings,
    *,
    database: Database | None,
    token_verifier: TokenVerifier | None,
    lifespan: ServiceLifespan | None,
    events: Events | None,
    revocations: bool,
    tracer_provider: TracerProvider | None,
) -> ServiceLifespan:
    """The app's lifespan: its database (unless given), then the service's own lifespan, the
    token verifier's keys, the revoked subjects and the events; ended in the reverse order."""

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        heads = expected_heads(settings.migrations_dir)
        owned = database is None
        active = Database.from_settings(settings) if database is None else database
        readiness = health.ReadinessCheck()
        state: AppState = {
            "settings": settings,
            "database": active,
            "migration_heads": heads,
            "readiness": readiness,
        }
        try:
            async with AsyncExitStack() as stack:
                await stack.enter_async_context(
                    observing(settings, active, tracer_provider=tracer_provider)
                )
                own = await stack.enter_async_context(lifespan(app)) if lifespan else {}
                if clash := set(own) & set(AppState.__annotations__):
                    raise ValueError(f"a service's lifespan may not replace {sorted(clash)}")
                if token_verifier is not None:
                    await token_verifier.open()
                    stack.push_async_callback(token_verifier.aclose)
                    state["token_verifier"] = token_verifier
                if revocations:
                    state["revoked_subjects"] = await stack.enter_async_context(
                        watching_revocations(settings, active.engine)
                    )
                if events is not None:
                    if not isinstance(settings, EventSettings):
                        raise TypeError("a service with events needs settings of EventSettings")
                    await stack.enter_async_context(running_events(settings, active, events))
                yield {**state, **own}
        finally:
            readiness.cancel()
            if owned:
                await active.dispose()

    return app_lifespan
