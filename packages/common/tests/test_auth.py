"""Token verification against a JWKS served over real HTTP (uvicorn on a loopback port).

Time is a fake clock handed to the key cache, so cache lifetimes pass without waiting.
"""

import asyncio
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
import uvicorn
from fastapi import FastAPI, Security
from fastapi.responses import RedirectResponse, Response
from jwt import PyJWK

from common.auth import (
    AccessClaims,
    CurrentClaims,
    CurrentUser,
    InvalidTokenError,
    KeySource,
    KeysUnavailableError,
    RemoteJwks,
    SigningKey,
    TokenVerifier,
    current_service,
    service_claims,
)
from common.handlers import install_error_handlers
from common.testing.plugin import open_client

ISSUER = "http://users.test"
AUDIENCE = "api"
CACHE_SECONDS = 300.0
REFETCH_INTERVAL_SECONDS = 10.0
MAX_STALE_SECONDS = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class JwksServer:
    """users-svc's JWKS endpoint as verifiers see it: it counts the fetches it answers."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self.answering = True  # False: every fetch gets a 503, as from a users-svc in trouble
        app = FastAPI()

        @app.get("/.well-known/jwks.json", response_model=None)
        async def jwks() -> dict[str, Any] | Response:
            if not self.answering:
                return Response(status_code=503)
            self.fetches += 1
            # Slow enough that concurrent verifications overlap with this fetch.
            await asyncio.sleep(0.05)
            return {"keys": self.keys}

        @app.get("/moved")
        async def moved() -> RedirectResponse:
            return RedirectResponse("/.well-known/jwks.json")

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
        config = uvicorn.Config(app, lifespan="off", log_level="warning", ws="none")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]})

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the JWKS server did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def verifier(jwks_server: JwksServer, clock: Clock) -> AsyncIterator[TokenVerifier]:
    keys = RemoteJwks(
        jwks_server.url,
        cache_seconds=CACHE_SECONDS,
        refetch_interval_seconds=REFETCH_INTERVAL_SECONDS,
        timeout_seconds=2,
        max_stale_seconds=MAX_STALE_SECONDS,
        clock=clock,
    )
    await keys.open()
    yield TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, leeway_seconds=30)
    await keys.aclose()


def token(key: SigningKey, subject: uuid.UUID | None = None) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(subject or uuid.uuid4()),
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    return key.sign(claims)


async def accepted(verifier: TokenVerifier, access_token: str) -> bool:
    try:
        await verifier.verify(access_token)
    except InvalidTokenError:
        return False
    return True


async def test_a_token_verifies_with_a_key_fetched_over_http(
    verifier: TokenVerifier, jwks_server: JwksServer
) -> None:
    key = SigningKey.generate()
    jwks_server.keys = [key.public_jwk]
    user = uuid.uuid4()

    claims = await verifier.verify(token(key, user))

    assert claims.subject == user
    assert jwks_server.fetches == 1


async def test_a_flood_of_unknown_kids_costs_one_fetch_per_interval(
    verifier: TokenVerifier, jwks_server: JwksServer, clock: Clock
) -> None:
    known = SigningKey.generate()
    jwks_server.keys = [known.public_jwk]
    forged = [token(SigningKey.generate()) for _ in range(100)]

    first_wave = await asyncio.gather(*(accepted(verifier, t) for t in forged))
    assert not any(first_wave)
    assert jwks_server.fetches == 1  # one fetch, shared by 100 concurrent requests
    assert await accepted(verifier, token(known))
    assert jwks_server.fetches == 1

    clock.advance(REFETCH_INTERVAL_SECONDS / 2)
    assert not any(await asyncio.gather(*(accepted(verifier, t) for t in forged)))
    assert jwks_server.fetches == 1  # still inside the interval: no fetch at all

    clock.advance(REFETCH_INTERVAL_SECONDS)
    assert not any(await asyncio.gather(*(accepted(verifier, t) for t in forged)))
    assert jwks_server.fetches == 2  # one more interval, one more fetch


async def test_a_key_published_later_is_picked_up_on_its_first_token(
    verifier: TokenVerifier, jwks_server: JwksServer, clock: Clock
) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    jwks_server.keys = [old.public_jwk]
    assert await accepted(verifier, token(old))

    jwks_server.keys = [new.public_jwk, old.public_jwk]
    clock.advance(REFETCH_INTERVAL_SECONDS)

    assert await accepted(verifier, token(new))
    assert jwks_server.fetches == 2


async def test_rotation_both_keys_verify_and_a_removed_key_stops_after_the_cache_lifetime(
    verifier: TokenVerifier, jwks_server: JwksServer, clock: Clock
) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    jwks_server.keys = [new.public_jwk, old.public_jwk]
    assert await accepted(verifier, token(old))
    assert await accepted(verifier, token(new))

    jwks_server.keys = [new.public_jwk]  # users-svc stops publishing the old key
    clock.advance(CACHE_SECONDS - 1)
    assert await accepted(verifier, token(old))  # still cached

    clock.advance(1)
    assert not await accepted(verifier, token(old))
    assert await accepted(verifier, token(new))
    assert jwks_server.fetches == 2


async def test_known_keys_keep_verifying_while_users_svc_is_down(
    verifier: TokenVerifier, jwks_server: JwksServer, clock: Clock
) -> None:
    key = SigningKey.generate()
    jwks_server.keys = [key.public_jwk]
    assert await accepted(verifier, token(key))

    jwks_server.stop()
    clock.advance(CACHE_SECONDS * 2)

    assert await accepted(verifier, token(key))
    assert not await accepted(verifier, token(SigningKey.generate()))


async def test_a_jwks_that_cannot_be_reached_at_all_answers_unavailable_not_invalid(
    clock: Clock,
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    keys = RemoteJwks(
        f"http://127.0.0.1:{port}/.well-known/jwks.json",
        cache_seconds=CACHE_SECONDS,
        refetch_interval_seconds=REFETCH_INTERVAL_SECONDS,
        timeout_seconds=2,
        max_stale_seconds=MAX_STALE_SECONDS,
        clock=clock,
    )
    await keys.open()
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, leeway_seconds=30)
    try:
        with pytest.raises(KeysUnavailableError) as raised:
            await verifier.verify(token(SigningKey.generate()))
    finally:
        await keys.aclose()
    assert raised.value.status_code == 503
    assert raised.value.retry_after_seconds == REFETCH_INTERVAL_SECONDS


async def test_a_redirect_is_not_followed(jwks_server: JwksServer, clock: Clock) -> None:
    key = SigningKey.generate()
    jwks_server.keys = [key.public_jwk]
    keys = RemoteJwks(
        jwks_server.url.replace("/.well-known/jwks.json", "/moved"),
        cache_seconds=CACHE_SECONDS,
        refetch_interval_seconds=REFETCH_INTERVAL_SECONDS,
        timeout_seconds=2,
        max_stale_seconds=MAX_STALE_SECONDS,
        clock=clock,
    )
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, leeway_seconds=30)

    with pytest.raises(KeysUnavailableError):
        await verifier.verify(token(key))
    assert jwks_server.fetches == 0


async def test_known_keys_stop_verifying_past_their_max_stale_age_then_recover(
    jwks_server: JwksServer, clock: Clock
) -> None:
    keys = RemoteJwks(
        jwks_server.url,
        cache_seconds=CACHE_SECONDS,
        refetch_interval_seconds=REFETCH_INTERVAL_SECONDS,
        timeout_seconds=2,
        max_stale_seconds=2 * CACHE_SECONDS,
        clock=clock,
    )
    verifier = TokenVerifier(
        keys, issuer=ISSUER, audience=AUDIENCE, leeway_seconds=30, cache_size=0
    )
    key = SigningKey.generate()
    jwks_server.keys = [key.public_jwk]
    assert await accepted(verifier, token(key))

    jwks_server.answering = False
    clock.advance(2 * CACHE_SECONDS - 1)
    assert await accepted(verifier, token(key))  # stale, refetch failed, still within the age
    clock.advance(REFETCH_INTERVAL_SECONDS)
    with pytest.raises(KeysUnavailableError):
        await verifier.verify(token(key))

    jwks_server.answering = True
    clock.advance(REFETCH_INTERVAL_SECONDS)
    assert await accepted(verifier, token(key))
    assert jwks_server.fetches == 2


async def test_a_route_needing_a_token_answers_503_once_the_jwks_is_gone_too_long() -> None:
    # A real JWKS endpoint that goes away, and an age short enough to wait out.
    server = JwksServer()
    server.start()
    key = SigningKey.generate()
    server.keys = [key.public_jwk]
    keys = RemoteJwks(
        server.url,
        cache_seconds=0.2,
        refetch_interval_seconds=0.1,
        timeout_seconds=1,
        max_stale_seconds=0.5,
    )
    bearer = {"Authorization": f"Bearer {token(key)}"}
    try:
        async with open_client(app_trusting_keys(keys)) as client:
            before = await client.get("/user", headers=bearer)
            server.stop()
            await asyncio.sleep(0.6)
            after = await client.get("/user", headers=bearer)
    finally:
        server.stop()

    assert before.status_code == 200
    assert after.status_code == 503
    assert after.headers["retry-after"] == "1"
    assert after.headers["content-type"] == "application/problem+json"
    assert "JWKS" in after.json()["detail"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://users.test/jwks.json", "jwks.json"])
def test_a_jwks_url_that_is_not_http_is_refused_at_startup(url: str) -> None:
    with pytest.raises(ValueError, match="must be http"):
        RemoteJwks(
            url,
            cache_seconds=1,
            refetch_interval_seconds=1,
            timeout_seconds=1,
            max_stale_seconds=1,
        )


class PublishedKeys(KeySource):
    """Keys a test publishes and withdraws at will."""

    def __init__(self) -> None:
        self.keys: dict[str, PyJWK] = {}

    def publish(self, key: SigningKey) -> None:
        self.keys[key.kid] = PyJWK(key.public_jwk)

    async def key_for(self, kid: str) -> PyJWK | None:
        return self.keys.get(kid)


async def test_a_verified_token_is_refused_once_it_expires_though_it_was_remembered() -> None:
    key, keys = SigningKey.generate(), PublishedKeys()
    keys.publish(key)
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, leeway_seconds=0)
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "iat": now}
    short_lived = key.sign({**claims, "exp": now + 1, "jti": uuid.uuid4().hex})
    assert await accepted(verifier, short_lived)
    assert await accepted(verifier, short_lived)

    while time.time() < now + 1.05:  # until just past `exp`
        await asyncio.sleep(0.05)

    assert not await accepted(verifier, short_lived)


async def test_a_refusal_is_not_remembered_and_a_withdrawn_key_stops_remembered_tokens() -> None:
    key, keys = SigningKey.generate(), PublishedKeys()
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, leeway_seconds=30)
    access_token = token(key)
    assert not await accepted(verifier, access_token)  # unknown key id

    keys.publish(key)
    assert await accepted(verifier, access_token)
    assert await accepted(verifier, access_token)

    keys.keys.clear()
    assert not await accepted(verifier, access_token)


async def test_a_remembered_token_with_another_signature_is_refused() -> None:
    key, keys = SigningKey.generate(), PublishedKeys()
    keys.publish(key)
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, leeway_seconds=30)
    access_token = token(key)
    assert await accepted(verifier, access_token)

    header, payload, _ = access_token.split(".")
    # A real Ed25519 signature, by another key, of other content.
    forged = SigningKey.generate().sign({"sub": "x"}).split(".")[2]
    assert not await accepted(verifier, f"{header}.{payload}.{forged}")


def app_trusting(key: SigningKey) -> FastAPI:
    """An app whose routes take the caller from `CurrentUser` and `CurrentClaims`."""
    keys = PublishedKeys()
    keys.publish(key)
    return app_trusting_keys(keys)


def app_trusting_keys(keys: KeySource) -> FastAPI:
    """An app whose routes take the caller from `CurrentUser` and `CurrentClaims`, verified
    with `keys`."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, leeway_seconds=30)
        yield {"token_verifier": verifier}

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)

    @app.get("/user")
    async def user(user_id: CurrentUser) -> dict[str, str]:
        return {"user": str(user_id)}

    @app.get("/claims")
    async def claims(claims: CurrentClaims) -> dict[str, str]:
        return {"user": str(claims.subject), "token": claims.token_id}

    @app.get("/lookup")
    async def lookup(
        caller: Annotated[AccessClaims, Security(current_service, scopes=["users:lookup"])],
    ) -> dict[str, str | None]:
        return {"client": caller.client_id}

    return app


async def test_routes_get_the_caller_from_a_bearer_token_and_refuse_anything_else() -> None:
    key, subject = SigningKey.generate(), uuid.uuid4()
    access_token = token(key, subject)
    bearer = {"Authorization": f"Bearer {access_token}"}
    stranger = {"Authorization": f"Bearer {token(SigningKey.generate(), subject)}"}

    async with open_client(app_trusting(key)) as client:
        user = await client.get("/user", headers=bearer)
        claims = await client.get("/claims", headers=bearer)
        missing = await client.get("/claims")
        basic = await client.get("/user", headers={"Authorization": "Basic dTpw"})
        forged = await client.get("/claims", headers=stranger)

    assert (user.status_code, user.json()) == (200, {"user": str(subject)})
    assert claims.status_code == 200
    assert claims.json()["user"] == str(subject)
    assert claims.json()["token"]
    for refused in (missing, basic):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.headers["content-type"] == "application/problem+json"
    assert forged.status_code == 401
    assert forged.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def service_token(key: SigningKey, client_id: str, scopes: list[str]) -> str:
    claims = service_claims(
        client_id, scopes=scopes, issuer=ISSUER, audience=AUDIENCE, lifetime_seconds=300
    )
    return key.sign(claims)


async def test_a_services_token_passes_a_route_asking_its_scope_and_no_other_token_does() -> None:
    key = SigningKey.generate()
    granted = {"Authorization": f"Bearer {service_token(key, 'things-svc', ['users:lookup'])}"}
    other_scope = {"Authorization": f"Bearer {service_token(key, 'things-svc', ['users:read'])}"}
    user = {"Authorization": f"Bearer {token(key)}"}

    async with open_client(app_trusting(key)) as client:
        lookup = await client.get("/lookup", headers=granted)
        without_scope = await client.get("/lookup", headers=other_scope)
        by_a_user = await client.get("/lookup", headers=user)
        as_a_user = await client.get("/user", headers=granted)

    assert (lookup.status_code, lookup.json()) == (200, {"client": "things-svc"})
    for refused in (without_scope, by_a_user):
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["www-authenticate"] == (
            'Bearer error="insufficient_scope", scope="users:lookup"'
        )
    # A service's token does not act for a user.
    assert as_a_user.status_code == 403
    assert "service" in as_a_user.json()["detail"]


def test_verifying_tokens_loads_neither_a_database_nor_a_broker() -> None:
    script = (
        "import sys, common.auth\n"
        "loaded = ('nats', 'asyncpg', 'sqlalchemy.ext.asyncio', 'common.db', 'common.events')\n"
        "print(sorted({m.split('.')[0] if m.startswith(('nats', 'asyncpg')) else m\n"
        "             for m in sys.modules if m.startswith(loaded)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
