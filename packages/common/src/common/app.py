"""`create_app`: one FastAPI app wired the same way for every service."""

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, TypedDict

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security.base import SecurityBase
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from common import health
from common.auth.keys import KeySource, RemoteJwks
from common.auth.settings import JwksSettings, TokenSettings
from common.auth.verifier import TokenVerifier
from common.db import Database
from common.discovery import discover_root_routers, discover_routers
from common.docs import install_offline_docs
from common.events.lifespan import Events, running_events
from common.events.revocations import RevokedSubjects, keeping_revocations
from common.events.settings import EventSettings
from common.handlers import install_error_handlers
from common.logs import configure_logging
from common.middleware import EdgeMiddleware
from common.observability import observing
from common.openapi import install_openapi, operation_id
from common.revisions import Schema
from common.settings import AppBaseSettings, StartupError
from common.tracing import fastapi_telemetry


class AppState(TypedDict):
    """What every request finds in `request.state`, wired by the app's lifespan."""

    settings: AppBaseSettings
    database: Database
    schema: Schema
    readiness: health.ReadinessCheck
    # None when the app declares no route that needs a token (`create_app` checks).
    token_verifier: TokenVerifier | None


# A service's own lifespan: what it yields joins the request state (`request.state.<name>`).
ServiceLifespan = Callable[[FastAPI], AbstractAsyncContextManager[Mapping[str, Any]]]


def create_app(
    settings: AppBaseSettings,
    *,
    domains: str,
    token_keys: KeySource | None = None,
    lifespan: ServiceLifespan | None = None,
    events: Events | None = None,
    version: str = "0.1.0",
) -> FastAPI:
    """Build a service's app.

    `domains` names the package whose sub-packages are the service's domains. The lifespan
    makes the database's engines from `settings` and disposes of them on shutdown. Access tokens
    (`CurrentUser`, `CurrentClaims`) are verified with `token_keys` when given (users-svc's own
    keys), else with users-svc's JWKS when the settings are `JwksSettings`; a route that needs a
    token in an app that has neither stops the build with `StartupError`. The key source opens
    after the service's own `lifespan` has started (users-svc loads its keys there). `events`
    runs the service's event relay and consumer in the lifespan (its settings must then be
    `EventSettings`), and with `revocations` the verifier refuses the subjects that the account
    events revoked.
    """
    if events is not None and not isinstance(settings, EventSettings):
        raise StartupError(
            f"{settings.service_name} runs events: its settings must build on EventSettings"
        )
    revoked = RevokedSubjects() if events is not None and events.revocations else None
    verifier = _token_verifier(settings, token_keys, revoked)
    configure_logging(
        settings.effective_log_level, sql=settings.debug, log_format=settings.log_format
    )
    docs = settings.docs_enabled
    app = FastAPI(
        title=settings.service_name,
        version=version,
        lifespan=_app_lifespan(
            settings, verifier=verifier, lifespan=lifespan, events=events, revoked=revoked
        ),
        telemetry=fastapi_telemetry(),
        docs_url=None,  # install_offline_docs serves it, without a CDN
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        generate_unique_id_function=operation_id,
    )
    install_openapi(app)
    if docs:
        install_offline_docs(app)
    install_error_handlers(app)
    _include_routers(app, settings, domains)
    if verifier is None and (needing := _routes_needing_tokens(app)):
        raise StartupError(
            f"{settings.service_name} verifies no access tokens, but {', '.join(needing)} "
            "need one: give its settings JwksSettings, or create_app token_keys"
        )
    _add_middleware(app, settings)
    return app


def _token_verifier(
    settings: AppBaseSettings, keys: KeySource | None, revoked: RevokedSubjects | None
) -> TokenVerifier | None:
    if keys is None and isinstance(settings, JwksSettings):
        keys = RemoteJwks.from_settings(settings)
    if keys is None:
        return None
    if not isinstance(settings, TokenSettings):
        raise StartupError(
            f"{settings.service_name} verifies tokens: its settings must build on TokenSettings"
        )
    if revoked is None:
        return TokenVerifier.from_settings(keys, settings)
    return TokenVerifier.from_settings(keys, settings, revoked=revoked)


def _routes_needing_tokens(app: FastAPI) -> list[str]:
    """The routes with a security scheme among their dependencies (`bearer`, a password flow)."""

    def needs_token(dependant: Dependant) -> bool:
        return isinstance(dependant.call, SecurityBase) or any(
            needs_token(sub) for sub in dependant.dependencies
        )

    # The app's routes with the prefix they are included under (FastAPI keeps them as written).
    return [
        f"{' '.join(sorted(context.methods or ()))} {context.path_format}"
        for context in iter_route_contexts(app.routes)
        if isinstance(route := context.original_route, APIRoute) and needs_token(route.dependant)
    ]


def _include_routers(app: FastAPI, settings: AppBaseSettings, domains: str) -> None:
    for router in discover_routers(domains):
        app.include_router(router, prefix=settings.api_prefix)
    for router in discover_root_routers(domains):
        app.include_router(router)
    # Last: FastAPI tries the routers in order, and every API request would first try these.
    app.include_router(health.router)


def _add_middleware(app: FastAPI, settings: AppBaseSettings) -> None:
    """`EdgeMiddleware` (request IDs, size limits, timing, the unhandled error's problem) around
    the app, CORS, when on, around it, and the trusted proxies' client address outermost."""
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
    if settings.trusted_proxies:
        # The app, not the server, decides whom to believe (`common.serve` turns uvicorn's own
        # reading off): the same under uvicorn and in the tests' in-process client. From a peer
        # in these networks, the client is the right-most X-Forwarded-For address that is not
        # itself one of them. `Forwarded` (RFC 7239) is not read: a proxy that writes
        # X-Forwarded-For passes a client's own `Forwarded` through untouched.
        app.add_middleware(
            ProxyHeadersMiddleware,
            trusted_hosts=[str(network) for network in settings.trusted_proxies],
        )


def _app_lifespan(
    settings: AppBaseSettings,
    *,
    verifier: TokenVerifier | None,
    lifespan: ServiceLifespan | None,
    events: Events | None,
    revoked: RevokedSubjects | None,
) -> ServiceLifespan:
    """The app's lifespan: its database, then the service's own lifespan, the token verifier's
    keys, the revoked subjects and the events; ended in the reverse order."""

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        database = Database.from_settings(settings)
        readiness = health.ReadinessCheck()
        state: AppState = {
            "settings": settings,
            "database": database,
            "schema": Schema.of(settings.migrations_dir),
            "readiness": readiness,
            "token_verifier": verifier,
        }
        try:
            async with AsyncExitStack() as stack:
                await stack.enter_async_context(observing(settings, database))
                own = await stack.enter_async_context(lifespan(app)) if lifespan else {}
                if clash := set(own) & set(AppState.__annotations__):
                    raise StartupError(f"a service's lifespan may not replace {sorted(clash)}")
                if verifier is not None:
                    await verifier.open()
                    stack.push_async_callback(verifier.aclose)
                if revoked is not None:
                    await stack.enter_async_context(
                        keeping_revocations(settings, database.engine, revoked)
                    )
                if events is not None:
                    assert isinstance(settings, EventSettings)  # create_app checked
                    await stack.enter_async_context(running_events(settings, database, events))
                yield {**state, **own}
        finally:
            readiness.cancel()
            await database.dispose()

    return app_lifespan
