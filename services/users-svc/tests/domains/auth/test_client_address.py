"""Which address the per-client login counter keys on: the peer's, unless the peer is a proxy
listed in `TRUSTED_PROXIES`; an IPv4 client on a dual-stack listener by its IPv4 address."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy.engine import URL

from common.db import Database
from common.testing import ServiceUnderTest

LOGIN = "/api/v1/auth/login"
PER_CLIENT = 3

# Fails one login from `peer`, sending `forwarded_for` as X-Forwarded-For when given: its status.
FailFrom = Callable[..., Awaitable[int]]


@asynccontextmanager
async def logins(
    service: ServiceUnderTest, database_url: URL, database: Database, **settings: Any
) -> AsyncIterator[FailFrom]:
    app = service.app(
        service.settings(database_url, login_failures_per_client=PER_CLIENT, **settings),
        database=database,
    )
    emails = iter(range(1_000))

    async with LifespanManager(app) as manager:

        async def fail_from(peer: str, forwarded_for: str | None = None) -> int:
            # The peer is the TCP connection's address, as uvicorn would report it.
            transport = ASGITransport(app=manager.app, client=(peer, 50_000))
            headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
            async with AsyncClient(transport=transport, base_url="http://testserver") as client:
                body = {"email": f"guess-{next(emails)}@example.com", "password": "wrong"}
                response = await client.post(LOGIN, json=body, headers=headers)
            return response.status_code

        yield fail_from


async def test_varying_forwarded_for_from_an_untrusted_peer_still_reaches_the_client_limit(
    service: ServiceUnderTest, database_url: URL, test_database: Database
) -> None:
    # The attack tried on the native stack: a new X-Forwarded-For on every failed login.
    async with logins(service, database_url, test_database) as fail_from:
        spoofed = [await fail_from("127.0.0.1", f"198.51.100.{n}") for n in range(PER_CLIENT + 1)]
        another_peer = await fail_from("192.0.2.50")

    assert spoofed == [401] * PER_CLIENT + [429]
    assert another_peer == 401


async def test_a_peer_outside_the_trusted_networks_cannot_name_the_client(
    service: ServiceUnderTest, database_url: URL, test_database: Database
) -> None:
    async with logins(
        service, database_url, test_database, TRUSTED_PROXIES="10.0.0.0/8"
    ) as fail_from:
        spoofed = [await fail_from("192.0.2.9", f"198.51.100.{n}") for n in range(PER_CLIENT + 1)]

    assert spoofed == [401] * PER_CLIENT + [429]


async def test_a_trusted_proxy_names_the_client_the_right_most_untrusted_address(
    service: ServiceUnderTest, database_url: URL, test_database: Database
) -> None:
    async with logins(
        service, database_url, test_database, TRUSTED_PROXIES="10.0.0.0/8,127.0.0.1"
    ) as fail_from:
        # Behind the ingress (10.1.2.3), each client its own key: one locked out, not everyone.
        one_client = [await fail_from("10.1.2.3", "203.0.113.7") for _ in range(PER_CLIENT)]
        limited = await fail_from("10.1.2.3", "203.0.113.7")
        other_client = await fail_from("10.1.2.3", "203.0.113.8")
        # What the client wrote itself is left of the address the proxy appended, and of a
        # second trusted hop: it is not believed.
        prefixed = await fail_from("10.1.2.3", "192.0.2.1, 203.0.113.7, 10.9.9.9")

    assert one_client == [401] * PER_CLIENT
    assert (limited, other_client, prefixed) == (429, 401, 429)


async def test_an_ipv4_mapped_client_is_counted_by_its_ipv4_address(
    service: ServiceUnderTest, database_url: URL, test_database: Database
) -> None:
    async with logins(service, database_url, test_database) as fail_from:
        # A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d: each is its own client,
        # the same one as when it arrives over IPv4.
        counted_together = [
            await fail_from(peer) for peer in ("::ffff:192.0.2.1", "192.0.2.1", "::ffff:192.0.2.1")
        ]
        limited = await fail_from("192.0.2.1")
        neighbour = await fail_from("::ffff:192.0.2.2")

    assert counted_together == [401] * PER_CLIENT
    assert (limited, neighbour) == (429, 401)
