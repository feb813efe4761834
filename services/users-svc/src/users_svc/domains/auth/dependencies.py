"""What the auth domain's endpoints take from the request beyond its body."""

import ipaddress
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import DomainError
from common.session import database_of
from users_svc.domains.auth.schemas import USER_AGENT_LENGTH, Client

# One IPv6 subscriber usually holds a whole /64: counted as one client.
IPV6_CLIENT_PREFIX = 64


async def get_recording_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction, like `SessionDep`, except that it is also committed when
    the endpoint refuses the request with a `DomainError`.

    A refusal may be what must be recorded: a failed login's count, a reused refresh token's
    session ended. `SessionDep` would roll those back with the refusal. Any other error still
    rolls back; the commit still happens before the response is sent.
    """
    session = database_of(request).sessionmaker()
    try:
        try:
            yield session
        except DomainError:
            await session.commit()
            raise
        await session.commit()
    finally:
        await session.close()


RecordingSessionDep = Annotated[AsyncSession, Depends(get_recording_session, scope="function")]


async def client_of(request: Request) -> Client:
    """The client as uvicorn reports it: behind a proxy, set uvicorn's `--forwarded-allow-ips`
    (FORWARDED_ALLOW_IPS) to the proxy's address so the client's own address is used."""
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        key = host
    else:
        key = (
            str(ipaddress.ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))
            if address.version == 6
            else str(address)
        )
    agent = request.headers.get("user-agent")
    return Client(
        address=key,
        user_agent=agent.replace("\x00", "")[:USER_AGENT_LENGTH] if agent else None,
    )


ClientDep = Annotated[Client, Depends(client_of)]
